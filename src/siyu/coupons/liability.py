"""Liability: the coupons outstanding, from the append-only events alone.

outstanding = issued − redeemed + returned − expired, per template, in count, face value
and cost, as of any time (events are never changed, so last month's figure stays last
month's). It always equals the coupons whose status is `issued`, which the tests check.

Every count opens its members: `holders(state, template)` lists the members now holding
the coupons a count is made of (a count is of coupons, so a member holding two is listed
once).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import DateTime, Engine, bindparam, text

from siyu.coupons.models import LIABILITY_SIGN
from siyu.errors import ValidationError
from siyu.store.times import as_stored, stored_now

_SUMS = text("""SELECT template_code, kind, COUNT(*) AS n, SUM(face_value_fen) AS face,
                       SUM(cost_fen) AS cost, SUM(off_fen) AS off
                FROM coupon_events WHERE group_id = :g AND at <= :at
                GROUP BY template_code, kind ORDER BY template_code, kind""").bindparams(
    bindparam("at", type_=DateTime())
)

State = Literal["issued", "redeemed", "returned", "expired", "outstanding"]
STATES: tuple[str, ...] = get_args(State)


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


# A coupon's liability as of :at: the sum of its events' signs (1 while it is outstanding).
_HELD = " + ".join(
    f"SUM(CASE WHEN e.kind = '{k}' THEN {v} ELSE 0 END)" for k, v in LIABILITY_SIGN.items() if v
)


def holders(
    engine: Engine,
    group_id: str,
    state: State,
    template_code: str | None = None,
    at: datetime | None = None,
) -> list[int]:
    """The members behind a count of `liability` (of one template, or of all): those now
    holding a coupon with an event of that kind by `at` (default now), or, for
    `outstanding`, a coupon whose events by `at` leave it outstanding; in id order. The
    holder is the coupon's current one (a merge moves coupons to the survivor)."""
    if state not in STATES:
        raise ValidationError("state", f"one of {', '.join(STATES)}, got {state!r}")
    when = as_stored(at) if at is not None else stored_now()
    one = "AND e.template_code = :t" if template_code is not None else ""
    if state == "outstanding":
        picked = f"""SELECT e.coupon_id FROM coupon_events e
                     WHERE e.group_id = :g AND e.at <= :at {one}
                     GROUP BY e.coupon_id HAVING {_HELD} > 0"""
    else:
        picked = f"""SELECT e.coupon_id FROM coupon_events e
                     WHERE e.group_id = :g AND e.at <= :at AND e.kind = :k {one}"""
    sql = text(f"""SELECT DISTINCT c.member_id FROM coupons c
                   WHERE c.group_id = :g AND c.coupon_id IN ({picked})
                   ORDER BY c.member_id""").bindparams(bindparam("at", type_=DateTime()))
    params = {"g": group_id, "at": when, "k": state, "t": template_code}
    with engine.connect() as conn:
        return [int(m) for m in conn.execute(sql, params).scalars()]
