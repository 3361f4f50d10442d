"""A send's life after its draft: held for review once planned (a preview), sent
(released to the outbox), or cancelled; the sends listed with their state.

A send's status is its state (`models.SEND_STATUSES`): draft → held → planned, or draft
→ planned at once; draft, held and planned → cancelled. A held send's recipients are
written and hold their cap slots, so the preview is what will go, but the outbox delivers
only sends whose status is `planned` (`outbox._DUE`). Releasing it makes it planned; a
marketing send released after its time goes at once, or at the end of the quiet hours it
is released in.
Cancelling skips every message no worker holds (reason `send_cancelled`), so they no
longer count against anyone's caps; what a worker already holds goes out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, DateTime, Engine, bindparam, text

from siyu.messaging import policy as policies
from siyu.messaging.errors import SendState
from siyu.messaging.models import SEND_STATUSES
from siyu.messaging.plan import counts
from siyu.messaging.sends import Send, load
from siyu.store.times import as_stored, stored_now, stored_time

HELD = "held"  # planned for review, awaiting release
STATES = SEND_STATUSES
CANCELLED_REASON = "send_cancelled"
WAITING = "('planned', 'deferred', 'retry')"


@dataclass(frozen=True)
class SendRow:
    send_id: int
    send: Send
    state: str  # one of STATES
    due_at: datetime | None
    planned_at: datetime | None
    created_at: datetime


def _time(value: object) -> datetime | None:
    return None if value is None else stored_time(value)  # type: ignore[arg-type]


_SELECT = """SELECT send_id, body, status, due_at, planned_at, created_at FROM sends
    WHERE group_id = :g"""


def _row(r: object) -> SendRow:
    created = _time(r.created_at)  # type: ignore[attr-defined]
    assert created is not None
    return SendRow(
        int(r.send_id),  # type: ignore[attr-defined]
        Send.model_validate(json.loads(r.body)),  # type: ignore[attr-defined]
        str(r.status),  # type: ignore[attr-defined]
        _time(r.due_at),  # type: ignore[attr-defined]
        _time(r.planned_at),  # type: ignore[attr-defined]
        created,
    )


def listed(conn: Connection, group_id: str, limit: int = 500) -> list[SendRow]:
    """The group's sends, newest first."""
    rows = conn.execute(
        text(f"{_SELECT} ORDER BY created_at DESC, send_id DESC LIMIT :n"),
        {"g": group_id, "n": limit},
    ).all()
    return [_row(r) for r in rows]


def one(conn: Connection, group_id: str, code: str) -> SendRow:
    """The send `code` with its state (404 `not_found` naming the code)."""
    found = load(conn, group_id, code)
    row = conn.execute(text(f"{_SELECT} AND send_id = :s"), {"g": group_id, "s": found.send_id})
    return _row(row.one())


def release(engine: Engine, group_id: str, code: str, now: datetime | None = None) -> SendRow:
    """Send a held plan: the outbox delivers it from its time (409 `send_state` unless
    held). Marketing released after its time goes now, or when the quiet hours end."""
    at = as_stored(now) if now is not None else stored_now()
    with engine.begin() as conn:
        found = one(conn, group_id, code)
        if found.state != HELD:
            raise SendState(f"send: {code} is {found.state}; only a held plan is sent")
        due = found.due_at or at
        if found.send.purpose == "marketing" and due < at:
            _, policy = policies.current(conn, group_id)
            due = policy.out_of_quiet(at)
        moved = due != found.due_at
        changed = conn.execute(
            text("""UPDATE sends SET status = 'planned', due_at = :due WHERE send_id = :s
                      AND status = 'held'""").bindparams(bindparam("due", type_=DateTime())),
            {"s": found.send_id, "due": due},
        ).rowcount
        if changed != 1:
            raise SendState(f"send: {code} changed meanwhile; only a held plan is sent")
        if moved:
            conn.execute(
                text(f"""UPDATE send_recipients SET due_at = :due WHERE group_id = :g
                           AND send_id = :s AND status IN {WAITING}""").bindparams(
                    bindparam("due", type_=DateTime())
                ),
                {"g": group_id, "s": found.send_id, "due": due},
            )
        return one(conn, group_id, code)


def cancel(
    engine: Engine, group_id: str, code: str, now: datetime | None = None
) -> tuple[SendRow, int]:
    """Cancel a draft, a held or a planned send; returns it and how many waiting messages
    were skipped (`send_cancelled`). 409 `send_state` when cancelled already."""
    at = as_stored(now) if now is not None else stored_now()
    with engine.begin() as conn:
        found = one(conn, group_id, code)
        changed = conn.execute(
            text("""UPDATE sends SET status = 'cancelled'
                    WHERE send_id = :s AND status IN ('draft', 'held', 'planned')"""),
            {"s": found.send_id},
        ).rowcount
        if changed != 1:
            raise SendState(f"send: {code} is {found.state}; it cannot be cancelled")
        skipped = conn.execute(
            text(f"""UPDATE send_recipients SET status = 'skipped', reason = :r
                     WHERE group_id = :g AND send_id = :s AND status IN {WAITING}
                       AND (claimed_until IS NULL OR claimed_until <= :now)""").bindparams(
                bindparam("now", type_=DateTime())
            ),
            {"g": group_id, "s": found.send_id, "r": CANCELLED_REASON, "now": at},
        ).rowcount
        return one(conn, group_id, code), int(skipped)


def tally(conn: Connection, group_id: str, send_id: int) -> dict[str, int]:
    """Recipients by status, the skipped by reason (`plan.counts`)."""
    return counts(conn, group_id, send_id)
