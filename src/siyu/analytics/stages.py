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

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import ibis
import ibis.expr.types as ir

from siyu.analytics.orders import DAY_SECONDS, data_end, epoch_seconds, per_order
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
    return _stage(
        orders, recency_days > config.lapsed_days, recency_days > config.at_risk_days, knee
    )


def _stage(
    orders: ir.IntegerValue, lapsed: ir.BooleanValue, at_risk: ir.BooleanValue, knee: int
) -> ir.StringValue:
    _check_knee(knee)
    cases = [
        (orders == 0, PROSPECT),
        (lapsed, LAPSED),
        (at_risk, AT_RISK),
        (orders >= knee, LOYAL),
        *((orders == k, f"new_{k}") for k in range(1, knee)),
    ]
    return ibis.cases(*cases, else_=PROSPECT)


def _silent_before(at: datetime, days: int) -> ir.TimestampScalar:
    """The instant a last order must be before for `recency_days > days` as of `at`.

    recency_days = (E(at) - E(last)) // 86400 with E = whole epoch seconds, so
    recency_days > days <=> E(last) <= E(at) - 86400 (days + 1) <=> last < that + 1 s.
    A comparison with a constant instead of day arithmetic on every member at every
    time: at 10M members and seven month-ends that arithmetic was most of the matrices'
    cost."""
    whole = math.floor(at.replace(tzinfo=UTC).timestamp())
    cutoff = datetime.fromtimestamp(whole - DAY_SECONDS * (days + 1) + 1, UTC)
    return ibis.timestamp(cutoff.replace(tzinfo=None))


def member_stages(
    orders: ir.Table,
    knee: int,
    config: StageConfig | None = None,
    t_end: datetime | ir.TimestampScalar | None = None,
    members: ir.Table | None = None,
    distinct: bool = False,
) -> ir.Table:
    """Per member: orders, last_order_at, recency_days and stage as of `t_end` (default:
    the latest order). `members` (a table with `member_id`) adds those who never ordered,
    as prospects; without it, the members are the buyers. `distinct`: the orders are
    already one row per order (`orders.per_order`)."""
    config = config or StageConfig()
    end = data_end(orders, t_end)
    once = per_order(orders.filter(orders.ordered_at <= end), distinct)
    buyers = once.group_by("member_id").aggregate(
        orders=once.count().cast("int64"), last_order_at=once.ordered_at.max()
    )
    if members is not None:
        buyers = _with_prospects(buyers, members)
        buyers = buyers.mutate(orders=buyers.orders.fill_null(0).cast("int64"))
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
    distinct: bool = False,
) -> ir.Table:
    """`member_stages` at each of `times` at once: (as_of, member_id, orders,
    last_order_at, recency_days, stage). Members are the same at every time (the buyers up
    to the last time, plus `members`), so a member not yet buying is a prospect."""
    wide, ordered = _stages_wide(orders, knee, times, config, members, distinct)
    return ibis.union(
        *(
            wide.select(
                as_of=ibis.timestamp(at).cast("timestamp(6)"),
                member_id=wide.member_id,
                orders=wide[f"orders_{i}"],
                last_order_at=wide[f"last_{i}"],
                recency_days=wide[f"recency_{i}"],
                stage=wide[f"stage_{i}"],
            )
            for i, at in enumerate(ordered)
        )
    )


def stage_transitions(
    orders: ir.Table,
    knee: int,
    times: Sequence[datetime],
    config: StageConfig | None = None,
    members: ir.Table | None = None,
    distinct: bool = False,
) -> ir.Table:
    """Members moving from each stage at times[i-1] to each stage at times[i]:
    (as_of = times[i], from_stage, to_stage, members), one matrix per consecutive pair."""
    if len(times) < 2:
        raise ValidationError("times", "needs at least two times to move between")
    wide, ordered = _stages_wide(orders, knee, times, config, members, distinct)
    moves = [
        wide.group_by(from_stage=wide[f"stage_{i - 1}"], to_stage=wide[f"stage_{i}"]).aggregate(
            members=wide.count().cast("int64")
        )
        for i in range(1, len(ordered))
    ]
    matrices = ibis.union(
        *(
            m.mutate(as_of=ibis.timestamp(ordered[i]).cast("timestamp(6)")).select(
                "as_of", "from_stage", "to_stage", "members"
            )
            for i, m in enumerate(moves, start=1)
        )
    )
    return matrices.order_by(["as_of", "from_stage", "to_stage"])


def _stages_wide(
    orders: ir.Table,
    knee: int,
    times: Sequence[datetime],
    config: StageConfig | None,
    members: ir.Table | None,
    distinct: bool,
) -> tuple[ir.Table, list[datetime]]:
    """One row per member with orders_i, last_i, recency_i and stage_i at each time, from
    one pass over the orders (conditional aggregates per time): no member x time grid and
    no window over it, which at 10M members is most of the cost of the matrices."""
    config = config or StageConfig()
    if not times:
        raise ValidationError("times", "needs at least one time")
    ordered = sorted(times)
    once = per_order(orders.filter(orders.ordered_at <= ibis.timestamp(ordered[-1])), distinct)
    aggregates: dict[str, ir.Value] = {}
    for i, at in enumerate(ordered):
        by_then = once.ordered_at <= ibis.timestamp(at)
        aggregates[f"orders_{i}"] = once.count(where=by_then)
        aggregates[f"last_{i}"] = once.ordered_at.max(where=by_then)
    wide = once.group_by("member_id").aggregate(**aggregates)
    if members is not None:
        wide = _with_prospects(wide, members)
    columns: dict[str, ir.Value] = {}
    for i, at in enumerate(ordered):
        n = wide[f"orders_{i}"].fill_null(0).cast("int64")
        gap = epoch_seconds(ibis.timestamp(at)) - epoch_seconds(wide[f"last_{i}"])
        recency = (gap // DAY_SECONDS).cast("int64")
        last = wide[f"last_{i}"]
        columns[f"orders_{i}"] = n
        columns[f"recency_{i}"] = recency
        columns[f"stage_{i}"] = _stage(
            n,
            last < _silent_before(at, config.lapsed_days),
            last < _silent_before(at, config.at_risk_days),
            knee,
        )
    return wide.mutate(**columns), ordered


def _with_prospects(buyers: ir.Table, members: ir.Table) -> ir.Table:
    """`buyers` (one row per member_id) plus every member of `members` not in it, with
    nulls for what they have not done. Buyers missing from `members` (landed before their
    member) are kept: an anti join adds them, cheaper than a distinct union of both."""
    everyone = members.select("member_id")
    joined = everyone.left_join(buyers, "member_id")
    columns = [c for c in buyers.columns if c != "member_id"]
    known = joined.select("member_id", *(joined[c] for c in columns))
    unknown = buyers.anti_join(everyone, "member_id").select("member_id", *columns)
    return known.union(unknown, distinct=False)


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
