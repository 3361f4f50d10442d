"""Request-scoped dependencies: the services, the authenticated principal, permissions.

Every /v1 route declares the permission it needs with `Depends(require("..."))`; the
authorization matrix test reads those declarations from the route table, so a new route
without one fails the tests. Row scope (which members a key may see) is `auth.scope`'s.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Request

from siyu.api.problems import Problem
from siyu.auth.principal import Principal
from siyu.auth.scope import member_in_scope
from siyu.services import Services

# The header of every endpoint whose writes are keyed by the caller (ledger postings, stock
# movements): required, and the key of what it writes, so a retry applies nothing again.
RequiredIdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Required: a retry with the same key applies nothing again.",
    ),
]


async def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


async def principal(request: Request, svc: Services = Depends(services)) -> Principal:
    """The caller, from `Authorization: Bearer <key>` or `X-API-Key: <key>`."""
    header = request.headers.get("authorization", "")
    presented = header[7:].strip() if header.lower().startswith("bearer ") else ""
    presented = presented or request.headers.get("x-api-key", "").strip()
    if not presented:
        raise Problem(
            401,
            "Unauthenticated",
            "an API key is required (Authorization: Bearer <key>)",
            "unauthenticated",
            headers={"WWW-Authenticate": "Bearer"},
        )
    who = await svc.keys.authenticate(svc.reads, svc.vault, presented)
    request.state.key_id = who.key_id
    retry = svc.limiter.take(who.key_id)
    if retry is not None:
        raise Problem(
            429,
            "Too many requests",
            f"rate limit of this key exceeded; retry in {retry:.0f} s",
            "rate_limited",
            headers={"Retry-After": f"{retry:.0f}"},
        )
    return who


def require(permission: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that lets through only roles holding `permission`. It calls
    `principal` itself rather than depending on it: every level of the dependency tree
    costs FastAPI a solve on every request, and this is on every request."""

    async def check(request: Request) -> Principal:
        who = await principal(request, request.app.state.services)
        if not who.may(permission):
            raise Problem(
                403, "Forbidden", f"role {who.role.value!r} may not {permission}", "forbidden"
            )
        return who

    check.permission = permission  # type: ignore[attr-defined]
    return check


async def scoped_member(svc: Services, who: Principal, member_id: int) -> int:
    """`member_in_scope` on a connection of its own."""
    async with svc.reads.connection() as reader:
        return await member_in_scope(reader, who, member_id)
