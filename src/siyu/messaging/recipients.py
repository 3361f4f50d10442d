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
from siyu.messaging.models import SKIP_BLOCK, SKIP_REASONS
from siyu.privacy import Vault
from siyu.store.dialect import dialect_of
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
    """The SQL condition on `r` (send_recipients) selecting a figure's members among the
    rows; the skip sets' part of a figure is `set_reasons`."""
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


def set_reasons(figure: str) -> tuple[str, ...]:
    """The skip reasons whose sets (`send_skips`: members skipped by the planning) hold
    members of `figure`; none for what only rows hold (planned, sent, clicked, ...)."""
    if figure in ("all", "skipped"):
        return SKIP_REASONS
    return (figure,) if figure in SKIP_REASONS else ()


_ROWS = """SELECT r.member_id, r.person_id, r.status, r.reason, r.due_at, r.sent_at,
      r.attempts, r.last_error, r.identity_id
    FROM send_recipients r
    WHERE r.group_id = :g AND r.send_id = :s AND {where} AND r.member_id > :after"""
_SETS = """SELECT {member} AS member_id, {person} AS person_id, 'skipped' AS status,
      k.reason, (SELECT due_at FROM sends WHERE send_id = k.send_id) AS due_at,
      NULL AS sent_at, 0 AS attempts, NULL AS last_error, {identity} AS identity_id
    FROM send_skips k {entries}
    WHERE k.group_id = :g AND k.send_id = :s AND k.reason IN ({reasons})
      AND k.id_block BETWEEN :b0 AND :b1 AND {member} > :after"""


def recipients_sql(conn: Connection, figure: str, limit: str = "") -> str:
    """SQL of the recipients behind `figure` (member, person, status, reason, due, sent,
    attempts, last error, address id) with member ids above :after, the rows' part cut
    to `limit`, and the skip sets' part from blocks :b0 to :b1 (parameters :g, :s)."""
    rows = _ROWS.format(where=figure_where(conn, figure))
    if limit:
        rows = f"SELECT * FROM ({rows} ORDER BY r.member_id {limit}) r"
    reasons = set_reasons(figure)
    if not reasons:
        return rows
    entries, (member, person, identity) = dialect_of(conn).id_set_rows("k.members", 3)
    sets = _SETS.format(
        member=member,
        person=person,
        identity=identity,
        entries=entries,
        reasons=", ".join(f"'{r}'" for r in reasons),
    )
    return f"{rows}\n    UNION ALL\n{sets}"


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
            text(f"""SELECT x.member_id FROM ({recipients_sql(conn, figure)}) x
                     ORDER BY x.member_id"""),
            {**_params(group_id, send_id, window_days), "after": 0, "b0": 0, "b1": 2**62},
        ).all()
    return [int(m) for (m,) in rows]


def _blocks(
    conn: Connection, group_id: str, send_id: int, figure: str, after: int, limit: int
) -> tuple[int, int]:
    """The blocks of skip sets a page of `limit` members above `after` may need: from the
    block holding `after + 1` to the first whose members, with those of the blocks
    between, reach `limit` (a page never expands the sets of a whole send)."""
    first = (after + 1) // SKIP_BLOCK
    reasons = set_reasons(figure)
    if not reasons:
        return first, first
    found = conn.execute(
        text(f"""SELECT id_block, SUM(member_count) AS n FROM send_skips
                 WHERE group_id = :g AND send_id = :s AND id_block > :b
                   AND reason IN ({", ".join(f"'{r}'" for r in reasons)})
                 GROUP BY id_block ORDER BY id_block"""),
        {"g": group_id, "s": send_id, "b": first},
    )
    last, seen = first, 0
    for block, n in found:
        last, seen = int(block), seen + int(n)
        if seen >= limit:
            break
    return first, last


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
    params = _params(group_id, send_id, window_days)
    b0, b1 = _blocks(conn, group_id, send_id, figure, after, limit)
    rows = conn.execute(
        text(f"""SELECT x.member_id, x.person_id, x.status, x.reason, x.due_at, x.sent_at,
                   x.attempts, x.last_error, i.type, i.value, i.value_enc, i.value_masked
                 FROM ({recipients_sql(conn, figure, "LIMIT :n")}) x
                 LEFT JOIN identities i ON i.identity_id = x.identity_id
                 ORDER BY x.member_id LIMIT :n"""),
        {**params, "after": after, "n": limit, "b0": b0, "b1": b1},
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
