"""Delivery receipts from the platforms themselves (their signed pushes and status
callbacks), recorded as message events once each.

A receipt names its message by the platform's reference answered at send time (a WeChat
`msgid`, an SMS `SerialNo`), which the outbox keeps as `provider_ref`. A platform can
report a message before the worker that sent it has settled its batch (a batch of 500
subscription messages is settled after its last call), so a receipt whose reference no
sent message has yet is parked, and `adopt`, run where the outbox marks messages sent,
records it then. Parked receipts no message claims within PARKED_FOR (another system of
the brand sending on the same account) are dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, bindparam, text

from siyu.messaging.transports.base import Receipt
from siyu.store.times import as_stored, stored_now, stored_time

PARKED_FOR = timedelta(days=1)

_SENT = text("""SELECT provider_ref, send_id, member_id FROM send_recipients
    WHERE group_id = :g AND channel = :c AND status = 'sent' AND provider_ref IN :refs
    ORDER BY send_id, member_id""").bindparams(bindparam("refs", expanding=True))
_EVENT = text("""INSERT INTO message_events (group_id, send_id, member_id, kind, external_id,
      detail, at) VALUES (:g, :s, :m, :k, :x, :d, :at)
    ON CONFLICT (group_id, external_id) DO NOTHING""").bindparams(bindparam("at", type_=DateTime()))
_PARK = text("""INSERT INTO parked_receipts (group_id, external_id, channel, provider_ref,
      kind, detail, at, received_at) VALUES (:g, :x, :c, :ref, :k, :d, :at, :now)
    ON CONFLICT (group_id, external_id) DO NOTHING""").bindparams(
    bindparam("at", type_=DateTime()), bindparam("now", type_=DateTime())
)
_PRUNE = text("DELETE FROM parked_receipts WHERE group_id = :g AND received_at < :cut").bindparams(
    bindparam("cut", type_=DateTime())
)
_PARKED = text("""SELECT external_id, channel, provider_ref, kind, detail, at
    FROM parked_receipts WHERE group_id = :g AND provider_ref IN :refs""").bindparams(
    bindparam("refs", expanding=True)
)
_UNPARK = text(
    "DELETE FROM parked_receipts WHERE group_id = :g AND external_id IN :ids"
).bindparams(bindparam("ids", expanding=True))


@dataclass(frozen=True)
class Recorded:
    recorded: int  # new message events
    duplicate: int  # reported before (recorded or parked already)
    parked: int  # no sent message has the reference yet


def record(
    engine: Engine,
    group_id: str,
    channel: str,
    receipts: Sequence[Receipt],
    now: datetime | None = None,
) -> Recorded:
    """Record each receipt as an event of the sent message on `channel` with its
    reference, once per event id; park those no sent message has yet. One transaction."""
    at_now = as_stored(now) if now is not None else stored_now()
    recorded = duplicate = parked = 0
    with engine.begin() as conn:
        conn.execute(_PRUNE, {"g": group_id, "cut": at_now - PARKED_FOR})
        found = _messages(conn, group_id, channel, {r.provider_ref for r in receipts})
        for receipt in receipts:
            at = as_stored(receipt.at) if receipt.at is not None else at_now
            message = found.get(receipt.provider_ref)
            if message is not None:
                new = _event(
                    conn, group_id, message, receipt.kind, receipt.event_id, receipt.detail, at
                )
                recorded += new
                duplicate += not new
                continue
            kept = conn.execute(
                _PARK,
                {
                    "g": group_id,
                    "x": receipt.event_id,
                    "c": channel,
                    "ref": receipt.provider_ref,
                    "k": receipt.kind,
                    "d": receipt.detail,
                    "at": at,
                    "now": at_now,
                },
            ).rowcount
            parked += kept
            duplicate += not kept
    return Recorded(recorded, duplicate, parked)


def adopt(conn: Connection, group_id: str, sent: Iterable[tuple[int, int, str, str]]) -> int:
    """Record the parked receipts of messages just marked sent, given as (send_id,
    member_id, channel, provider_ref), in the caller's transaction; returns how many."""
    by_ref = {(channel, ref): (s, m) for s, m, channel, ref in sent}
    if not by_ref:
        return 0
    rows = conn.execute(_PARKED, {"g": group_id, "refs": sorted({r for _, r in by_ref})}).all()
    taken = []
    for row in rows:
        message = by_ref.get((row.channel, row.provider_ref))
        if message is None:
            continue
        _event(conn, group_id, message, row.kind, row.external_id, row.detail, stored_time(row.at))
        taken.append(row.external_id)
    if taken:
        conn.execute(_UNPARK, {"g": group_id, "ids": taken})
    return len(taken)


def _messages(
    conn: Connection, group_id: str, channel: str, refs: set[str]
) -> dict[str, tuple[int, int]]:
    if not refs:
        return {}
    found: dict[str, tuple[int, int]] = {}
    for ref, send_id, member_id in conn.execute(
        _SENT, {"g": group_id, "c": channel, "refs": sorted(refs)}
    ).all():
        found.setdefault(str(ref), (int(send_id), int(member_id)))
    return found


def _event(
    conn: Connection,
    group_id: str,
    message: tuple[int, int],
    kind: str,
    event_id: str,
    detail: str | None,
    at: Any,
) -> bool:
    params = {
        "g": group_id,
        "s": message[0],
        "m": message[1],
        "k": kind,
        "x": event_id,
        "d": None if detail is None else detail[:300],
        "at": at,
    }
    return bool(conn.execute(_EVENT, params).rowcount)
