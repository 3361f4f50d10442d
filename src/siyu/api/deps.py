"""Request-scoped dependencies: the services, the authenticated principal, permissions.

Every /v1 route declares the permission it needs with `Depends(require("..."))`; the
authorization matrix test reads those declarations from the route table, so a new route
without one fails the tests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Depends, Request
from sqlalchemy import Connection, Engine, bindparam, text

from siyu.api.problems import Problem
from siyu.api.ratelimit import RateLimiter
from siyu.auth.keys import KeyCache
from siyu.auth.principal import Principal, Role
from siyu.config import Settings
from siyu.identity.ingest import IdentifierEncoder
from siyu.privacy import Vault


@dataclass
class Services:
    settings: Settings
    engine: Engine
    vault: Vault
    limiter: RateLimiter
    keys: KeyCache

    def encoder(self) -> IdentifierEncoder:
        return IdentifierEncoder(self.vault)

    def reader(self) -> Connection:
        """A connection for reads only, in autocommit: no BEGIN/ROLLBACK round trips on
        PostgreSQL, and no BEGIN IMMEDIATE write lock on SQLite."""
        return self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")


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
    who = svc.keys.authenticate(svc.engine, svc.vault, presented)
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


def require(permission: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets through only roles holding `permission`."""

    async def check(who: Principal = Depends(principal)) -> Principal:
        if not who.may(permission):
            raise Problem(
                403, "Forbidden", f"role {who.role.value!r} may not {permission}", "forbidden"
            )
        return who

    check.permission = permission  # type: ignore[attr-defined]
    return check


def member_in_scope(
    svc: Services, who: Principal, member_id: int, conn: Connection | None = None
) -> int:
    """The member (following merges to the survivor) if the principal may see it: 404 when
    the group has no such member, 403 when it is another store's, guide's or person's."""
    if conn is None:
        with svc.reader() as own:
            return member_in_scope(svc, who, member_id, own)
    current = member_id
    for _ in range(32):  # merge chains are short; the bound guards against a cycle
        row = conn.execute(
            text("SELECT status, merged_into FROM members WHERE group_id = :g AND member_id = :m"),
            {"g": who.group_id, "m": current},
        ).first()
        if row is None:
            raise Problem(404, "Not found", f"member_id: no member {member_id}", "not_found")
        if row.status != "merged" or row.merged_into is None:
            break
        current = int(row.merged_into)
    if who.role in (Role.ADMIN, Role.ANALYST, Role.CHANNEL):
        return current
    if who.role == Role.MEMBER:
        ok = who.member_id is not None and _same_person(conn, who, current)
    elif who.role == Role.STORE:
        ok = _store_member(conn, who, current)
    else:
        ok = _guide_member(conn, who, current)
    if not ok:
        raise Problem(
            403,
            "Forbidden",
            f"member_id: member {member_id} is outside this {who.role.value} key's scope",
            "forbidden",
        )
    return current


def _same_person(conn: Connection, who: Principal, member_id: int) -> bool:
    current = who.member_id
    for _ in range(32):
        if current == member_id:
            return True
        row = conn.execute(
            text("SELECT merged_into FROM members WHERE member_id = :m"), {"m": current}
        ).first()
        if row is None or row.merged_into is None:
            return False
        current = int(row.merged_into)
    return False


def _store_member(conn: Connection, who: Principal, member_id: int) -> bool:
    query = text("""SELECT 1 FROM members WHERE member_id = :m AND home_store_id IN :stores
                    UNION ALL
                    SELECT 1 FROM orders WHERE group_id = :g AND member_id = :m
                      AND store_id IN :stores
                    LIMIT 1""").bindparams(bindparam("stores", expanding=True))
    found = conn.execute(
        query, {"m": member_id, "g": who.group_id, "stores": list(who.stores)}
    ).first()
    return found is not None


def _guide_member(conn: Connection, who: Principal, member_id: int) -> bool:
    found = conn.execute(
        text("""SELECT 1 FROM orders WHERE group_id = :g AND member_id = :m AND guide_id = :gd
                UNION ALL
                SELECT 1 FROM events WHERE group_id = :g AND member_id = :m AND guide_id = :gd
                LIMIT 1"""),
        {"m": member_id, "g": who.group_id, "gd": who.guide_id},
    ).first()
    return found is not None
