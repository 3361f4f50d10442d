"""Lifecycle stages from the knee: where each member is on the way to staying.

The knee of retention by order count (`knee.find_knee`) is the order count from which
members stay. Members before it are new, counted by their orders (new_1 .. new_{knee-1}:
the stages Pagoda runs experiments in); members who reached it are loyal. Silence
overrides the count: a member whose last order is more than `at_risk_days` ago is at risk,
more than `lapsed_days` ago lapsed. Members who never ordered are prospects.

Per member, as of T_end (orders after it ignored, as in RFM): `orders` = distinct orders,
`last_order_at`, `recency_days` = whole days from the last order to T_end (whole seconds
first, so every engine cuts days at the same instant), then the first rule that holds:

    orders = 0                  prospect
    recency_days > lapsed_days  lapsed
    recency_days > at_risk_days at_risk
    orders >= knee              loyal
    otherwise                   new_<orders>

Stages at several times (month ends) and the transitions between consecutive ones are one
expression, so DuckDB and Spark give the same matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import ibis
import ibis.expr.types as ir

from siyu.analytics.orders import DAY_SECONDS, data_end, epoch_seconds
from siyu.errors import ValidationError

PROSPECT, LOYAL, AT_RISK, LAPSED = "prospect", "loyal", "at_risk", "lapsed"


@dataclass(frozen=True)
class StageConfig:
    """Thresholds of the lifecycle. `knee` None means: find it in the data (retention by
    order count with window `window_days`, the jump method with `min_support`).

    lapsed_days defaults to the retention window: a member silent that long counts as
    churned in the retention curve too. at_risk_days is half of it: on the generator's
    gaps, 15% of members who do come back are silent that long first, so an at-risk nudge
    reaches the undecided without flooding everyone."""

    knee: int | None = None
    at_risk_days: int = 60
    lapsed_days: int = 120
    window_days: int = 120
    max_k: int = 10
    min_support: int = 30

    def __post_init__(self) -> None:
        if self.knee is not None and not 2 <= self.knee <= 50:
            raise ValidationError(
                "knee", f"must be 2..50 (stage new_1 needs a knee of at least 2), got {self.knee}"
            )
        if self.at_risk_days < 1:
            raise ValidationError("at_risk_days", f"must be >= 1 day, got {self.at_risk_days}")
        if self.lapsed_days <= self.at_risk_days:
            raise ValidationError(
                "lapsed_days",
                f"must be more than at_risk_days ({self.at_risk_days}), got {self.lapsed_days}",
            )
        if self.window_days < 1:
            raise ValidationError("window_days", f"must be >= 1 day, got {self.window_days}")
        if self.max_k < 2:
            raise ValidationError("max_k", f"must be >= 2 to find a knee, got {self.max_k}")
        if self.min_support < 1:
            raise ValidationError("min_support", f"must be >= 1, got {self.min_support}")


def stage_names(knee: int) -> list[str]:
    """Every stage, in the order of the journey."""
    return [PROSPECT, *(f"new_{k}" for k in range(1, knee)), LOYAL, AT_RISK, LAPSED]


def stage_of(
    orders: ir.IntegerValue, recency_days: ir.IntegerValue, knee: int, config: StageConfig
) -> ir.StringValue:
    """The stage rule (module docstring) as an Ibis expression."""
    _check_knee(knee)
    cases = [
        (orders == 0, PROSPECT),
        (recency_days > config.lapsed_days, LAPSED),
        (recency_days > config.at_risk_days, AT_RISK),
        (orders >= knee, LOYAL),
        *((orders == k, f"new_{k}") for k in range(1, knee)),
    ]
    return ibis.cases(*cases, else_=PROSPECT)


def member_stages(
    orders: ir.Table,
    knee: int,
    config: StageConfig | None = None,
    t_end: datetime | ir.TimestampScalar | None = None,
    members: ir.Table | None = None,
) -> ir.Table:
    """Per member: orders, last_order_at, recency_days and stage as of `t_end` (default:
    the latest order). `members` (a table with `member_id`) adds those who never ordered,
    as prospects; without it, the members are the buyers."""
    config = config or StageConfig()
    end = data_end(orders, t_end)
    known = orders.filter(orders.ordered_at <= end)
    per_order = known.group_by(["member_id", "order_id"]).aggregate(
        ordered_at=known.ordered_at.min()
    )
    buyers = per_order.group_by("member_id").aggregate(
        orders=per_order.count().cast("int64"), last_order_at=per_order.ordered_at.max()
    )
    if members is not None:
        everyone = members.select("member_id").union(buyers.select("member_id")).distinct()
        joined = everyone.left_join(buyers, "member_id")
        buyers = joined.select(
            member_id=joined.member_id,
            orders=joined.orders.fill_null(0).cast("int64"),
            last_order_at=joined.last_order_at,
        )
    recency = ((epoch_seconds(end) - epoch_seconds(buyers.last_order_at)) // DAY_SECONDS).cast(
        "int64"
    )
    out = buyers.mutate(recency_days=recency)
    return out.mutate(stage=stage_of(out.orders, out.recency_days, knee, config))


def stages_at(
    orders: ir.Table,
    knee: int,
    times: Sequence[datetime],
    config: StageConfig | None = None,
    members: ir.Table | None = None,
) -> ir.Table:
    """`member_stages` at each of `times` at once: (as_of, member_id, orders,
    last_order_at, recency_days, stage). Members are the same at every time (the buyers up
    to the last time, plus `members`), so a member not yet buying is a prospect."""
    config = config or StageConfig()
    if not times:
        raise ValidationError("times", "needs at least one time")
    points = ibis.memtable({"as_of": sorted(times)}, schema={"as_of": "timestamp(6)"})
    last = max(times)
    known = orders.filter(orders.ordered_at <= last)
    per_order = known.group_by(["member_id", "order_id"]).aggregate(
        ordered_at=known.ordered_at.min()
    )
    everyone = per_order.select("member_id")
    if members is not None:
        everyone = everyone.union(members.select("member_id"))
    grid = everyone.distinct().cross_join(points)
    pairs = per_order.join(points, per_order.ordered_at <= points.as_of)
    counted = pairs.group_by(["as_of", "member_id"]).aggregate(
        n=pairs.count().cast("int64"), last_at=pairs.ordered_at.max()
    )
    joined = grid.left_join(
        counted, (grid.as_of == counted.as_of) & (grid.member_id == counted.member_id)
    )
    rows = joined.select(
        as_of=joined.as_of,
        member_id=joined.member_id,
        orders=joined.n.fill_null(0).cast("int64"),
        last_order_at=joined.last_at,
    )
    recency = (epoch_seconds(rows.as_of) - epoch_seconds(rows.last_order_at)) // DAY_SECONDS
    rows = rows.mutate(recency_days=recency.cast("int64"))
    return rows.mutate(stage=stage_of(rows.orders, rows.recency_days, knee, config))


def stage_transitions(
    orders: ir.Table,
    knee: int,
    times: Sequence[datetime],
    config: StageConfig | None = None,
    members: ir.Table | None = None,
) -> ir.Table:
    """Members moving from each stage at times[i-1] to each stage at times[i]:
    (as_of = times[i], from_stage, to_stage, members), one matrix per consecutive pair."""
    if len(times) < 2:
        raise ValidationError("times", "needs at least two times to move between")
    at = stages_at(orders, knee, times, config, members)
    w = ibis.window(group_by="member_id", order_by="as_of")
    moved = at.mutate(from_stage=at.stage.lag().over(w))
    moved = moved.filter(moved.from_stage.notnull())
    return (
        moved.group_by(["as_of", "from_stage", moved.stage.name("to_stage")])
        .aggregate(members=moved.count().cast("int64"))
        .order_by(["as_of", "from_stage", "to_stage"])
    )


def month_ends(t_end: datetime, months: int) -> list[datetime]:
    """The ends of the `months` calendar months before the one holding `t_end` (the last
    microsecond of each), then `t_end`: the times of `months` month-over-month moves."""
    if months < 1:
        raise ValidationError("months", f"must be >= 1, got {months}")
    ends: list[datetime] = []
    first = t_end.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for _ in range(months):
        ends.append(first - timedelta(microseconds=1))
        first = (first - timedelta(days=1)).replace(day=1)
    return [*reversed(ends), t_end]


def _check_knee(knee: int) -> None:
    if not 2 <= knee <= 50:
        raise ValidationError("knee", f"must be 2..50, got {knee}")
