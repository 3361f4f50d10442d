"""The API's part of the service: routers, error handlers, request ids, logs and metrics.

The composition root (`siyu.app`) builds the services, creates this app and mounts the
console on it, so the middleware logs and counts console pages too.

Logs are one JSON object per request with the route *template* (never the raw path or
query string, which can carry a phone number) and never a body.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from fastapi import FastAPI, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Router, compile_path
from starlette.types import ASGIApp, Lifespan, Message, Receive, Scope, Send

from siyu import __version__
from siyu.api import problems
from siyu.api.routers import (
    affinity,
    callbacks,
    campaigns,
    commission,
    coupons,
    distribution,
    experiments,
    guide_campaigns,
    guide_classes,
    guide_programme,
    guides,
    ingest,
    inventory,
    ledger,
    lotteries,
    matching,
    members,
    messaging,
    receipts,
    scenes,
    segments,
    tags,
)
from siyu.errors import SiyuError
from siyu.services import Services

log = logging.getLogger("siyu.access")


def create_api(services: Services, lifespan: Lifespan[FastAPI] | None = None) -> FastAPI:
    """The API over `services` (kept on `app.state.services`); `lifespan` is the owner's,
    which closes the services at shutdown."""
    app = FastAPI(
        lifespan=lifespan,
        title="siyu",
        version=__version__,
        description="One member, one ledger and one stock across every store and channel. "
        "Authenticate with `Authorization: Bearer <API key>` (see `siyu keys create`).",
    )
    app.state.services = services
    app.include_router(members.router)
    app.include_router(ingest.router)
    app.include_router(ledger.router)
    app.include_router(inventory.router)
    app.include_router(guides.router)
    app.include_router(guide_campaigns.router)
    app.include_router(commission.router)
    app.include_router(distribution.router)
    app.include_router(guide_classes.router)
    app.include_router(guide_programme.router)
    app.include_router(matching.router)
    app.include_router(tags.router)
    app.include_router(segments.router)
    app.include_router(affinity.router)
    app.include_router(coupons.router)
    app.include_router(campaigns.router)
    app.include_router(experiments.router)
    app.include_router(scenes.router)
    app.include_router(lotteries.router)
    app.include_router(receipts.router)
    app.include_router(messaging.router)
    app.include_router(callbacks.router)
    app.add_exception_handler(problems.Problem, problems.handle_siyu_error)
    app.add_exception_handler(SiyuError, problems.handle_siyu_error)
    app.add_exception_handler(RequestValidationError, problems.handle_request_validation)
    app.add_exception_handler(StarletteHTTPException, problems.handle_http_error)
    app.add_exception_handler(Exception, problems.handle_siyu_error)

    registry = CollectorRegistry()
    requests = Counter(
        "siyu_http_requests_total",
        "HTTP requests",
        ["route", "method", "status"],
        registry=registry,
    )
    latency = Histogram(
        "siyu_http_request_seconds",
        "HTTP request latency",
        ["route"],
        registry=registry,
        buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    )

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(Observe, router=app.router, requests=requests, latency=latency)

    return app


class Observe:
    """Request id, access log and metrics as a pure ASGI middleware (Starlette's
    decorator middleware costs a task and a stream per request).

    Starlette builds the middleware when the app starts, after every face is mounted, so
    the route templates read here include the console's."""

    def __init__(
        self,
        app: ASGIApp,
        router: Router,
        requests: Counter,
        latency: Histogram,
    ) -> None:
        self.app, self.templates = app, _route_templates(router)
        self.requests, self.latency = requests, latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"")[:64].decode("latin-1")
        request_id = given or uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = _route_template(self.templates, scope["path"])
            self.requests.labels(route, scope["method"], str(status)).inc()
            self.latency.labels(route).observe(seconds)
            log.info(
                json.dumps(
                    {
                        "request_id": request_id,
                        "method": scope["method"],
                        "route": route,
                        "status": status,
                        "ms": round(seconds * 1000, 2),
                        "key_id": state.get("key_id"),
                    }
                )
            )


def _route_templates(router: Router) -> list[tuple[re.Pattern[str], str]]:
    """(regex, template) of every route, for logs and metrics by template: never by raw
    path, which can carry identifiers, and whose cardinality is unbounded."""
    paths = [c.path for c in iter_route_contexts(router.routes) if c.path]
    return [(compile_path(str(p))[0], str(p)) for p in paths]


def _route_template(templates: list[tuple[re.Pattern[str], str]], path: str) -> str:
    for regex, template in templates:
        if regex.match(path):
            return template
    return "unmatched"
