"""Shares and touches, the evidence of distribution (`guides.attribution` reads them).

A share is a guide's link to a product (sku), a campaign (code) or a mini-program page
(path) under a share code unique in the brand group. A touch is someone opening it: a
member, or an identity the channel saw (a visitor not yet a member; attribution finds its
member, if any, when it runs). Touches come from the API (`record_touch`, keyed by an
idempotency key) or from the canonical events (`touches_from_events`: a `view` or `scan`
event whose `scene` is a share code, keyed by the event).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, text

from siyu.errors import NotFoundError, ValidationError
from siyu.guides.binding import guide_store
from siyu.guides.errors import ShareCodeTaken, ShareNotFound
from siyu.guides.models import SHARE_KINDS, guide_shares, share_touches
from siyu.guides.tasks import to_second
from siyu.store.dialect import dialect_of
from siyu.store.times import stored_now

CODE = re.compile(r"^[A-Za-z0-9_-]{4,64}$")
TARGET_MAX = 200
KEY_MAX = 200


@dataclass(frozen=True)
class Share:
    share_id: int
    share_code: str
    guide_id: str
    kind: str
    target: str
    created_at: datetime


_SHARE = text(
    "SELECT share_id, share_code, guide_id, kind, target, created_at FROM guide_shares "
    "WHERE group_id = :g AND share_code = :c"
)


def find_share(conn: Connection, group_id: str, share_code: str) -> Share:
    """The share of that code; `ShareNotFound` (404)."""
    r = conn.execute(_SHARE, {"g": group_id, "c": share_code}).first()
    if r is None:
        raise ShareNotFound(share_code)
    return Share(
        int(r.share_id), r.share_code, r.guide_id, r.kind, r.target, to_second(r.created_at)
    )


def record_share(
    engine: Engine,
    group_id: str,
    guide_id: str,
    kind: str,
    target: str,
    share_code: str | None = None,
    key_id: int | None = None,
) -> Share:
    """Record that `guide_id` shares `target` of `kind` under `share_code` (a new random
    code when none is given). The same code, guide, kind and target again returns the
    share recorded; a code already another share's is `ShareCodeTaken` (409)."""
    if kind not in SHARE_KINDS:
        raise ValidationError("kind", f"must be one of {', '.join(SHARE_KINDS)}")
    target = (target or "").strip()
    if not target or len(target) > TARGET_MAX or any(ord(c) < 32 for c in target):
        raise ValidationError("target", f"must be 1..{TARGET_MAX} printable characters")
    code = share_code or secrets.token_urlsafe(9)
    if not CODE.match(code):
        raise ValidationError("share_code", "must be 4..64 letters, digits, '-' or '_'")
    with engine.begin() as conn:
        guide_store(conn, group_id, guide_id)
        values = {
            "group_id": group_id,
            "share_code": code,
            "guide_id": guide_id,
            "kind": kind,
            "target": target,
            "created_at": stored_now(),
            "key_id": key_id,
        }
        conn.execute(
            dialect_of(conn).insert_ignore(guide_shares, ["group_id", "share_code"]).values(values)
        )
        share = find_share(conn, group_id, code)
    if (share.guide_id, share.kind, share.target) != (guide_id, kind, target):
        raise ShareCodeTaken(code)
    return share


_SHARES_OF = text(
    "SELECT s.share_id, s.share_code, s.guide_id, s.kind, s.target, s.created_at, "
    "(SELECT COUNT(*) FROM share_touches t WHERE t.group_id = s.group_id "
    "AND t.share_id = s.share_id) AS touches FROM guide_shares s "
    "WHERE s.group_id = :g AND s.guide_id = :gd ORDER BY s.share_id DESC LIMIT :n"
)


def shares_of(
    conn: Connection, group_id: str, guide_id: str, limit: int = 100
) -> list[tuple[Share, int]]:
    """The guide's shares, the latest first, each with how often it was opened."""
    return [
        (
            Share(
                int(r.share_id), r.share_code, r.guide_id, r.kind, r.target, to_second(r.created_at)
            ),
            int(r.touches),
        )
        for r in conn.execute(_SHARES_OF, {"g": group_id, "gd": guide_id, "n": limit})
    ]


@dataclass(frozen=True)
class Touch:
    touch_id: int
    share_id: int
    guide_id: str
    member_id: int | None
    identity_id: int | None
    touched_at: datetime


_TOUCH = text(
    "SELECT t.touch_id, t.share_id, s.guide_id, t.member_id, t.identity_id, t.touched_at "
    "FROM share_touches t JOIN guide_shares s ON s.share_id = t.share_id "
    "WHERE t.group_id = :g AND t.idempotency_key = :k"
)
_MEMBER = text("SELECT 1 FROM members WHERE group_id = :g AND member_id = :m")


def record_touch(
    engine: Engine,
    group_id: str,
    share_code: str,
    idempotency_key: str,
    touched_at: datetime,
    member_id: int | None = None,
    identity_id: int | None = None,
    key_id: int | None = None,
) -> Touch:
    """Record that a member (or an identity) opened the share at `touched_at`, once per
    idempotency key: a retry returns the touch first recorded."""
    if member_id is None and identity_id is None:
        raise ValidationError("member_id", "a touch needs a member_id or an identity_id")
    if not idempotency_key or len(idempotency_key) > KEY_MAX:
        raise ValidationError("idempotency_key", f"must be 1..{KEY_MAX} characters")
    with engine.begin() as conn:
        share = find_share(conn, group_id, share_code)
        if (
            member_id is not None
            and conn.execute(_MEMBER, {"g": group_id, "m": member_id}).first() is None
        ):
            raise NotFoundError(f"member_id: no member {member_id}")
        row = {
            "group_id": group_id,
            "idempotency_key": idempotency_key,
            "share_id": share.share_id,
            "member_id": member_id,
            "identity_id": identity_id,
            "touched_at": touched_at.replace(microsecond=0),
            "key_id": key_id,
        }
        unique = ["group_id", "idempotency_key"]
        conn.execute(dialect_of(conn).insert_ignore(share_touches, unique).values(row))
        r = conn.execute(_TOUCH, {"g": group_id, "k": idempotency_key}).one()
    return Touch(
        int(r.touch_id),
        int(r.share_id),
        str(r.guide_id),
        None if r.member_id is None else int(r.member_id),
        None if r.identity_id is None else int(r.identity_id),
        to_second(r.touched_at),
    )


_FROM_EVENTS = text("""
INSERT INTO share_touches (group_id, idempotency_key, share_id, member_id, identity_id,
                           touched_at)
SELECT e.group_id, 'event:' || e.event_id, s.share_id, e.member_id, e.identity_id,
  e.occurred_at
FROM events e JOIN guide_shares s ON s.group_id = e.group_id AND s.share_code = e.scene
WHERE e.group_id = :g AND e.type IN ('view', 'scan') AND e.scene IS NOT NULL
  AND e.occurred_at >= :since AND e.occurred_at < :until
  AND NOT EXISTS (SELECT 1 FROM share_touches t WHERE t.group_id = e.group_id
                  AND t.idempotency_key = 'event:' || e.event_id)
""")


def touches_from_events(engine: Engine, group_id: str, since: datetime, until: datetime) -> int:
    """Record a touch for every `view` or `scan` event in [since, until) whose `scene` is
    a share code (the mini-program passes the code it was opened with); returns the new
    touches. Safe to re-run: an event's touch is keyed by the event."""
    with engine.begin() as conn:
        params = {"g": group_id, "since": since, "until": until}
        return conn.execute(_FROM_EVENTS, params).rowcount
