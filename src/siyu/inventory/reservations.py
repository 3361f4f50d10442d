"""Online orders: reserve → confirm (on payment) → release (cancel, or expiry after a TTL).

A reservation is idempotent by order id and all-or-nothing: every line finds a location
with the units, or nothing is reserved. Lines are taken in SKU order, so concurrent
multi-line reservations lock rows in one order. Where a line is served from: the buyer's
city first (the nearest location there when the buyer's coordinates are given, else the
one with most available), then the channel's other locations by most available.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, text

from siyu.errors import ConflictError, NotFoundError, ValidationError
from siyu.inventory.stock import OutOfStock, announce, channels_of, move, now_utc

DEFAULT_TTL = timedelta(minutes=15)
MAX_LINES = 100


class ReservationClosed(ConflictError):
    code = "reservation_closed"


@dataclass
class Reservation:
    reservation_id: int
    order_id: str
    channel: str
    status: str
    expires_at: datetime
    lines: list[dict[str, Any]] = field(default_factory=list)
    replayed: bool = False


def reserve(
    engine: Engine,
    group_id: str,
    order_id: str,
    channel: str,
    lines: list[tuple[str, int]],
    city: str | None = None,
    near: tuple[int, int] | None = None,  # buyer (lat, lon) in microdegrees
    ttl: timedelta = DEFAULT_TTL,
    key_id: int | None = None,
) -> Reservation:
    wanted = _merge_lines(lines)
    digest = hashlib.sha256(json.dumps([channel, sorted(wanted.items())]).encode()).hexdigest()
    now = now_utc()
    with engine.begin() as conn:
        row = conn.execute(
            text("""INSERT INTO reservations (group_id, order_id, channel, status,
                      request_sha256, expires_at, created_at, updated_at)
                    VALUES (:g, :o, :c, 'open', :h, :exp, :now, :now)
                    ON CONFLICT (group_id, order_id) DO NOTHING RETURNING reservation_id"""),
            {"g": group_id, "o": order_id, "c": channel, "h": digest, "exp": now + ttl, "now": now},
        ).first()
        if row is None:
            return _existing(conn, group_id, order_id, digest)
        reservation_id = int(row[0])
        candidates = _candidates(conn, group_id, channel)
        taken = []
        for line_no, (sku, qty) in enumerate(sorted(wanted.items()), start=1):
            location = _take(
                conn, group_id, sku, qty, candidates, city, near, now, reservation_id, key_id
            )
            taken.append({"line_no": line_no, "sku": sku, "location_id": location, "qty": qty})
        conn.execute(
            text("""INSERT INTO reservation_lines (reservation_id, line_no, sku, location_id, qty)
                    VALUES (:r, :n, :s, :l, :q)"""),
            [
                {
                    "r": reservation_id,
                    "n": t["line_no"],
                    "s": t["sku"],
                    "l": t["location_id"],
                    "q": t["qty"],
                }
                for t in taken
            ],
        )
        announce(conn, group_id, wanted, now)
    return Reservation(reservation_id, order_id, channel, "open", now + ttl, taken)


def confirm(engine: Engine, group_id: str, reservation_id: int) -> Reservation:
    """Payment arrived: the reserved units are sold (on hand and reserved both go down).
    Idempotent; refused once released or expired."""
    return _close(engine, group_id, reservation_id, "confirmed")


def release(engine: Engine, group_id: str, reservation_id: int) -> Reservation:
    """Cancelled: the units go back on sale. Idempotent; refused once confirmed."""
    return _close(engine, group_id, reservation_id, "released")


def sweep_expired(engine: Engine, group_id: str, now: datetime | None = None) -> int:
    """Expire open reservations past their TTL; returns how many. Safe to run anywhere,
    any time: each is closed under its row lock, and skipped if something else closed it."""
    now = now or now_utc()
    with engine.connect() as conn:
        due = (
            conn.execute(
                text("""SELECT reservation_id FROM reservations WHERE group_id = :g
                    AND status = 'open' AND expires_at <= :now ORDER BY reservation_id"""),
                {"g": group_id, "now": now},
            )
            .scalars()
            .all()
        )
    expired = 0
    for reservation_id in due:
        if _close(engine, group_id, int(reservation_id), "expired", now).status == "expired":
            expired += 1
    return expired


def get(conn: Connection, group_id: str, reservation_id: int) -> Reservation:
    row = conn.execute(
        text("""SELECT reservation_id, order_id, channel, status, expires_at FROM reservations
                WHERE group_id = :g AND reservation_id = :r"""),
        {"g": group_id, "r": reservation_id},
    ).first()
    if row is None:
        raise NotFoundError(f"reservation_id: no reservation {reservation_id}")
    lines = conn.execute(
        text("""SELECT line_no, sku, location_id, qty FROM reservation_lines
                WHERE reservation_id = :r ORDER BY line_no"""),
        {"r": reservation_id},
    ).all()
    return Reservation(
        int(row.reservation_id),
        row.order_id,
        row.channel,
        row.status,
        _time(row.expires_at),
        [dict(r._mapping) for r in lines],
    )


def _close(
    engine: Engine, group_id: str, reservation_id: int, to: str, now: datetime | None = None
) -> Reservation:
    now = now or now_utc()
    asked = to
    with engine.begin() as conn:
        lock = " FOR UPDATE" if conn.dialect.name == "postgresql" else ""
        row = conn.execute(
            text(f"""SELECT status, expires_at FROM reservations
                     WHERE group_id = :g AND reservation_id = :r{lock}"""),
            {"g": group_id, "r": reservation_id},
        ).first()
        if row is None:
            raise NotFoundError(f"reservation_id: no reservation {reservation_id}")
        current = get(conn, group_id, reservation_id)
        if row.status == to:
            current.replayed = True
            return current
        if row.status != "open":
            if to == "expired":
                return current  # closed meanwhile: nothing to expire
            raise ReservationClosed(f"reservation_id: reservation {reservation_id} is {row.status}")
        if to == "confirmed" and _time(row.expires_at) <= now:
            to = "expired"  # paid too late: the units go back, and the caller is told
        kind = {"confirmed": "sale", "released": "release", "expired": "expire"}[to]
        for line in current.lines:
            qty = int(line["qty"])
            sold = -qty if to == "confirmed" else 0
            move(
                conn,
                group_id,
                line["sku"],
                line["location_id"],
                kind,
                sold,
                -qty,
                now,
                reference=f"reservation:{reservation_id}",
            )
        conn.execute(
            text("""UPDATE reservations SET status = :s, updated_at = :now
                    WHERE reservation_id = :r"""),
            {"s": to, "now": now, "r": reservation_id},
        )
        announce(conn, group_id, [line["sku"] for line in current.lines], now)
        current.status = to
    if asked == "confirmed" and to == "expired":
        raise ReservationClosed(
            f"reservation_id: reservation {reservation_id} expired before it was confirmed"
        )
    return current


def _take(
    conn: Connection,
    group_id: str,
    sku: str,
    qty: int,
    candidates: list[Any],
    city: str | None,
    near: tuple[int, int] | None,
    now: datetime,
    reservation_id: int,
    key_id: int | None,
) -> str:
    available = {
        r.location_id: int(r.on_hand) - int(r.reserved)
        for r in conn.execute(
            text("""SELECT location_id, on_hand, reserved FROM stock_levels
                    WHERE group_id = :g AND sku = :s"""),
            {"g": group_id, "s": sku},
        )
    }

    def preference(loc: Any) -> tuple[int, int, int, str]:
        same_city = 0 if city is not None and loc.city == city else 1
        distance = 0
        if same_city == 0 and near is not None and loc.lat_e6 is not None:
            distance = (int(loc.lat_e6) - near[0]) ** 2 + (int(loc.lon_e6) - near[1]) ** 2
        return (same_city, distance, -available.get(loc.location_id, 0), loc.location_id)

    for loc in sorted(candidates, key=preference):
        if available.get(loc.location_id, 0) < qty:
            continue
        try:
            move(
                conn,
                group_id,
                sku,
                loc.location_id,
                "reserve",
                0,
                qty,
                now,
                reference=f"reservation:{reservation_id}",
                key_id=key_id,
            )
        except OutOfStock:
            continue  # taken meanwhile by another buyer: try the next location
        return str(loc.location_id)
    best = max((available.get(loc.location_id, 0) for loc in candidates), default=0)
    raise OutOfStock(sku, qty, best)


def _candidates(conn: Connection, group_id: str, channel: str) -> list[Any]:
    allowed = channels_of(conn, group_id).get(channel)
    rows = conn.execute(
        text("""SELECT location_id, city, lat_e6, lon_e6 FROM stock_locations
                WHERE group_id = :g ORDER BY location_id"""),
        {"g": group_id},
    ).all()
    return [r for r in rows if allowed is None or r.location_id in allowed]


def _existing(conn: Connection, group_id: str, order_id: str, digest: str) -> Reservation:
    row = conn.execute(
        text("""SELECT reservation_id, request_sha256 FROM reservations
                WHERE group_id = :g AND order_id = :o"""),
        {"g": group_id, "o": order_id},
    ).one()
    if row.request_sha256 != digest:
        raise ConflictError(f"order_id: order {order_id!r} was reserved with other lines")
    found = get(conn, group_id, int(row.reservation_id))
    found.replayed = True
    return found


def _merge_lines(lines: list[tuple[str, int]]) -> dict[str, int]:
    if not lines:
        raise ValidationError("lines", "at least one line")
    if len(lines) > MAX_LINES:
        raise ValidationError("lines", f"at most {MAX_LINES} lines")
    wanted: dict[str, int] = {}
    for i, (sku, qty) in enumerate(lines):
        if not sku or len(sku) > 64:
            raise ValidationError(f"lines[{i}].sku", "1 to 64 characters")
        if not isinstance(qty, int) or not 1 <= qty <= 10_000:
            raise ValidationError(f"lines[{i}].qty", "an integer from 1 to 10000")
        wanted[sku] = wanted.get(sku, 0) + qty
    return wanted


def _time(value: datetime | str) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value
