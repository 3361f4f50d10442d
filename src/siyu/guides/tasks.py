"""Follow-up tasks, the rules: which lifecycle stages call for a guide's action, what a
task is worth and how urgent it is. Pure functions over the lifecycle snapshot's payload;
`guides.service` applies them to the store.

    expected value (fen) = the member's CLV over the next 12 months (`member_clv`, written
                           back by the snapshot), for every kind of task

The CLV is what the member is expected to spend with the brand in the next 52 weeks:
BG/NBD's expected purchases (which already weigh P(the member is still a customer)) times
Gamma-Gamma's expected spend per purchase, both fitted on the brand's own buyers. It is not
scaled by the stage: the model reads the member's frequency and recency, the very facts the
stages are cut from, so a lapsed member's CLV is already low by P(alive) and an active new
member's already carries the repeat rate of members like them; a stage factor on top would
count the stage twice, and a per-stage uplift of a guide's call is not measured. The stage
decides whether there is a task, when it is due and how urgent it is; the value is one
number an operator can check against `siyu analyze clv`, the same for a next-order and a
win-back task, so the list reads "call the members worth most first, the urgent first
among equals".

Without a row (the snapshot could not fit CLV: too few repeat buyers; its payload `clv`
says why, and then no member has one) the value falls back to one order's worth:

    expected value (fen) = round(average order value x P(the member orders again))
    average order value  = the member's paid fen / orders, orders not cancelled
    P, next_order        = the retention curve's rate at k = knee - 1 (of the members who
                           reached k orders, the share who ordered again within W days)
    P, win back          = 1 - (1 - m) ^ (W / 30), where m is the share of the members in
                           that stage a month before the snapshot who ordered within the
                           month (the stage transitions): the same W-day horizon as the
                           curve, at a constant monthly rate (for lapsed members, whose
                           chances fall with time, an upper bound); without transitions,
                           the curve's rate at the member's orders
    urgency (per mille)  = how far the member is into the stage's window, by days since
                           the last order: next_order days / at_risk_days (at 1000 it turns
                           at risk); at risk days / lapsed_days (at 1000 it lapses); lapsed
                           lapsed_days / days (1000 just lapsed, falling as chances fall)

The fallback counts one order, the CLV a year: a member without a row beside members with
one (say, a member OneID merged after the run) ranks low until the next run. A task's value
is set when it is made; live tasks keep theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from siyu.guides.models import NEXT_ORDER, WIN_BACK_AT_RISK, WIN_BACK_LAPSED

AT_RISK, LAPSED, LOYAL = "at_risk", "lapsed", "loyal"
LAPSED_DUE_DAYS = 14  # a win-back of a lapsed member: try within two weeks
PER_MILLE = 1000
MONTH_DAYS = 30


def task_stages(knee: int | None) -> dict[str, str]:
    """Stage -> task kind: win back who went quiet; bring a new member one order before
    the knee back for the order from which members stay."""
    tasks = {AT_RISK: WIN_BACK_AT_RISK, LAPSED: WIN_BACK_LAPSED}
    if knee is not None and knee >= 2:
        tasks[f"new_{knee - 1}"] = NEXT_ORDER
    return tasks


@dataclass(frozen=True)
class TaskPlan:
    """What generation needs from the lifecycle snapshot: the knee, the stage edges, the
    time the stages are as of, the curve's rates by order count, the win-back rates."""

    knee: int
    as_of: datetime
    at_risk_days: int = 60
    lapsed_days: int = 120
    rates: dict[int, float] = field(default_factory=dict)  # k -> retention rate
    returns: dict[str, float] = field(default_factory=dict)  # stage -> share who ordered

    @property
    def stages(self) -> dict[str, str]:
        return task_stages(self.knee)


def plan_from_lifecycle(payload: dict[str, Any]) -> TaskPlan | None:
    """The plan of a `lifecycle` snapshot payload; None when it has no knee (no stages)."""
    knee = payload.get("knee")
    if not isinstance(knee, int) or knee < 2 or not payload.get("as_of"):
        return None
    config = payload.get("config") or {}
    rates = {
        int(r["k"]): float(r["rate"])
        for r in payload.get("curve") or []
        if r.get("rate") is not None and not r.get("group")
    }
    window = int(config.get("window_days") or payload.get("window_days") or 120)
    returns: dict[str, float] = {}
    matrix = (payload.get("transitions") or {}).get("matrix") or {}
    for stage in (AT_RISK, LAPSED):
        row = matrix.get(stage) or {}
        total = sum(int(n) for n in row.values())
        back = sum(int(n) for to, n in row.items() if to == LOYAL or str(to).startswith("new_"))
        if total:  # a month's rate, over the curve's window
            returns[stage] = 1 - (1 - back / total) ** (window / MONTH_DAYS)
    as_of = datetime.fromisoformat(str(payload["as_of"]))
    return TaskPlan(
        knee=knee,
        as_of=as_of.replace(tzinfo=None),
        at_risk_days=int(config.get("at_risk_days", 60)),
        lapsed_days=int(config.get("lapsed_days", 120)),
        rates=rates,
        returns=returns,
    )


def repurchase_probability(plan: TaskPlan, stage: str, orders: int) -> float:
    """P(the member orders again), by the rules above."""
    if stage in plan.returns:
        return plan.returns[stage]
    if not plan.rates:
        return 0.0
    k = min(max(orders, 1), max(plan.rates))
    return plan.rates.get(k, 0.0)


def expected_value_fen(paid_fen: int, orders: int, probability: float) -> int:
    """Average order value x probability, in whole fen (never negative)."""
    if orders <= 0 or paid_fen <= 0:
        return 0
    return max(0, round(paid_fen * probability / orders))


def clv_value_fen(clv_fen: int) -> int:
    """A task's value from the member's CLV over the horizon: the CLV itself (see the
    module's reasoning), never negative."""
    return max(0, int(clv_fen))


def days_since(plan: TaskPlan, last_order_at: datetime | None) -> int:
    if last_order_at is None:
        return 0
    return max(0, (plan.as_of - last_order_at).days)


def urgency(plan: TaskPlan, stage: str, days: int) -> int:
    """Per mille of the stage's window used up (see the module's formula), 0..1000."""
    if stage == LAPSED:
        value = PER_MILLE * plan.lapsed_days / max(days, 1)
    elif stage == AT_RISK:
        value = PER_MILLE * days / plan.lapsed_days
    else:
        value = PER_MILLE * days / plan.at_risk_days
    return int(min(PER_MILLE, max(0, round(value))))


def due_on(plan: TaskPlan, stage: str, last_order_at: datetime | None) -> date:
    """When the task is due: the day the member crosses the stage's edge (turns at risk,
    lapses); a lapsed member two weeks after the stages were computed."""
    if stage == LAPSED or last_order_at is None:
        return (plan.as_of + timedelta(days=LAPSED_DUE_DAYS)).date()
    edge = plan.lapsed_days if stage == AT_RISK else plan.at_risk_days
    return (last_order_at + timedelta(days=edge)).date()


def to_second(value: Any) -> datetime:
    """A stored time read back, to the second: SQLite may answer text with odd fractions
    (rows written through the bulk staging path), PostgreSQL a datetime."""
    if isinstance(value, datetime):
        return value.replace(microsecond=0)
    return datetime.fromisoformat(str(value)[:19])


def cycle_of(stage: str, last_order_at: datetime | None) -> str:
    """The episode a task belongs to: the stage and the last order it was made for."""
    when = "-" if last_order_at is None else last_order_at.replace(microsecond=0).isoformat()
    return f"{stage}@{when}"
