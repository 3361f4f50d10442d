"""Coupons past their validity become `expired`, with an `expired` event each: run by the
nightly job (`siyu coupons expire`). A coupon past its date is refused at the till even
before this runs (redemption checks the window itself); this makes liability say so.

Set-based and safe to repeat: each chunk is one transaction, the event's key names the
coupon (`expire:<coupon_id>`), and only coupons still `issued` are taken.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Engine, bindparam, text

from siyu.coupons.catalog import parsed
from siyu.coupons.models import coupon_events
from siyu.store.dialect import dialect_of
from siyu.store.times import as_stored, stored_now

CHUNK = 5000

_DUE = text("""SELECT c.coupon_id, c.member_id, c.template_code, c.campaign, t.body
               FROM coupons c JOIN coupon_templates t ON t.template_id = c.template_id
               WHERE c.group_id = :g AND c.status = 'issued' AND c.valid_until <= :now
               ORDER BY c.coupon_id LIMIT :n""").bindparams(
    bindparam("now", type_=DateTime())  # typed: see liability._SUMS
)
_EXPIRE = text("""UPDATE coupons SET status = 'expired'
                  WHERE coupon_id IN :ids AND status = 'issued'""").bindparams(
    bindparam("ids", expanding=True)
)


def expire(engine: Engine, group_id: str, at: datetime | None = None) -> int:
    """Expire every coupon of the group whose validity ended by `at` (default now);
    returns how many."""
    now = as_stored(at) if at is not None else stored_now()
    done = 0
    while True:
        with engine.begin() as conn:
            rows = conn.execute(_DUE, {"g": group_id, "now": now, "n": CHUNK}).all()
            if not rows:
                return done
            conn.execute(_EXPIRE, {"ids": [r.coupon_id for r in rows]})
            conn.execute(
                dialect_of(conn).insert_ignore(coupon_events),
                [
                    {
                        "group_id": group_id,
                        "idempotency_key": f"expire:{r.coupon_id}",
                        "request_sha256": "",
                        "coupon_id": r.coupon_id,
                        "member_id": r.member_id,
                        "template_code": r.template_code,
                        "campaign": r.campaign,
                        "kind": "expired",
                        "off_fen": 0,
                        "face_value_fen": parsed(r.body).face_value_fen,
                        "cost_fen": parsed(r.body).cost_fen,
                        "reference": "expiry run",
                        "at": now,
                    }
                    for r in rows
                ],
            )
            done += len(rows)
