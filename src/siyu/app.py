"""The composition root: builds the services once and mounts every face on them, the
HTTP API (`siyu.api`) and the operations console (`siyu.console`, under /console).

The faces never import each other; what they share is `siyu.services.Services`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from siyu.api.app import create_api
from siyu.auth.keys import KeyCache
from siyu.auth.ratelimit import RateLimiter
from siyu.config import Settings, messaging_callbacks
from siyu.console import routes as console
from siyu.coupons import tier_packs
from siyu.coupons.batcher import RedemptionBatcher
from siyu.inventory.batcher import ReservationBatcher
from siyu.messaging import callbacks
from siyu.privacy import Vault
from siyu.services import Services
from siyu.store.engine import make_engine
from siyu.store.reads import make_reads
from siyu.store.secret import bind_secret


def build_services(settings: Settings, rate_per_second: float = 200.0) -> Services:
    """The process's services: one engine and read pool, the vault, the key cache, the
    per-key rate limiter, the reservation and redemption batchers, and the platforms'
    callbacks (a misconfigured one stops the start, naming the setting)."""
    taken: dict[str, callbacks.Callback] = {}
    if settings.messaging_file:
        taken = callbacks.build(messaging_callbacks(settings.messaging_file))
    # No pre-ping per checkout: it doubles the round trips of every query, and a
    # connection that fails is discarded by the pool anyway. Sized for the thread pool
    # (40 threads) that runs the writes.
    engine = make_engine(settings.database_url, pool_pre_ping=False, pool_size=40, max_overflow=10)
    # the store's own secret, or a clear refusal (another secret logs in no key)
    try:
        settings = bind_secret(engine, settings)
    except Exception:
        engine.dispose()
        raise
    return Services(
        settings=settings,
        engine=engine,
        reads=make_reads(engine),
        vault=Vault(settings.secret_key),
        limiter=RateLimiter(rate_per_second),
        keys=KeyCache(),
        reservations=ReservationBatcher(engine),
        redemptions=RedemptionBatcher(engine),
        upgrade_hook=tier_packs.hook(engine),
        callbacks=taken,
    )


def create_app(settings: Settings, rate_per_second: float = 200.0) -> FastAPI:
    """The service: the API, and the console at /console over the same services."""
    services = build_services(settings, rate_per_second)
    app = create_api(services, lifespan=_lifespan)
    console.mount(app, services.settings.secret_key, console.bundle_path(settings.console_bundle))
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    services: Services = app.state.services
    await services.close()
