"""The former ASGI entry point, kept so `uvicorn siyu.api.asgi:app` still serves: the app
is the composition root's (`siyu.asgi`)."""

from __future__ import annotations

from siyu.asgi import app

__all__ = ["app"]
