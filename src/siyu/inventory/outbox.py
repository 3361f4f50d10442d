"""Delivery of the transactional outbox: at least once, in order per brand group.

Events are written in the transaction that changed the stock, so none is lost if the
process dies between the commit and the send. A delivery run takes a batch of pending
events (on PostgreSQL with a row lock that skips locked rows, so several deliverers can run),
sends each, and marks it delivered in the same transaction: a crash after a send and
before the commit sends it again. Consumers dedupe by `event_id`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text

from siyu.inventory.stock import now_utc
from siyu.store.dialect import dialect_of


@dataclass(frozen=True)
class Event:
    event_id: int
    topic: str
    key: str
    payload: dict[str, Any]


def deliver(engine: Engine, group_id: str, send: Callable[[Event], None], limit: int = 500) -> int:
    """Send up to `limit` pending events; returns how many were delivered. A send that
    raises stops the run (the event stays pending, its attempts counted)."""
    lock = dialect_of(engine).row_lock_skip_locked
    delivered = 0
    with engine.begin() as conn:
        rows = conn.execute(
            text(f"""SELECT event_id, topic, event_key, payload FROM outbox
                     WHERE group_id = :g AND delivered_at IS NULL
                     ORDER BY event_id LIMIT :n{lock}"""),
            {"g": group_id, "n": limit},
        ).all()
        for row in rows:
            event = Event(int(row.event_id), row.topic, row.event_key, json.loads(row.payload))
            try:
                send(event)
            except Exception:
                conn.execute(
                    text("UPDATE outbox SET attempts = attempts + 1 WHERE event_id = :e"),
                    {"e": event.event_id},
                )
                break
            conn.execute(
                text("""UPDATE outbox SET delivered_at = :now, attempts = attempts + 1
                        WHERE event_id = :e"""),
                {"e": event.event_id, "now": now_utc()},
            )
            delivered += 1
    return delivered
