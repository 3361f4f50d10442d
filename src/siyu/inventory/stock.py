"""Stock levels and movements: the one way stock changes.

`move` changes one SKU at one location by a movement: a conditional UPDATE that the
database refuses when it would leave fewer units on hand than are reserved (or a negative
reservation), then the movement row. Every change of what a location can sell also
queues, in the same transaction, an available-to-promise event per channel that ships
from there (the transactional outbox, inventory/outbox.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, text

from siyu.errors import NotFoundError, ValidationError
from siyu.inventory.errors import MovementKeyReused, OutOfStock
from siyu.store.dialect import dialect_of
from siyu.store.times import stored_now

MAX_UNITS = 10**9


@dataclass(frozen=True)
class Level:
    sku: str
    location_id: str
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


now_utc = stored_now  # inventory's callers and tests import it from here


def move(
    conn: Connection,
    group_id: str,
    sku: str,
    location_id: str,
    kind: str,
    on_hand_delta: int,
    reserved_delta: int,
    now: datetime,
    reason: str | None = None,
    reference: str | None = None,
    idempotency_key: str | None = None,
    key_id: int | None = None,
) -> Level:
    """Apply one movement; OutOfStock if it would oversell. The caller holds the
    transaction and calls `announce` for the SKUs it touched before committing."""
    conn.execute(
        text("""INSERT INTO stock_levels (group_id, sku, location_id, on_hand, reserved,
                  updated_at) VALUES (:g, :s, :l, 0, 0, :now)
                ON CONFLICT (group_id, sku, location_id) DO NOTHING"""),
        {"g": group_id, "s": sku, "l": location_id, "now": now},
    )
    row = conn.execute(
        text("""UPDATE stock_levels SET on_hand = on_hand + :dh, reserved = reserved + :dr,
                  updated_at = :now
                WHERE group_id = :g AND sku = :s AND location_id = :l
                  AND on_hand + :dh >= reserved + :dr AND reserved + :dr >= 0
                RETURNING on_hand, reserved"""),
        {
            "g": group_id,
            "s": sku,
            "l": location_id,
            "dh": on_hand_delta,
            "dr": reserved_delta,
            "now": now,
        },
    ).first()
    if row is None:
        current = level(conn, group_id, sku, location_id)
        raise OutOfStock(sku, max(reserved_delta, -on_hand_delta), current.available, location_id)
    conn.execute(
        text("""INSERT INTO stock_movements (group_id, sku, location_id, kind, on_hand_delta,
                  reserved_delta, reason, reference, idempotency_key, key_id, created_at)
                VALUES (:g, :s, :l, :k, :dh, :dr, :r, :ref, :idem, :key, :now)"""),
        {
            "g": group_id,
            "s": sku,
            "l": location_id,
            "k": kind,
            "dh": on_hand_delta,
            "dr": reserved_delta,
            "r": reason,
            "ref": reference,
            "idem": idempotency_key,
            "key": key_id,
            "now": now,
        },
    )
    return Level(sku, location_id, int(row.on_hand), int(row.reserved))


def level(conn: Connection, group_id: str, sku: str, location_id: str) -> Level:
    row = conn.execute(
        text("""SELECT on_hand, reserved FROM stock_levels
                WHERE group_id = :g AND sku = :s AND location_id = :l"""),
        {"g": group_id, "s": sku, "l": location_id},
    ).first()
    return Level(sku, location_id, int(row.on_hand) if row else 0, int(row.reserved) if row else 0)


@dataclass
class Adjusted:
    level: Level
    movement: str
    delta: int
    replayed: bool = False


def set_stock(
    engine: Engine,
    group_id: str,
    sku: str,
    location_id: str,
    *,
    on_hand: int | None = None,
    delta: int | None = None,
    kind: str,
    reason: str,
    idempotency_key: str,
    key_id: int | None = None,
) -> Adjusted:
    """A count (`on_hand`: what is on the shelf now) or a movement by `delta` (receive,
    return, adjustment, sale at the till, transfer). Refused if it would leave fewer units
    than are reserved for online orders. Idempotent by key."""
    if (on_hand is None) == (delta is None):
        raise ValidationError("on_hand", "give either on_hand (a count) or delta")
    if on_hand is not None and not 0 <= on_hand <= MAX_UNITS:
        raise ValidationError("on_hand", f"an integer from 0 to {MAX_UNITS}")
    if delta is not None and not (0 < abs(delta) <= MAX_UNITS):
        raise ValidationError("delta", f"a non-zero integer of at most {MAX_UNITS} units")
    expected_sign = {"receive": 1, "return": 1, "transfer_in": 1, "sale": -1, "transfer_out": -1}
    if delta is not None and kind in expected_sign and delta * expected_sign[kind] < 0:
        raise ValidationError(
            "delta", f"a {kind} {'adds' if expected_sign[kind] > 0 else 'takes'} units"
        )
    now = now_utc()
    with engine.begin() as conn:
        _require_location(conn, group_id, location_id)
        seen = conn.execute(
            text("""SELECT sku, location_id, kind, on_hand_delta, reason FROM stock_movements
                    WHERE group_id = :g AND idempotency_key = :k"""),
            {"g": group_id, "k": idempotency_key},
        ).first()
        if seen is not None:
            # The key is the group's: whoever sent it first, a retry must ask for the same
            # movement (a count's number is not kept, so its SKU, place and reason decide).
            if (
                (seen.sku, seen.location_id, seen.kind, seen.reason)
                != (sku, location_id, kind if on_hand is None else "count", reason)
            ) or (delta is not None and int(seen.on_hand_delta) != delta):
                raise MovementKeyReused(
                    "Idempotency-Key: already used for a different movement; use a new key"
                )
            return Adjusted(
                level(conn, group_id, sku, location_id),
                seen.kind,
                int(seen.on_hand_delta),
                replayed=True,
            )
        if on_hand is not None:
            current = locked_level(conn, group_id, sku, location_id)
            change, movement = on_hand - current.on_hand, "count"
        else:
            change, movement = int(delta or 0), kind
        after = move(
            conn,
            group_id,
            sku,
            location_id,
            movement,
            change,
            0,
            now,
            reason,
            None,
            idempotency_key,
            key_id,
        )
        announce(conn, group_id, [sku], now)
    return Adjusted(after, movement, change)


def locked_level(conn: Connection, group_id: str, sku: str, location_id: str) -> Level:
    """The level, its row locked until the caller's transaction ends (a count's base)."""
    lock = dialect_of(conn).row_lock
    row = conn.execute(
        text(f"""SELECT on_hand, reserved FROM stock_levels
                 WHERE group_id = :g AND sku = :s AND location_id = :l{lock}"""),
        {"g": group_id, "s": sku, "l": location_id},
    ).first()
    return Level(sku, location_id, int(row.on_hand) if row else 0, int(row.reserved) if row else 0)


def _require_location(conn: Connection, group_id: str, location_id: str) -> Any:
    found = conn.execute(
        text("""SELECT kind, store_id, city FROM stock_locations
                WHERE group_id = :g AND location_id = :l"""),
        {"g": group_id, "l": location_id},
    ).first()
    if found is None:
        raise NotFoundError(f"location_id: no location {location_id!r}")
    return found


def channels_of(conn: Connection, group_id: str) -> dict[str, list[str]]:
    """channel -> the locations it ships from (a channel with none configured ships from
    every location of the group)."""
    rows = conn.execute(
        text("SELECT channel, location_id FROM channel_locations WHERE group_id = :g"),
        {"g": group_id},
    ).all()
    found: dict[str, list[str]] = {}
    for channel, location in rows:
        found.setdefault(channel, []).append(location)
    return found


def atp(conn: Connection, group_id: str, sku: str) -> dict[str, int]:
    """Available to promise per configured online channel: what its locations have
    available, minus the channel's safety stock, never below zero."""
    return atp_many(conn, group_id, [sku]).get(sku, {})


def atp_many(conn: Connection, group_id: str, skus: Iterable[str]) -> dict[str, dict[str, int]]:
    """`atp` of many SKUs in three queries, whatever their number."""
    wanted = sorted(set(skus))
    channels = channels_of(conn, group_id)
    if not wanted or not channels:
        return {}
    levels: dict[str, dict[str, int]] = {}
    for r in conn.execute(
        text("""SELECT sku, location_id, on_hand, reserved FROM stock_levels
                WHERE group_id = :g AND sku IN :skus""").bindparams(
            bindparam("skus", expanding=True)
        ),
        {"g": group_id, "skus": wanted},
    ):
        levels.setdefault(r.sku, {})[r.location_id] = int(r.on_hand) - int(r.reserved)
    safety: dict[str, int] = dict(
        conn.execute(
            text("SELECT channel, units FROM channel_safety_stock WHERE group_id = :g"),
            {"g": group_id},
        ).all()
    )
    return {
        sku: {
            channel: max(
                sum(levels.get(sku, {}).get(loc, 0) for loc in locations)
                - int(safety.get(channel, 0)),
                0,
            )
            for channel, locations in channels.items()
        }
        for sku in wanted
    }


def announce(conn: Connection, group_id: str, skus: Iterable[str], now: datetime) -> None:
    """Queue the new available-to-promise of each SKU for every channel, in the caller's
    transaction: committed with the change or not at all."""
    rows = []
    for sku, by_channel in atp_many(conn, group_id, skus).items():
        for channel, units in by_channel.items():
            rows.append(
                {
                    "g": group_id,
                    "t": "stock.atp",
                    "k": f"{channel}:{sku}",
                    "p": json.dumps({"channel": channel, "sku": sku, "atp": units}),
                    "now": now,
                }
            )
    if rows:
        conn.execute(
            text("""INSERT INTO outbox (group_id, topic, event_key, payload, created_at,
                      attempts) VALUES (:g, :t, :k, :p, :now, 0)"""),
            rows,
        )
