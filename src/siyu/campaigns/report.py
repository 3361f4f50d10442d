"""What a campaign was worth: reach, redemptions, revenue, and the revenue it added over
its holdout, with its cost and ROI.

Per member of each arm, the paid amount of its orders in the campaign's period (refunds
taken off, cancelled orders left out), zeros included: the holdout's mean is what the
treatment would have spent without the campaign, so incremental revenue = (treatment mean
− holdout mean) × treatment members. Whether that difference is more than noise is
Welch's t-test on the two samples (scipy: unequal variances, as spend is skewed and the
arms differ in size), with its 95% confidence interval; with no holdout the report says
it cannot be measured rather than inventing a baseline. Cost is what the redemptions in
force cost the brand (coupon events, `cost_fen`); ROI = (incremental revenue − cost) /
cost.

A campaign with a lottery adds its pool's draws in the period: how many, how many won,
and its winners (distinct members who won). Only granted members of the treatment may
enter the pool (lotteries.draw), so every draw is the treatment's. A prize is an inventory
item with no cost of its own (lotteries.models), so prizes add nothing to `cost_fen`: the
report counts draws and wins, not what the prizes cost.

Every figure names its members: `members(...)` answers who is behind reach, buyers,
redeemers and winners of each arm, so the console can click through.

Members an experiment's `campaign` variant enrolled (`campaign_members.experiment_id` set)
are left out of both arms and of the coupon figures, and counted as `experiment_members`:
they are in the treatment by the experiment's draw, not the campaign's, often from
another target, and have no campaign-side holdout; the experiment measures them against
its own control (`experiments/results.py`), and mixing them in would compare the
campaign's holdout with members it was never drawn beside. Their grants do count against
the campaign's budget (one counter, whoever was granted), and a lottery's draws are the
pool's, whoever drew.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
from scipy import stats
from sqlalchemy import DateTime, Engine, bindparam, text

from siyu.campaigns.plan import load
from siyu.store.times import as_stored, stored_now

Arm = Literal["treatment", "holdout"]
Who = Literal["all", "buyers", "redeemers", "winners"]

_SPEND = text("""SELECT cm.member_id, cm.arm,
                        COALESCE(SUM(o.paid_fen), 0) - COALESCE(SUM(r.refunded), 0) AS spent,
                        COUNT(o.order_id) AS orders
                 FROM campaign_members cm
                 LEFT JOIN orders o ON o.group_id = cm.group_id AND o.member_id = cm.member_id
                   AND o.status <> 'cancelled' AND o.ordered_at >= :since
                   AND o.ordered_at < :until
                 LEFT JOIN (SELECT group_id, order_id, SUM(amount_fen) AS refunded
                            FROM refunds WHERE group_id = :g GROUP BY group_id, order_id) r
                   ON r.group_id = o.group_id AND r.order_id = o.order_id
                 WHERE cm.group_id = :g AND cm.campaign_id = :c AND cm.experiment_id IS NULL
                 GROUP BY cm.member_id, cm.arm""").bindparams(
    bindparam("since", type_=DateTime()), bindparam("until", type_=DateTime())
)
# the members an experiment enrolled: not the campaign's own draw
_BY_EXPERIMENTS = """SELECT member_id FROM campaign_members WHERE group_id = :g
                     AND campaign_id = :c AND experiment_id IS NOT NULL"""
_COUPONS = text(f"""SELECT kind, COUNT(*) AS n, COUNT(DISTINCT member_id) AS members,
                          SUM(off_fen) AS off, SUM(cost_fen) AS cost
                   FROM coupon_events WHERE group_id = :g AND campaign = :code
                     AND member_id NOT IN ({_BY_EXPERIMENTS})
                   GROUP BY kind""")
_REDEEMERS = text(f"""SELECT DISTINCT member_id FROM coupons WHERE group_id = :g
                     AND campaign = :code AND status = 'redeemed'
                     AND member_id NOT IN ({_BY_EXPERIMENTS})""")
_ENROLLED = text(f"SELECT COUNT(*) FROM ({_BY_EXPERIMENTS}) x")

# the campaign pool's draws in the period (drawn by the member the entry was checked for,
# after OneID), and the members who won; up to `at` included, as times are stored to the
# second (a draw at the campaign's end is refused, so that end never counts one)
_DRAWS = text("""SELECT COUNT(*) AS draws,
                        COALESCE(SUM(CASE WHEN outcome = 'won' THEN 1 ELSE 0 END), 0) AS wins
                 FROM prize_draws WHERE group_id = :g AND pool_code = :p
                   AND drawn_at >= :since AND drawn_at <= :until""").bindparams(
    bindparam("since", type_=DateTime()), bindparam("until", type_=DateTime())
)
_WINNERS = text("""SELECT DISTINCT member_id FROM prize_draws WHERE group_id = :g
                   AND pool_code = :p AND outcome = 'won' AND drawn_at >= :since
                   AND drawn_at <= :until ORDER BY member_id""").bindparams(
    bindparam("since", type_=DateTime()), bindparam("until", type_=DateTime())
)


@dataclass
class ArmFigures:
    members: int = 0
    buyers: int = 0
    revenue_fen: int = 0
    revenue_per_member_fen: float = 0.0
    conversion: float = 0.0


@dataclass
class CampaignReport:
    code: str
    status: str
    since: datetime
    until: datetime
    treatment: ArmFigures = field(default_factory=ArmFigures)
    holdout: ArmFigures = field(default_factory=ArmFigures)
    coupons_issued: int = 0
    redemptions: int = 0  # in force (redeemed − returned)
    redeemers: int = 0
    discount_fen: int = 0
    cost_fen: int = 0
    incremental_revenue_fen: float | None = None
    ci95_per_member_fen: tuple[float, float] | None = None
    p_value: float | None = None
    roi: float | None = None
    note: str | None = None
    lottery: str | None = None  # the plan's prize pool, and its draws in the period
    draws: int = 0
    wins: int = 0  # won draws
    winners: int = 0  # distinct members who won
    experiment_members: int = 0  # enrolled by experiments' campaign variants: not in the arms

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def report(engine: Engine, group_id: str, code: str, at: datetime | None = None) -> CampaignReport:
    """The campaign's figures over its period up to `at` (default now)."""
    now = as_stored(at) if at is not None else stored_now()
    with engine.connect() as conn:
        stored = load(conn, group_id, code)
        since = as_stored(stored.plan.starts_at)
        until = min(as_stored(stored.plan.ends_at), now)
        rows = conn.execute(
            _SPEND, {"g": group_id, "c": stored.campaign_id, "since": since, "until": until}
        ).all()
        keys = {"g": group_id, "code": code, "c": stored.campaign_id}
        coupon_rows = {r.kind: r for r in conn.execute(_COUPONS, keys)}
        redeemers = len(conn.execute(_REDEEMERS, keys).all())
        out = CampaignReport(code, stored.status, since, until, lottery=stored.plan.lottery)
        out.experiment_members = int(conn.execute(_ENROLLED, keys).scalar_one())
        if out.lottery is not None:
            window = {"g": group_id, "p": out.lottery, "since": since, "until": until}
            drawn = conn.execute(_DRAWS, window).one()
            out.draws, out.wins = int(drawn.draws), int(drawn.wins)
            out.winners = len(conn.execute(_WINNERS, window).all())
    spent: dict[str, list[int]] = {"treatment": [], "holdout": []}
    for r in rows:
        spent[r.arm].append(int(r.spent))
        figures = out.treatment if r.arm == "treatment" else out.holdout
        figures.members += 1
        figures.buyers += int(r.orders) > 0
        figures.revenue_fen += int(r.spent)
    for figures in (out.treatment, out.holdout):
        if figures.members:
            figures.revenue_per_member_fen = figures.revenue_fen / figures.members
            figures.conversion = figures.buyers / figures.members
    redeemed, returned = coupon_rows.get("redeemed"), coupon_rows.get("returned")
    out.coupons_issued = int(coupon_rows["issued"].n) if "issued" in coupon_rows else 0
    out.redemptions = (int(redeemed.n) if redeemed else 0) - (int(returned.n) if returned else 0)
    out.redeemers = redeemers
    out.discount_fen = (int(redeemed.off or 0) if redeemed else 0) - (
        int(returned.off or 0) if returned else 0
    )
    out.cost_fen = (int(redeemed.cost or 0) if redeemed else 0) - (
        int(returned.cost or 0) if returned else 0
    )
    _incremental(out, np.array(spent["treatment"], float), np.array(spent["holdout"], float))
    return out


def _incremental(out: CampaignReport, treated: np.ndarray, held: np.ndarray) -> None:
    if len(held) == 0:
        out.note = "no holdout: incremental revenue cannot be measured"
        return
    if len(treated) < 2 or len(held) < 2:
        out.note = "too few members in an arm to compare"
        return
    lift = treated.mean() - held.mean()
    out.incremental_revenue_fen = float(lift * len(treated))
    if treated.var() == 0 and held.var() == 0:
        out.note = "no spend varies in either arm: no test"
    else:
        test = stats.ttest_ind(treated, held, equal_var=False)
        low, high = test.confidence_interval(0.95)
        out.p_value = float(test.pvalue)
        out.ci95_per_member_fen = (float(low), float(high))
    if out.cost_fen > 0:
        out.roi = (out.incremental_revenue_fen - out.cost_fen) / out.cost_fen


def members(
    engine: Engine, group_id: str, code: str, arm: Arm, who: Who = "all", at: datetime | None = None
) -> list[int]:
    """The members behind a figure: an arm's reach (`all`), its buyers in the period, its
    members who redeemed one of the campaign's coupons, or who won its lottery (the
    treatment's: the holdout never draws)."""
    now = as_stored(at) if at is not None else stored_now()
    with engine.connect() as conn:
        stored = load(conn, group_id, code)
        since = as_stored(stored.plan.starts_at)
        until = min(as_stored(stored.plan.ends_at), now)
        if who == "winners":
            if arm != "treatment" or stored.plan.lottery is None:
                return []
            window = {"g": group_id, "p": stored.plan.lottery, "since": since, "until": until}
            return [int(m) for m in conn.execute(_WINNERS, window).scalars()]
        rows = conn.execute(
            _SPEND, {"g": group_id, "c": stored.campaign_id, "since": since, "until": until}
        ).all()
        redeemed = (
            {
                int(m)
                for m in conn.execute(
                    _REDEEMERS, {"g": group_id, "code": code, "c": stored.campaign_id}
                ).scalars()
            }
            if who == "redeemers"
            else set()
        )
    picked = [
        int(r.member_id)
        for r in rows
        if r.arm == arm
        and (
            who == "all" or (who == "buyers" and int(r.orders) > 0) or int(r.member_id) in redeemed
        )
    ]
    return sorted(picked)
