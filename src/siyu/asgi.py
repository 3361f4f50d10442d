"""The ASGI entry point for `siyu serve` (and any ASGI server): settings from SIYU_*."""

from __future__ import annotations

from siyu.app import create_app
from siyu.config import Settings

settings = Settings.from_env()
app = create_app(settings, rate_per_second=settings.rate_limit)
