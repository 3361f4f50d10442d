"""Create, check and revoke API keys.

A key is `sy_` + 32 random bytes (url-safe base64), shown once. Only its keyed hash is
stored, so a copy of the database does not yield working keys; the hash is a keyed
HMAC rather than a slow password hash because the secret has 256 bits of entropy.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, update

from siyu.auth.errors import AuthenticationError
from siyu.auth.models import api_keys
from siyu.auth.principal import Principal, Role
from siyu.errors import NotFoundError, ValidationError
from siyu.privacy import Vault
from siyu.store.reads import Reads, Sql
from siyu.store.times import stored_now, stored_time

PREFIX = "sy_"


@dataclass(frozen=True)
class IssuedKey:
    key_id: int
    secret: str
    principal: Principal
    expires_at: datetime | None


def create_key(
    engine: Engine,
    vault: Vault,
    group_id: str,
    role: str,
    name: str = "",
    stores: tuple[str, ...] = (),
    guide_id: str | None = None,
    channel: str | None = None,
    member_id: int | None = None,
    expires_in_days: int | None = 365,
) -> IssuedKey:
    """Issue a key; the scope a role needs is required (a store key names its stores)."""
    try:
        parsed = Role(role)
    except ValueError:
        raise ValidationError(
            "role", f"must be one of {', '.join(r.value for r in Role)}", role
        ) from None
    needs = {
        Role.STORE: ("stores", bool(stores)),
        Role.GUIDE: ("guide", guide_id is not None),
        Role.CHANNEL: ("channel", channel is not None),
        Role.MEMBER: ("member_id", member_id is not None),
    }
    if parsed in needs and not needs[parsed][1]:
        raise ValidationError(
            needs[parsed][0], f"a {parsed.value} key must name its {needs[parsed][0]}"
        )
    if expires_in_days is not None and expires_in_days <= 0:
        raise ValidationError("expires_in_days", "must be > 0", expires_in_days)
    secret = PREFIX + secrets.token_urlsafe(32)
    scope = {
        "stores": list(stores),
        "guide_id": guide_id,
        "channel": channel,
        "member_id": member_id,
    }
    now = stored_now()
    expires = now + timedelta(days=expires_in_days) if expires_in_days else None
    with engine.begin() as conn:
        key_id = conn.execute(
            insert(api_keys)
            .values(
                group_id=group_id,
                name=name or f"{parsed.value} key",
                role=parsed.value,
                scope=json.dumps(scope),
                secret_hash=vault.keyed_hash(secret),
                created_at=now,
                expires_at=expires,
            )
            .returning(api_keys.c.key_id)
        ).scalar_one()
    principal = Principal(
        int(key_id), group_id, parsed, tuple(stores), guide_id, channel, member_id, name
    )
    return IssuedKey(int(key_id), secret, principal, expires)


def authenticate(engine: Engine, vault: Vault, presented: str) -> Principal:
    """The principal of a presented key; AuthenticationError if unknown, revoked or
    expired (one message for all three, so a caller cannot probe which)."""
    _check_shape(presented)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        row = conn.execute(
            select(api_keys).where(api_keys.c.secret_hash == vault.keyed_hash(presented))
        ).first()
    return _principal(row)


KEY_BY_HASH = Sql(
    "SELECT key_id, group_id, role, scope, name, expires_at, revoked_at FROM api_keys "
    "WHERE secret_hash = :h"
)


async def authenticate_async(reads: Reads, vault: Vault, presented: str) -> Principal:
    """`authenticate` for the service's event loop."""
    _check_shape(presented)
    async with reads.connection() as reader:
        row = await reader.first(KEY_BY_HASH, {"h": vault.keyed_hash(presented)})
    return _principal(row)


KEY_BY_ID = Sql(
    "SELECT key_id, group_id, role, scope, name, expires_at, revoked_at FROM api_keys "
    "WHERE key_id = :k"
)


async def principal_by_id(reads: Reads, key_id: int) -> Principal:
    """The principal of a key by its id (a console session holds the id, never the
    secret); AuthenticationError once the key is revoked, expired or gone."""
    async with reads.connection() as reader:
        row = await reader.first(KEY_BY_ID, {"k": key_id})
    return _principal(row)


def _check_shape(presented: str) -> None:
    if not presented.startswith(PREFIX) or len(presented) > 200:
        raise AuthenticationError("invalid or expired API key")


def _principal(row: Any) -> Principal:
    expires = row.expires_at if row is not None else None
    if expires is not None:
        expires = stored_time(expires)
    if (
        row is None
        or row.revoked_at is not None
        or (expires is not None and expires <= stored_now())
    ):
        raise AuthenticationError("invalid or expired API key")
    scope = json.loads(row.scope)
    return Principal(
        key_id=int(row.key_id),
        group_id=row.group_id,
        role=Role(row.role),
        stores=tuple(scope.get("stores") or ()),
        guide_id=scope.get("guide_id"),
        channel=scope.get("channel"),
        member_id=scope.get("member_id"),
        name=row.name,
    )


class KeyCache:
    """Authenticated keys remembered for a few seconds per process, so a request does not
    pay a database round trip to check its key. A revocation therefore takes effect
    within `ttl` seconds on every worker."""

    def __init__(self, ttl: float = 5.0, size: int = 10_000) -> None:
        self.ttl, self.size = ttl, size
        self._entries: dict[str, tuple[Principal, float]] = {}

    async def authenticate(self, reads: Reads, vault: Vault, presented: str) -> Principal:
        # One event loop per process touches the cache, and nothing awaits between a
        # read and a write of the dict, so it needs no lock.
        now = time.monotonic()
        hit = self._entries.get(presented)
        if hit is not None and hit[1] > now:
            return hit[0]
        who = await authenticate_async(reads, vault, presented)
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[presented] = (who, now + self.ttl)
        return who


@dataclass(frozen=True)
class KeyInfo:
    key_id: int
    name: str
    role: str
    scope: dict[str, object]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


def list_keys(engine: Engine, group_id: str) -> list[KeyInfo]:
    """Every key of a group, without secrets (only their hashes are stored anyway)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(api_keys).where(api_keys.c.group_id == group_id).order_by(api_keys.c.key_id)
        ).all()
    return [
        KeyInfo(
            int(r.key_id),
            r.name,
            r.role,
            json.loads(r.scope),
            r.created_at,
            r.expires_at,
            r.revoked_at,
        )
        for r in rows
    ]


def revoke_key(engine: Engine, group_id: str, key_id: int) -> None:
    with engine.begin() as conn:
        done = conn.execute(
            update(api_keys)
            .where(
                api_keys.c.group_id == group_id,
                api_keys.c.key_id == key_id,
                api_keys.c.revoked_at.is_(None),
            )
            .values(revoked_at=stored_now())
        ).rowcount
    if not done:
        raise NotFoundError(f"key_id: no active key {key_id} in brand group {group_id}")
