"""OneID's reads: for the async read port (siyu.store.reads), and on a sync connection."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, text

from siyu.identity.ingest import Encoded
from siyu.store.reads import Sql

# A member's brand: what a card bound to it without a scope is scoped by.
MEMBER_BRAND = Sql("SELECT brand_id FROM members WHERE group_id = :g AND member_id = :m")
BRAND_EXISTS = Sql("SELECT 1 FROM brands WHERE group_id = :g AND brand_id = :b")

# The merges a member took part in, as survivor or as the member merged away.
MEMBER_MERGES = Sql(
    """SELECT merge_id, survivor_id, merged_id, mode, created_at, undone_at FROM merges
       WHERE group_id = :g AND (survivor_id = :m OR merged_id = :m)
       ORDER BY merge_id DESC LIMIT 50"""
)


_ANCHOR = text(
    """SELECT type, scope, value_key, value, value_masked FROM identities
       WHERE group_id = :g AND member_id = :m AND type <> 'phone' AND type IN :strong
       ORDER BY first_seen, identity_id LIMIT 1"""
).bindparams(bindparam("strong", expanding=True))


def anchor_identity(
    conn: Connection, group_id: str, member_id: int, strong_types: tuple[str, ...]
) -> Any | None:
    """The member's oldest strong identifier that is not a phone (a phone's marketplace
    hash would have to be derived from its clear value), or None: what a newly bound
    identifier is linked to."""
    return conn.execute(
        _ANCHOR, {"g": group_id, "m": member_id, "strong": list(strong_types)}
    ).first()


def anchor_encoded(
    conn: Connection, group_id: str, member_id: int, strong_types: tuple[str, ...]
) -> Encoded | None:
    """`anchor_identity` as the other end of a link to attach (`identity.attach`): what a
    bound identifier, or one presented at a coupon's redemption, is linked to."""
    row = anchor_identity(conn, group_id, member_id, strong_types)
    if row is None:
        return None
    return Encoded(row.type, "", row.value_key, row.value, None, row.value_masked, row.scope)
