"""Liability: the coupons outstanding, from the append-only events alone.

outstanding = issued − redeemed + returned − expired, per template, in count, face value
and cost, as of any time (events are never changed, so last month's figure stays last
month's). It always equals the coupons whose status is `issued`, which the tests check.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Engine, bindparam, text

from siyu.coupons.models import LIABILITY_SIGN
from siyu.store.times import as_stored, stored_now

_SUMS = text("""SELECT template_code, kind, COUNT(*) AS n, SUM(face_value_fen) AS face,
                       SUM(cost_fen) AS cost, SUM(off_fen) AS off
                FROM coupon_events WHERE group_id = :g AND at <= :at
                GROUP BY template_code, kind ORDER BY template_code, kind""").bindparams(
    # typed, so SQLite compares the stored text form (with .000000) and not sqlite3's
    # own, which drops zero microseconds: events made this second would be left out
    bindparam("at", type_=DateTime())
)


@dataclass
class Liability:
    template_code: str
    issued: int = 0
    redeemed: int = 0
    returned: int = 0
    expired: int = 0
    outstanding: int = 0
    outstanding_face_fen: int = 0
    outstanding_cost_fen: int = 0
    redeemed_off_fen: int = 0  # taken off orders by redemptions in force
    redeemed_cost_fen: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def liability(engine: Engine, group_id: str, at: datetime | None = None) -> list[Liability]:
    """Per template, as of `at` (default now)."""
    when = as_stored(at) if at is not None else stored_now()
    out: dict[str, Liability] = {}
    with engine.connect() as conn:
        rows = conn.execute(_SUMS, {"g": group_id, "at": when}).all()
    for r in rows:
        one = out.setdefault(r.template_code, Liability(r.template_code))
        n, sign = int(r.n), LIABILITY_SIGN[r.kind]
        if r.kind != "moved":
            setattr(one, r.kind, n)
        one.outstanding += sign * n
        one.outstanding_face_fen += sign * int(r.face or 0)
        one.outstanding_cost_fen += sign * int(r.cost or 0)
        if r.kind == "redeemed":
            one.redeemed_off_fen += int(r.off or 0)
            one.redeemed_cost_fen += int(r.cost or 0)
        elif r.kind == "returned":
            one.redeemed_off_fen -= int(r.off or 0)
            one.redeemed_cost_fen -= int(r.cost or 0)
    return list(out.values())
