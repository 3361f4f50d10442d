"""Giving a coupon back when its order is refunded, by the template's rule
(`on_refund: return` or `keep`), once per key.

The coupon is usable again while still valid, else it comes back expired (a `returned`
and an `expired` event); the redemption is uncounted from the template's limits. Locks
are taken as a redemption takes them, counters first (`redeem.py`).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import Connection, Engine, text

from siyu.coupons import catalog, events, limits
from siyu.coupons.errors import NotReturnable
from siyu.coupons.redeem import COLUMNS, counters_of
from siyu.errors import ConflictError, NotFoundError, ValidationError
from siyu.ledger.errors import IdempotencyConflict
from siyu.store.dialect import dialect_of
from siyu.store.times import as_stored, stored_now, stored_time

_COUPON = text(f"SELECT {COLUMNS} FROM coupons WHERE group_id = :g AND code = :c")
_LOCKED = f"SELECT {COLUMNS} FROM coupons WHERE group_id = :g AND code = :c"


def give_back(
    engine: Engine,
    group_id: str,
    code: str,
    order_id: str,
    key: str,
    key_id: int | None = None,
    at: datetime | None = None,
) -> dict[str, object]:
    """The order `order_id` was refunded: give its coupon back, if its template says so
    (`on_refund: return`). The coupon is usable again while still valid, else it expires
    at once; the redemption is uncounted from the limits. Once per key."""
    if not key or len(key) > 200:
        raise ValidationError("Idempotency-Key", "required, at most 200 characters")
    now = as_stored(at) if at is not None else stored_now()
    digest = hashlib.sha256(f"return\n{code}\n{order_id}".encode()).hexdigest()
    with engine.begin() as conn:
        found = conn.execute(_COUPON, {"g": group_id, "c": code}).first()
        if found is None:
            raise NotFoundError(f"code: no coupon {code!r}")
        # the counters, then the coupon, locked as a redemption locks them; the key is
        # looked up under the locks, so a retry racing its first request waits for it and
        # is answered as its replay
        limits.hold(conn, group_id, counters_of(found.template_code))
        locked = text(_LOCKED + dialect_of(conn).row_lock)
        coupon = conn.execute(locked, {"g": group_id, "c": code}).one()
        first = events.by_key(conn, group_id, [key]).get(key)
        if first is not None:
            if first.request_sha256 != digest:
                raise IdempotencyConflict(
                    "Idempotency-Key: already used for a different request; use a new key"
                )
            return _returned(conn, group_id, code, replayed=True)
        terms = catalog.issued_under(conn, int(coupon.template_id))
        if coupon.status != "redeemed" or coupon.order_id != order_id:
            raise NotReturnable(f"order_id: coupon {code} is not redeemed on order {order_id!r}")
        if terms.on_refund == "keep":
            raise NotReturnable(f"code: template {terms.code} keeps its coupons on refund")
        status = "issued" if stored_time(coupon.valid_until) > now else "expired"
        changed = conn.execute(
            text("""UPDATE coupons SET status = :st, order_id = NULL, store_id = NULL,
                      channel = NULL, off_fen = NULL, redeemed_at = NULL
                    WHERE coupon_id = :c AND status = 'redeemed' AND order_id = :o"""),
            {"st": status, "c": coupon.coupon_id, "o": order_id},
        ).rowcount
        if changed != 1:
            raise ConflictError(f"code: coupon {code} changed meanwhile; try again")
        limits.give_back(conn, group_id, limits.counter(coupon.template_code, "redemptions"), 1)
        limits.give_back(
            conn, group_id, limits.counter(coupon.template_code, "budget_fen"), terms.cost_fen
        )
        written = [
            events.event(
                coupon,
                "returned",
                key,
                digest,
                now,
                terms.face_value_fen,
                terms.cost_fen,
                order_id=order_id,
                off_fen=int(coupon.off_fen or 0),
                key_id=key_id,
            )
        ]
        if status == "expired":
            written.append(
                events.event(
                    coupon,
                    "expired",
                    f"expire:{coupon.coupon_id}:{key}",
                    digest,
                    now,
                    terms.face_value_fen,
                    terms.cost_fen,
                    reference="returned after expiry",
                )
            )
        events.write(conn, written)
        return _returned(conn, group_id, code, replayed=False)


def _returned(conn: Connection, group_id: str, code: str, replayed: bool) -> dict[str, object]:
    row = conn.execute(_COUPON, {"g": group_id, "c": code}).one()
    return {
        "code": code,
        "member_id": int(row.member_id),
        "status": row.status,
        "valid_until": stored_time(row.valid_until),
        "replayed": replayed,
    }
