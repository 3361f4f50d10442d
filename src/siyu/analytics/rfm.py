"""RFM: recency, frequency and monetary value per member, scored 1-5 and mapped to segments.

Recency is whole days from the member's last order to T_end; frequency is distinct orders;
monetary is the sum of amount_fen (integer fen) over those orders. Scores come from
quantile layers (a member's score is 1 + floor(5 x share of members strictly worse), so
ties share a score and the commonest value, one order, scores 1, not 3), from fixed
thresholds, or (the default, `auto`) from both: recency always on day thresholds (the
lifecycle's: r <= 2 is exactly "lapsed"), frequency and money on quantiles unless one
value holds more members than a layer can (most members buy once), then on thresholds.
An ordered list of rules maps the three scores to a segment, an RFM value layer; the
first rule that matches wins, and members no rule matches get the fallback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import ibis
import ibis.expr.types as ir

from siyu.analytics.orders import DAY_SECONDS, data_end, epoch_seconds, per_order
from siyu.errors import ValidationError

Layering = Literal["auto", "quantile", "threshold"]
LAYERINGS = ("auto", "quantile", "threshold")


@dataclass(frozen=True)
class SegmentRule:
    """A segment and the score ranges (inclusive) a member must be in on all three."""

    name: str
    recency: tuple[int, int] = (1, 5)
    frequency: tuple[int, int] = (1, 5)
    monetary: tuple[int, int] = (1, 5)


# Value layers (the 8-class RFM model's names, folded to five), not churn states: churn
# is the lifecycle's word (`stages`). With the default recency edges, r <= 2 means no
# order for more than the lifecycle's `lapsed_days` (120), so win_back + dormant are
# exactly the lifecycle's lapsed buyers, split by what they were worth; r = 3 is its
# at-risk window. The rules cover every (r, f) pair: nobody falls to the fallback.
DEFAULT_SEGMENTS: tuple[SegmentRule, ...] = (
    SegmentRule("vip", recency=(4, 5), frequency=(4, 5), monetary=(4, 5)),
    SegmentRule("regular", recency=(3, 5), frequency=(3, 5)),
    SegmentRule("develop", recency=(3, 5), frequency=(1, 2)),
    SegmentRule("win_back", recency=(1, 2), frequency=(3, 5)),
    SegmentRule("dormant", recency=(1, 2), frequency=(1, 2)),
)


@dataclass(frozen=True)
class RFMConfig:
    """How members are scored and segmented; every field has a sane default.

    Threshold layering uses ascending edges (scores - 1 of them): a frequency or monetary
    value scores 1 + the number of edges it reaches; a recency scores 1 + the number of
    edges it is within (30 days or less reaches all four default edges: score 5). The
    default recency edges are the lifecycle's (`StageConfig`: at risk after 60 days,
    lapsed after 120). `auto` scores recency on its edges always, and frequency and
    money on quantiles unless ties dominate (see `rfm_scores`), then on their edges.
    """

    layering: Layering = "auto"
    scores: int = 5
    recency_days: tuple[int, ...] = (30, 60, 120, 365)
    frequency_orders: tuple[int, ...] = (2, 3, 5, 8)
    monetary_fen: tuple[int, ...] = (10_000, 30_000, 100_000, 300_000)
    segments: tuple[SegmentRule, ...] = field(default=DEFAULT_SEGMENTS)
    fallback: str = "other"

    def __post_init__(self) -> None:
        if self.layering not in LAYERINGS:
            raise ValidationError(
                "layering", f"must be one of {', '.join(LAYERINGS)}, got {self.layering!r}"
            )
        if not 2 <= self.scores <= 10:
            raise ValidationError("scores", f"must be 2..10, got {self.scores}")
        if self.layering != "quantile":
            for name in ("recency_days", "frequency_orders", "monetary_fen"):
                edges = getattr(self, name)
                if len(edges) != self.scores - 1 or list(edges) != sorted(set(edges)):
                    raise ValidationError(
                        name,
                        f"must be {self.scores - 1} strictly ascending edges, got {list(edges)}",
                    )
        for rule in self.segments:
            for axis in ("recency", "frequency", "monetary"):
                low, high = getattr(rule, axis)
                if not 1 <= low <= high <= self.scores:
                    raise ValidationError(
                        f"segments.{rule.name}.{axis}",
                        f"must be a range within 1..{self.scores}, got {(low, high)}",
                    )

    def segment_names(self) -> list[str]:
        names = [r.name for r in self.segments]
        return [*names, *([self.fallback] if self.fallback not in names else [])]


def lifecycle_recency_days(at_risk_days: int, lapsed_days: int) -> tuple[int, int, int, int]:
    """Recency edges that keep RFM's time axis the lifecycle's (`StageConfig`): r = 3 is
    exactly at risk (more than `at_risk_days` silent, up to `lapsed_days`), r <= 2 exactly
    lapsed. (60, 120) gives the defaults, (30, 60, 120, 365)."""
    return (at_risk_days // 2, at_risk_days, lapsed_days, max(365, 2 * lapsed_days))


def rule_json(config: RFMConfig) -> list[dict[str, Any]]:
    """Each segment's score ranges, for a page to show what a layer means."""
    return [
        {
            "segment": r.name,
            "recency": list(r.recency),
            "frequency": list(r.frequency),
            "monetary": list(r.monetary),
        }
        for r in config.segments
    ]


def rfm_values(
    orders: ir.Table,
    t_end: datetime | ir.TimestampScalar | None = None,
    distinct: bool = False,
) -> ir.Table:
    """Per member: recency_days, frequency and monetary_fen as of `t_end` (default: the
    latest order; later orders are ignored). Rows of one order id count as one order whose
    amount is their sum (order lines); `distinct`: the orders are already one row per
    order (`orders.per_order`)."""
    end = data_end(orders, t_end)
    known = orders.filter(orders.ordered_at <= end)
    once = per_order(known, distinct, amount_fen="sum")
    members = once.group_by("member_id").aggregate(
        last_at=once.ordered_at.max(),
        frequency=once.count(),
        monetary_fen=once.amount_fen.sum().cast("int64"),
    )
    gap = epoch_seconds(end) - epoch_seconds(members.last_at)
    return members.select(
        "member_id",
        recency_days=(gap // DAY_SECONDS).cast("int64"),
        frequency=members.frequency.cast("int64"),
        monetary_fen="monetary_fen",
    )


def rfm_scores(values: ir.Table, config: RFMConfig | None = None) -> ir.Table:
    """`rfm_values` plus r, f, m scores (1..config.scores) and the segment.

    `auto` layering: recency on its day edges; frequency (and money) on quantiles unless
    one value is shared by more than 1/scores of the members, which no quantile cut can
    split (on real retail data most members buy once: quantiles then give one order
    score 1 and two orders score 5, and nothing between), then on the order-count (fen)
    edges. The choice is made inside the expression (a scalar over the value counts), so
    both engines make it on the same integers."""
    config = config or RFMConfig()
    n = values.count().as_scalar()
    if config.layering == "threshold":
        scored = values.mutate(
            r=_count_true([values.recency_days <= e for e in config.recency_days]),
            f=_count_true([values.frequency >= e for e in config.frequency_orders]),
            m=_count_true([values.monetary_fen >= e for e in config.monetary_fen]),
        )
    else:
        scored = values
        # lower recency is better, so "strictly worse" is strictly more days
        for score, column, more_is_worse in (
            ("r", "recency_days", True),
            ("f", "frequency", False),
            ("m", "monetary_fen", False),
        ):
            if config.layering == "auto" and score == "r":
                days = [scored.recency_days <= e for e in config.recency_days]
                scored = scored.mutate(r=_count_true(days))
                continue
            worse = _strictly_worse(values, column, more_is_worse)
            scored = scored.join(worse, scored[column] == worse.value)
            quantile = _quantile(scored.worse, n, config)
            if config.layering == "auto":
                edges = config.frequency_orders if score == "f" else config.monetary_fen
                by_edges = _count_true([scored[column] >= e for e in edges])
                tied = _commonest(values, column) * config.scores > n
                quantile = ibis.ifelse(tied, by_edges, quantile).cast("int64")
            scored = scored.mutate(**{score: quantile})
            scored = scored.drop("value", "worse")
    cases = [
        (
            scored.r.between(*rule.recency)
            & scored.f.between(*rule.frequency)
            & scored.m.between(*rule.monetary),
            rule.name,
        )
        for rule in config.segments
    ]
    segment = ibis.cases(*cases, else_=config.fallback) if cases else ibis.literal(config.fallback)
    return scored.mutate(segment=segment)


def segment_summary(scored: ir.Table) -> ir.Table:
    """Members, orders and money per segment: exact sums only (an approximate median
    would differ between engines), money in integer fen."""
    return (
        scored.group_by("segment")
        .aggregate(
            members=scored.count(),
            orders=scored.frequency.sum().cast("int64"),
            monetary_fen=scored.monetary_fen.sum().cast("int64"),
        )
        .order_by("segment")
    )


def layer_bounds(scored: ir.Table, axis: Literal["r", "f", "m"]) -> ir.Table:
    """What each score means in the data: min and max of the value behind it, and members."""
    value = {"r": "recency_days", "f": "frequency", "m": "monetary_fen"}[axis]
    return (
        scored.group_by(score=scored[axis])
        .aggregate(
            members=scored.count(),
            min=scored[value].min().cast("int64"),
            max=scored[value].max().cast("int64"),
        )
        .order_by("score")
    )


def _strictly_worse(values: ir.Table, column: str, more_is_worse: bool = False) -> ir.Table:
    """Per distinct value of `column`: how many members have a strictly worse one
    (`worse`), which is the value's rank. Counted over the distinct values, a few
    thousand, not sorted over every member: a rank window over 10M members sorted all
    10M rows three times and was most of the scoring's cost. The values are never null
    (a count, a last order time, a sum of paid fen, which the store keeps not null), so
    the inner join keeps every member."""
    counts = values.group_by(value=values[column]).aggregate(n=values.count())
    order = ibis.desc(counts.value) if more_is_worse else counts.value
    upto = counts.n.sum().over(ibis.window(order_by=order, preceding=None, following=0))
    return counts.select("value", worse=(upto - counts.n).cast("int64"))


def _commonest(values: ir.Table, column: str) -> ir.IntegerScalar:
    """How many members share the commonest value of `column` (a scalar)."""
    counts = values.group_by(value=values[column]).aggregate(n=values.count())
    return counts.n.max().as_scalar()


def _quantile(rank: ir.IntegerValue, n: ir.IntegerScalar, config: RFMConfig) -> ir.IntegerValue:
    # integer arithmetic only: both engines must put a member on the same side of a cut
    return ((rank * config.scores) // n + 1).cast("int64")


def _count_true(conditions: Sequence[ir.BooleanValue]) -> ir.IntegerValue:
    total: ir.IntegerValue = ibis.literal(1, type="int64")
    for c in conditions:
        total = total + c.cast("int64")
    return total.cast("int64")


def summary_json(summary: Any, total_members: int) -> list[dict[str, Any]]:
    """Segment rows (an executed `segment_summary`) as JSON-ready dicts with each share."""
    out = []
    for rec in summary.to_dict("records"):
        members = int(rec["members"])
        out.append(
            {
                "segment": rec["segment"],
                "members": members,
                "share": round(members / total_members, 6) if total_members else None,
                "orders": int(rec["orders"]),
                "monetary_fen": int(rec["monetary_fen"]),
            }
        )
    return out
