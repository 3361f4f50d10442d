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

from sqlalchemy import Connection, Engine, bindparam, text
from sqlalchemy.exc import NoResultFound

from siyu.errors import ConflictError, NotFoundError, ValidationError
from siyu.inventory.errors import OutOfStock, ReservationClosed
from siyu.inventory.stock import announce, channels_of, move, now_utc
from siyu.store.dialect import dialect_of
from siyu.store.times import stored_time

DEFAULT_TTL = timedelta(minutes=15)
MAX_LINES = 100


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
    wanted = check_lines(lines)
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
        stored_time(row.expires_at),
        [dict(r._mapping) for r in lines],
    )


def _close(
    engine: Engine, group_id: str, reservation_id: int, to: str, now: datetime | None = None
) -> Reservation:
    now = now or now_utc()
    asked = to
    with engine.begin() as conn:
        lock = dialect_of(conn).row_lock
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
        if to == "confirmed" and stored_time(row.expires_at) <= now:
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
        return _rank(loc, city, near, available.get(loc.location_id, 0))

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


def _rank(
    loc: Any, city: str | None, near: tuple[int, int] | None, free: int
) -> tuple[int, int, int, str]:
    """Where a line is served from, best first: the buyer's city, the nearest there when
    the buyer's coordinates are known, then the most available; ties by location id."""
    same_city = 0 if city is not None and loc.city == city else 1
    distance = 0
    if same_city == 0 and near is not None and loc.lat_e6 is not None:
        distance = (int(loc.lat_e6) - near[0]) ** 2 + (int(loc.lon_e6) - near[1]) ** 2
    return (same_city, distance, -free, loc.location_id)


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


def check_lines(lines: list[tuple[str, int]]) -> dict[str, int]:
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


@dataclass(frozen=True)
class Order:
    """One order to reserve in a batch (`reserve_many`)."""

    order_id: str
    channel: str
    lines: list[tuple[str, int]]
    city: str | None = None
    near: tuple[int, int] | None = None


def reserve_many(
    engine: Engine, group_id: str, orders: list[Order], ttl: timedelta = DEFAULT_TTL
) -> list[Reservation | ConflictError]:
    """Many reservations in one transaction (a flash sale's group commit): the levels of
    every SKU involved are locked once in key order, each order is allocated in memory
    against what the earlier orders of the batch left, all-or-nothing per order, and each
    (SKU, location) is written with one guarded UPDATE. The result of each order, in order:
    its reservation, or the refusal (OutOfStock, or a conflict on a reused order id)."""
    now = now_utc()
    outcomes: list[Reservation | ConflictError | None] = [None] * len(orders)
    wanted = [check_lines(o.lines) for o in orders]
    with engine.begin() as conn:
        digests = [
            hashlib.sha256(json.dumps([o.channel, sorted(w.items())]).encode()).hexdigest()
            for o, w in zip(orders, wanted, strict=True)
        ]
        claimed = _claim_all(conn, group_id, orders, digests, now, now + ttl)
        first: dict[str, int] = {}
        for i, order in enumerate(orders):
            if order.order_id in claimed and order.order_id not in first:
                first[order.order_id] = i
        for i, order in enumerate(orders):
            if order.order_id in claimed and first[order.order_id] != i:
                continue  # twice in this batch: answered after the first is allocated
            if first.get(order.order_id) != i:  # reserved by an earlier request
                try:
                    outcomes[i] = _existing(conn, group_id, order.order_id, digests[i])
                except (ConflictError, NoResultFound):
                    outcomes[i] = ConflictError(
                        f"order_id: order {order.order_id!r} was reserved with other lines"
                    )
        skus = sorted({sku for w in wanted for sku in w})
        in_order = dialect_of(conn).lock_rows_in_order("sku", "location_id")
        levels: dict[tuple[str, str], list[int]] = {}
        for r in conn.execute(
            text(f"""SELECT sku, location_id, on_hand, reserved FROM stock_levels
                     WHERE group_id = :g AND sku IN :skus
                     {in_order}""").bindparams(_expanding("skus")),
            {"g": group_id, "skus": skus},
        ):
            levels[r.sku, r.location_id] = [int(r.on_hand), int(r.reserved)]
        start = {k: list(v) for k, v in levels.items()}
        candidates = {c: _candidates(conn, group_id, c) for c in {o.channel for o in orders}}
        lines_out: list[dict[str, Any]] = []
        refused: list[int] = []
        for i, order in enumerate(orders):
            if first.get(order.order_id) != i:
                continue
            rid = claimed[order.order_id]
            plan, short = [], None
            # What this order takes, applied to `levels` only if all its lines fit (copying
            # every level per order would make a batch quadratic in its SKUs).
            taking: dict[tuple[str, str], int] = {}
            for line_no, (sku, qty) in enumerate(sorted(wanted[i].items()), start=1):
                best: tuple[tuple[int, int, int, str], str] | None = None
                most = 0
                for c in candidates[order.channel]:
                    key = (sku, c.location_id)
                    held = levels.get(key)
                    if held is None:
                        continue
                    free = held[0] - held[1] - taking.get(key, 0)
                    most = max(most, free)
                    if free >= qty:
                        rank = _rank(c, order.city, order.near, free)
                        if best is None or rank < best[0]:
                            best = (rank, c.location_id)
                if best is None:
                    short = OutOfStock(sku, qty, most)
                    break
                loc = best[1]
                taking[sku, loc] = taking.get((sku, loc), 0) + qty
                plan.append({"line_no": line_no, "sku": sku, "location_id": loc, "qty": qty})
            if short is not None:
                outcomes[i] = short
                refused.append(rid)
                continue
            for key, qty_taken in taking.items():
                levels[key][1] += qty_taken
            lines_out.extend({"r": rid, **p} for p in plan)
            outcomes[i] = Reservation(rid, order.order_id, order.channel, "open", now + ttl, plan)
        for i, order in enumerate(orders):  # repeats within the batch answer as the first
            j = first.get(order.order_id)
            if j is not None and j != i:
                head = outcomes[j]
                if digests[i] != digests[j]:
                    outcomes[i] = ConflictError(
                        f"order_id: order {order.order_id!r} was reserved with other lines"
                    )
                elif isinstance(head, Reservation):
                    outcomes[i] = Reservation(**{**head.__dict__, "replayed": True})
                else:
                    outcomes[i] = head
        changed = [(k, levels[k][1] - start[k][1]) for k in sorted(levels) if levels[k] != start[k]]
        _write_batch(conn, group_id, changed, lines_out, now)
        if refused:
            conn.execute(
                text("DELETE FROM reservations WHERE reservation_id IN :ids").bindparams(
                    _expanding("ids")
                ),
                {"ids": refused},
            )
        announce(conn, group_id, {sku for (sku, _), _ in changed}, now)
    return [o for o in outcomes if o is not None]


def _expanding(name: str) -> Any:
    return bindparam(name, expanding=True)


def _claim_all(
    conn: Connection,
    group_id: str,
    orders: list[Order],
    digests: list[str],
    now: datetime,
    expires: datetime,
) -> dict[str, int]:
    rows = [
        {"order_id": o.order_id, "channel": o.channel, "request_sha256": d}
        for o, d in zip(orders, digests, strict=True)
    ]
    if dialect_of(conn).one_statement_per_batch:
        found = conn.execute(
            text("""INSERT INTO reservations (group_id, order_id, channel, status,
                      request_sha256, expires_at, created_at, updated_at)
                    SELECT :g, r.order_id, r.channel, 'open', r.request_sha256, :exp, :now, :now
                    FROM json_to_recordset(CAST(:rows AS json))
                      AS r(order_id VARCHAR, channel VARCHAR, request_sha256 VARCHAR)
                    ON CONFLICT (group_id, order_id) DO NOTHING
                    RETURNING order_id, reservation_id"""),
            {"g": group_id, "exp": expires, "now": now, "rows": json.dumps(rows)},
        ).all()
        return {order_id: int(rid) for order_id, rid in found}
    claimed: dict[str, int] = {}
    for row in rows:
        got = conn.execute(
            text("""INSERT INTO reservations (group_id, order_id, channel, status,
                      request_sha256, expires_at, created_at, updated_at)
                    VALUES (:g, :order_id, :channel, 'open', :request_sha256, :exp, :now, :now)
                    ON CONFLICT (group_id, order_id) DO NOTHING RETURNING reservation_id"""),
            {"g": group_id, "exp": expires, "now": now, **row},
        ).first()
        if got is not None:
            claimed[row["order_id"]] = int(got[0])
    return claimed


def _write_batch(
    conn: Connection,
    group_id: str,
    changed: list[tuple[tuple[str, str], int]],
    lines: list[dict[str, Any]],
    now: datetime,
) -> None:
    """The batch's level changes (guarded), lines and movements: one statement each on
    PostgreSQL (rows as one JSON text), a statement per row on SQLite."""
    one_statement = dialect_of(conn).one_statement_per_batch
    if changed:
        deltas = [{"sku": sku, "loc": loc, "d": d} for (sku, loc), d in changed]
        if one_statement:
            done = len(
                conn.execute(
                    text("""UPDATE stock_levels AS s SET reserved = s.reserved + r.d,
                              updated_at = :now
                            FROM json_to_recordset(CAST(:rows AS json))
                              AS r(sku VARCHAR, loc VARCHAR, d BIGINT)
                            WHERE s.group_id = :g AND s.sku = r.sku AND s.location_id = r.loc
                              AND s.on_hand >= s.reserved + r.d
                            RETURNING s.sku"""),
                    {"g": group_id, "now": now, "rows": json.dumps(deltas)},
                ).all()
            )
        else:
            done = sum(
                conn.execute(
                    text("""UPDATE stock_levels SET reserved = reserved + :d, updated_at = :now
                            WHERE group_id = :g AND sku = :sku AND location_id = :loc
                              AND on_hand >= reserved + :d"""),
                    {"g": group_id, "now": now, **x},
                ).rowcount
                for x in deltas
            )
        if done != len(deltas):  # impossible under the locks: never commit if it happens
            raise AssertionError(f"batch reservation touched {done} of {len(deltas)} levels")
    if not lines:
        return
    if one_statement:
        payload = json.dumps(lines)
        conn.execute(
            text("""INSERT INTO reservation_lines (reservation_id, line_no, sku, location_id, qty)
                    SELECT r.r, r.line_no, r.sku, r.location_id, r.qty
                    FROM json_to_recordset(CAST(:rows AS json)) AS r(r BIGINT, line_no INT,
                      sku VARCHAR, location_id VARCHAR, qty INT)"""),
            {"rows": payload},
        )
        conn.execute(
            text("""INSERT INTO stock_movements (group_id, sku, location_id, kind,
                      on_hand_delta, reserved_delta, reference, created_at)
                    SELECT :g, r.sku, r.location_id, 'reserve', 0, r.qty,
                      'reservation:' || r.r, :now
                    FROM json_to_recordset(CAST(:rows AS json)) AS r(r BIGINT, sku VARCHAR,
                      location_id VARCHAR, qty INT)"""),
            {"g": group_id, "now": now, "rows": payload},
        )
        return
    conn.execute(
        text("""INSERT INTO reservation_lines (reservation_id, line_no, sku, location_id, qty)
                VALUES (:r, :line_no, :sku, :location_id, :qty)"""),
        lines,
    )
    conn.execute(
        text("""INSERT INTO stock_movements (group_id, sku, location_id, kind, on_hand_delta,
                  reserved_delta, reference, created_at)
                VALUES (:g, :sku, :location_id, 'reserve', 0, :qty, :ref, :now)"""),
        [{"g": group_id, "now": now, "ref": f"reservation:{x['r']}", **x} for x in lines],
    )
