"""Retention by order count (会员四次): of the members who reached k orders, how many came
back for a (k+1)-th within W days.

A member's orders are their distinct order ids sorted by (ordered_at, order_id); t_k is
the time of the k-th. The data ends at T_end (the latest ordered_at, or an as-of time;
later orders are ignored). A member is eligible at k if it has at least k orders and
t_k + W days <= T_end (so a member whose k-th order is too recent to tell is not counted
as churned), and retained at k if it is eligible and its (k+1)-th order comes with
t_{k+1} - t_k <= W days. rate_k = retained_k / eligible_k, with a 95% Wilson interval.

Breakdowns (`by`) are member attributes taken from the member's first order (brand,
channel, city, ...), plus `cohort_month`, the month of the first order: a member stays in
one group for every k, so each group's curve follows the same people.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir

from siyu.analytics.orders import data_end, per_order
from siyu.errors import ValidationError

COHORT_MONTH = "cohort_month"  # a derived breakdown: the month of the member's first order
Z95 = 1.959963984540054  # two-sided 95% normal quantile


@dataclass(frozen=True)
class RetentionRow:
    """One point of the curve (of one group when broken down)."""

    k: int
    members: int  # members with at least k orders
    eligible: int
    retained: int
    rate: float | None  # None when nobody is eligible
    ci_low: float | None
    ci_high: float | None
    group: tuple[tuple[str, Any], ...] = ()  # (dimension, value) pairs; () for the whole

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.group)
        out.update(
            k=self.k,
            members=self.members,
            eligible=self.eligible,
            retained=self.retained,
            rate=_round(self.rate),
            ci_low=_round(self.ci_low),
            ci_high=_round(self.ci_high),
        )
        return out


def check_parameters(window_days: int, max_k: int) -> None:
    """Reject a window or a curve length that cannot mean anything."""
    if window_days < 1:
        raise ValidationError("window_days", f"must be >= 1 day, got {window_days}")
    if max_k < 1:
        raise ValidationError("max_k", f"must be >= 1, got {max_k}")


def order_sequence(orders: ir.Table, by: Sequence[str] = (), distinct: bool = False) -> ir.Table:
    """Each member's distinct orders numbered k = 1, 2, ... by (ordered_at, order_id), with
    the next order's time (`next_at`, null for the last) and the breakdown columns taken
    from the member's first order."""
    dims = [d for d in by if d != COHORT_MONTH]
    _check_dims(orders, dims)
    # repeated rows of one order collapse to one purchase at its earliest time
    once = per_order(orders, distinct, **dict.fromkeys(dims, "min"))
    seq = _numbered(once, ["ordered_at", "order_id"])
    if not by:
        return seq.select("member_id", "order_id", "k", "ordered_at", "next_at")
    first = seq.filter(seq.k == 1)
    first = first.select(
        "member_id",
        **{d: first[d] for d in dims},
        **({COHORT_MONTH: first.ordered_at.strftime("%Y-%m")} if COHORT_MONTH in by else {}),
    )
    seq = seq.select("member_id", "order_id", "k", "ordered_at", "next_at")
    joined = seq.join(first, "member_id")
    return joined.select("member_id", "order_id", "k", "ordered_at", "next_at", *by)


def _order_times(orders: ir.Table, distinct: bool) -> ir.Table:
    """Each member's k-th order time and the next one, sorted by time alone. The curve
    reads only times, and the k-th smallest time of a member is the same however orders
    at one instant are ordered, so the counts equal `order_sequence`'s exactly; leaving
    the order id (text) out of the sort key makes the sort, the curve's main cost,
    cheaper. A breakdown reads the first order's attributes and needs the tie-break."""
    seq = _numbered(per_order(orders, distinct), ["ordered_at"])
    return seq.select("k", "ordered_at", "next_at")


def _numbered(once: ir.Table, order_by: list[str]) -> ir.Table:
    """`once` (one row per order) with k, the order's number within its member by
    `order_by`, and next_at, the next order's time (null for the last)."""
    w = ibis.window(group_by="member_id", order_by=order_by)
    return once.mutate(
        k=(ibis.row_number().over(w) + 1).cast("int64"),
        next_at=once.ordered_at.lead().over(w),
    )


def retention_counts(
    orders: ir.Table,
    window_days: int,
    max_k: int = 10,
    t_end: datetime | ir.TimestampScalar | None = None,
    by: Sequence[str] = (),
    distinct: bool = False,
) -> ir.Table:
    """Per k (and group): members with >= k orders, eligible and retained, as an Ibis
    expression. `t_end` defaults to the latest `ordered_at`; orders after it are ignored.
    `distinct`: the orders are already one row per order (`orders.per_order`)."""
    check_parameters(window_days, max_k)
    end = data_end(orders, t_end)
    known = orders.filter(orders.ordered_at <= end)
    seq = order_sequence(known, by, distinct) if by else _order_times(known, distinct)
    seq = seq.filter(seq.k <= max_k)
    reached = seq.ordered_at + ibis.interval(days=window_days)
    seq = seq.mutate(
        is_eligible=(reached <= end).cast("int64"),
        is_retained=((reached <= end) & seq.next_at.notnull() & (seq.next_at <= reached)).cast(
            "int64"
        ),
    )
    counts = seq.group_by(["k", *by]).aggregate(
        members=seq.count(), eligible=seq.is_eligible.sum(), retained=seq.is_retained.sum()
    )
    return counts.order_by([*by, "k"])


def retention_rows(counts: Any, max_k: int, by: Sequence[str] = ()) -> list[RetentionRow]:
    """Rows for k = 1..max_k of every group (missing k are zero), with rate and Wilson
    interval. `counts` is the executed `retention_counts` (a pandas DataFrame)."""
    records = counts.to_dict("records")
    groups: dict[tuple[tuple[str, Any], ...], dict[int, dict[str, Any]]] = {}
    for rec in records:
        key = tuple((d, _plain(rec[d])) for d in by)
        groups.setdefault(key, {})[int(rec["k"])] = rec
    rows: list[RetentionRow] = []
    for key in sorted(groups, key=lambda g: tuple(_sort_key(v) for _, v in g)):
        for k in range(1, max_k + 1):
            rec = groups[key].get(k, {})
            eligible, retained = int(rec.get("eligible", 0)), int(rec.get("retained", 0))
            low, high = wilson(retained, eligible)
            rows.append(
                RetentionRow(
                    k=k,
                    members=int(rec.get("members", 0)),
                    eligible=eligible,
                    retained=retained,
                    rate=retained / eligible if eligible else None,
                    ci_low=low,
                    ci_high=high,
                    group=key,
                )
            )
    return rows


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float | None, float | None]:
    """Wilson score interval of a proportion: unlike the normal interval it stays inside
    [0, 1] and is sound for small n and rates near 0 or 1 (late k have few members)."""
    if n == 0:
        return None, None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # at 0 or n the bound is exactly 0 or 1; floating point would miss it by an ulp
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def _check_dims(orders: ir.Table, dims: Sequence[str]) -> None:
    reserved = {"member_id", "order_id", "ordered_at", "k", "next_at"}
    for d in dims:
        if d in reserved:
            raise ValidationError("by", f"cannot break down by {d!r}; it is not a dimension")
        if d not in orders.columns:
            raise ValidationError(
                "by", f"column {d!r} is not in the orders (have: {', '.join(orders.columns)})"
            )


def _plain(value: Any) -> Any:
    # pandas gives NaN/None for a missing dimension, numpy scalars for numbers
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _sort_key(value: Any) -> tuple[int, str]:
    return (1, "") if value is None else (0, str(value))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
