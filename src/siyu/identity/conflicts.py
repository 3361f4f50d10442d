"""The OneID conflicts an operator reviews: links refused by the policy, phone changes
accepted, weak identifiers seen with several members. Values are shown masked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, text


@dataclass(frozen=True)
class Conflict:
    conflict_id: int
    kind: str
    detail: str
    identity_x: str  # "type masked-value (member N)", type@scope for a scoped identity
    identity_y: str
    detected_at: datetime
    # the parts of identity_x and identity_y, for a face to word in its language
    type_x: str = ""
    masked_x: str = ""
    member_x: int | None = None
    type_y: str | None = None
    masked_y: str | None = None
    member_y: int | None = None
    scope_x: str = ""  # a card's brand, an openid's app, ... ('' for global identifiers)
    scope_y: str | None = None


def list_conflicts(
    engine: Engine, group_id: str, kind: str | None = None, limit: int = 50
) -> list[Conflict]:
    """Newest first; `kind` filters (exclusive_clash, phone_change, weak_ambiguous)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("""
            SELECT c.conflict_id, c.kind, c.detail, c.detected_at,
                   x.type, x.value_masked, x.member_id, y.type, y.value_masked, y.member_id,
                   x.scope, y.scope
            FROM identity_conflicts c
            JOIN identities x ON x.identity_id = c.identity_x
            LEFT JOIN identities y ON y.identity_id = c.identity_y
            WHERE c.group_id = :g AND (CAST(:kind AS VARCHAR(32)) IS NULL OR c.kind = :kind)
            ORDER BY c.conflict_id DESC
            LIMIT :limit"""),
            {"g": group_id, "kind": kind, "limit": limit},
        ).all()
    return [
        Conflict(
            r[0],
            r[1],
            r[2],
            f"{_scoped(r[4], r[10])} {r[5]} (member {r[6]})",
            f"{_scoped(r[7], r[11])} {r[8]} (member {r[9]})" if r[7] else "",
            r[3],
            r[4],
            r[5],
            r[6],
            r[7],
            r[8],
            r[9],
            r[10],
            r[11],
        )
        for r in rows
    ]


def _scoped(type_: str, scope: str | None) -> str:
    return f"{type_}@{scope}" if scope else type_
