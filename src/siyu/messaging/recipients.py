"""The members behind each figure of a send: by status (planned, deferred, sent, ...), by
skip reason, by what the platform reported (delivered, clicked) and the buyers its
orders were attributed to; a page at a time (keyset on member id) for the API and the
CSV, or every member id for the console's member list.

The address is answered masked to roles that see no personal data; in the clear (phones
decrypted from the vault) to those that do. Nothing here logs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from siyu.errors import ValidationError
from siyu.identity.types import IDENTITY_TYPES
from siyu.messaging.attribution import buyers_sql
from siyu.messaging.lifecycle import CANCELLED_REASON, one
from siyu.messaging.models import SKIP_REASONS
from siyu.privacy import Vault
from siyu.store.times import stored_time

STATUSES = ("planned", "deferred", "retry", "sent", "failed")
REASONS = (*SKIP_REASONS, CANCELLED_REASON)
EVENTS = ("delivered", "clicked", "read")
FIGURES = ("all", *STATUSES, "skipped", *REASONS, *EVENTS, "buyers")
MAX_PAGE = 10_000


@dataclass(frozen=True)
class Recipient:
    member_id: int
    person_id: int
    status: str
    reason: str | None
    due_at: datetime | None
    sent_at: datetime | None
    attempts: int
    last_error: str | None
    address: str | None  # masked unless the caller sees personal data

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def figure_where(conn: Connection, figure: str) -> str:
    """The SQL condition on `r` (send_recipients) selecting a figure's members."""
    if figure not in FIGURES:
        raise ValidationError("figure", f"one of {', '.join(FIGURES)}", figure)
    if figure == "all":
        return "1 = 1"
    if figure in STATUSES or figure == "skipped":
        return f"r.status = '{figure}'"
    if figure in REASONS:
        return f"r.status = 'skipped' AND r.reason = '{figure}'"
    if figure in EVENTS:
        return f"""EXISTS (SELECT 1 FROM message_events e WHERE e.group_id = r.group_id
                     AND e.send_id = r.send_id AND e.member_id = r.member_id
                     AND e.kind = '{figure}')"""
    return f"r.status = 'sent' AND r.person_id IN ({buyers_sql(conn)})"


def _params(group_id: str, send_id: int, window_days: int) -> dict[str, Any]:
    if not 1 <= window_days <= 90:
        raise ValidationError("window_days", "1 to 90 days", window_days)
    return {"g": group_id, "s": send_id, "window": window_days * 86400}


def member_ids(
    engine: Engine, group_id: str, code: str, figure: str, window_days: int = 7
) -> list[int]:
    """Every member (as targeted) behind a figure of the send, by member id."""
    with engine.connect() as conn:
        send_id = one(conn, group_id, code).send_id
        rows = conn.execute(
            text(f"""SELECT r.member_id FROM send_recipients r
                     WHERE r.group_id = :g AND r.send_id = :s AND {figure_where(conn, figure)}
                     ORDER BY r.member_id"""),
            _params(group_id, send_id, window_days),
        ).all()
    return [int(m) for (m,) in rows]


def page(
    conn: Connection,
    group_id: str,
    send_id: int,
    figure: str,
    *,
    after: int = 0,
    limit: int = 100,
    clear: bool = False,
    vault: Vault | None = None,
    window_days: int = 7,
) -> list[Recipient]:
    """Up to `limit` recipients behind `figure` with member ids above `after`; `clear`
    answers addresses unmasked (the caller sees personal data)."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError("limit", f"1 to {MAX_PAGE}", limit)
    rows = conn.execute(
        text(f"""SELECT r.member_id, r.person_id, r.status, r.reason, r.due_at, r.sent_at,
                   r.attempts, r.last_error, i.type, i.value, i.value_enc, i.value_masked
                 FROM send_recipients r
                 LEFT JOIN identities i ON i.identity_id = r.identity_id
                 WHERE r.group_id = :g AND r.send_id = :s AND r.member_id > :after
                   AND {figure_where(conn, figure)}
                 ORDER BY r.member_id LIMIT :n"""),
        {**_params(group_id, send_id, window_days), "after": after, "n": limit},
    ).all()
    return [
        Recipient(
            int(r.member_id),
            int(r.person_id),
            r.status,
            r.reason,
            None if r.due_at is None else stored_time(r.due_at),
            None if r.sent_at is None else stored_time(r.sent_at),
            int(r.attempts),
            r.last_error,
            _address(r, clear, vault),
        )
        for r in rows
    ]


def _address(r: Any, clear: bool, vault: Vault | None) -> str | None:
    if r.type is None:
        return None
    if not clear:
        return str(r.value_masked)
    if IDENTITY_TYPES[r.type].personal == "encrypt" and r.value_enc is not None:
        return str(r.value_masked) if vault is None else vault.decrypt(r.value_enc, r.type)
    return str(r.value if r.value is not None else r.value_masked)


def every(
    engine: Engine, group_id: str, code: str, figure: str, **options: Any
) -> Iterator[Recipient]:
    """Every recipient behind a figure, a page at a time (for a CSV export)."""
    with engine.connect() as conn:
        send_id = one(conn, group_id, code).send_id
        after = 0
        while True:
            found = page(conn, group_id, send_id, figure, after=after, limit=1000, **options)
            yield from found
            if len(found) < 1000:
                return
            after = found[-1].member_id
