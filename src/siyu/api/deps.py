"""Request-scoped dependencies: the services, the authenticated principal, permissions.

Every /v1 route declares the permission it needs with `Depends(require("..."))`; the
authorization matrix test reads those declarations from the route table, so a new route
without one fails the tests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy import Engine

from siyu.api.problems import Problem
from siyu.api.ratelimit import RateLimiter
from siyu.auth.keys import KeyCache
from siyu.auth.principal import Principal, Role
from siyu.config import Settings
from siyu.identity.ingest import IdentifierEncoder
from siyu.inventory.batcher import ReservationBatcher
from siyu.privacy import Vault
from siyu.store.reads import Reader, Reads, Sql

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


@dataclass
class Services:
    settings: Settings
    engine: Engine  # writes (and sync work in the thread pool)
    reads: Reads  # async reads on the event loop
    vault: Vault
    limiter: RateLimiter
    keys: KeyCache
    reservations: ReservationBatcher  # group commit of reservations (inventory/batcher.py)

    def encoder(self) -> IdentifierEncoder:
        return IdentifierEncoder(self.vault)


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


async def survivor(reader: Reader, group_id: str, member_id: int) -> int:
    """The member itself, or the member it was merged into; 404 when the brand group has
    no such member."""
    current = member_id
    for _ in range(32):  # merge chains are short; the bound guards against a cycle
        row = await reader.first(MEMBER_STATUS, {"g": group_id, "m": current})
        if row is None:
            raise Problem(404, "Not found", f"member_id: no member {member_id}", "not_found")
        if row.status != "merged" or row.merged_into is None:
            break
        current = int(row.merged_into)
    return current


async def member_in_scope(reader: Reader, who: Principal, member_id: int) -> int:
    """The member (following merges to the survivor) if the principal may see it: 404 when
    the group has no such member, 403 when it is another store's, guide's or person's."""
    current = await survivor(reader, who.group_id, member_id)
    if who.role in (Role.ADMIN, Role.ANALYST, Role.CHANNEL):
        return current
    if who.role == Role.MEMBER:
        ok = who.member_id is not None and await _same_person(reader, who, current)
    elif who.role == Role.STORE:
        ok = (
            await reader.first(
                STORE_MEMBER, {"m": current, "g": who.group_id, "stores": list(who.stores)}
            )
            is not None
        )
    else:
        ok = (
            await reader.first(GUIDE_MEMBER, {"m": current, "g": who.group_id, "gd": who.guide_id})
            is not None
        )
    if not ok:
        raise Problem(
            403,
            "Forbidden",
            f"member_id: member {member_id} is outside this {who.role.value} key's scope",
            "forbidden",
        )
    return current


async def scoped_member(svc: Services, who: Principal, member_id: int) -> int:
    """`member_in_scope` on a connection of its own."""
    async with svc.reads.connection() as reader:
        return await member_in_scope(reader, who, member_id)


async def _same_person(reader: Reader, who: Principal, member_id: int) -> bool:
    current = who.member_id
    for _ in range(32):
        if current == member_id:
            return True
        row = await reader.first(MERGED_INTO, {"m": current})
        if row is None or row.merged_into is None:
            return False
        current = int(row.merged_into)
    return False


MEMBER_STATUS = Sql(
    "SELECT status, merged_into FROM members WHERE group_id = :g AND member_id = :m"
)
MERGED_INTO = Sql("SELECT merged_into FROM members WHERE member_id = :m")
STORE_MEMBER = Sql("""SELECT 1 FROM members WHERE member_id = :m AND home_store_id IN :stores
                      UNION ALL
                      SELECT 1 FROM orders WHERE group_id = :g AND member_id = :m
                        AND store_id IN :stores
                      LIMIT 1""")
GUIDE_MEMBER = Sql("""SELECT 1 FROM orders WHERE group_id = :g AND member_id = :m AND guide_id = :gd
                      UNION ALL
                      SELECT 1 FROM events WHERE group_id = :g AND member_id = :m AND guide_id = :gd
                      LIMIT 1""")
