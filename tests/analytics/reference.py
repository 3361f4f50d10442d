"""Independent implementations in pandas/numpy of what siyu.analytics computes with Ibis.

Written from the definitions in docs/analytics.md, not from the Ibis code: loops and
sorting where the Ibis code uses windows, so the two can only agree if both are right.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa

DAY = np.timedelta64(1, "D")


def purchases(orders: pa.Table | pd.DataFrame, t_end: datetime) -> pd.DataFrame:
    """Distinct orders (earliest time, summed amount) up to t_end, without cancelled ones."""
    df = orders.to_pandas() if isinstance(orders, pa.Table) else orders.copy()
    if "status" in df.columns:
        df = df[df.status != "cancelled"]
    df = df[df.ordered_at <= pd.Timestamp(t_end)]
    return (
        df.groupby(["member_id", "order_id"], as_index=False)
        .agg(ordered_at=("ordered_at", "min"), amount_fen=("amount_fen", "sum"))
        .sort_values(["member_id", "ordered_at", "order_id"], kind="mergesort")
    )


def retention(
    orders: pa.Table | pd.DataFrame, window_days: int, max_k: int, t_end: datetime
) -> list[tuple[int, int, int, int]]:
    """(k, members, eligible, retained) for k = 1..max_k, member by member."""
    end = np.datetime64(pd.Timestamp(t_end))
    window = window_days * DAY
    members = np.zeros(max_k + 1, dtype=np.int64)
    eligible = np.zeros(max_k + 1, dtype=np.int64)
    retained = np.zeros(max_k + 1, dtype=np.int64)
    for _, times in purchases(orders, t_end).groupby("member_id").ordered_at:
        t = times.to_numpy()
        for i in range(min(len(t), max_k)):
            members[i + 1] += 1
            if t[i] + window <= end:
                eligible[i + 1] += 1
                if i + 1 < len(t) and t[i + 1] - t[i] <= window:
                    retained[i + 1] += 1
    return [
        (k, int(members[k]), int(eligible[k]), int(retained[k]))
        for k in range(1, max_k + 1)
        if members[k]
    ]


RECENCY_EDGES = (30, 60, 120, 365)
FREQUENCY_EDGES = (2, 3, 5, 8)
MONETARY_EDGES = (10_000, 30_000, 100_000, 300_000)


def rfm(
    orders: pa.Table | pd.DataFrame, t_end: datetime, scores: int = 5, layering: str = "quantile"
) -> pd.DataFrame:
    """recency_days, frequency, monetary_fen and scores r, f, m per member: quantile
    scores, or `auto` (docs/analytics.md): recency on the default day edges, frequency and
    money on quantiles unless one value holds more than 1/scores of the members, then on
    the default edges."""
    p = purchases(orders, t_end)
    per = p.groupby("member_id").agg(
        last=("ordered_at", "max"),
        frequency=("order_id", "size"),
        monetary_fen=("amount_fen", "sum"),
    )
    end_s = pd.Timestamp(t_end).floor("s")
    per["recency_days"] = (end_s - per["last"].dt.floor("s")).dt.total_seconds() // 86_400
    n = len(per)

    def score(strictly_worse: pd.Series) -> pd.Series:
        return (strictly_worse * scores // n + 1).astype("int64")

    # strictly worse = strictly more days since the last order, or strictly fewer orders / fen
    per["r"] = score(per.recency_days.rank(method="min", ascending=False) - 1)
    per["f"] = score(per.frequency.rank(method="min") - 1)
    per["m"] = score(per.monetary_fen.rank(method="min") - 1)
    if layering == "auto":

        def edges(values: pd.Series, cuts: tuple[int, ...], within: bool = False) -> pd.Series:
            reached = [(values <= c) if within else (values >= c) for c in cuts]
            return (1 + sum(r.astype("int64") for r in reached)).astype("int64")

        per["r"] = edges(per.recency_days, RECENCY_EDGES, within=True)
        for column, score_column, cuts in (
            ("frequency", "f", FREQUENCY_EDGES),
            ("monetary_fen", "m", MONETARY_EDGES),
        ):
            if per[column].value_counts().max() * scores > n:
                per[score_column] = edges(per[column], cuts)
    per["recency_days"] = per.recency_days.astype("int64")
    return per.drop(columns="last").sort_index()


def clv_summary(orders: pa.Table | pd.DataFrame, t_end: datetime) -> pd.DataFrame:
    """frequency, recency_days, T_days, repeat_fen per member from purchase days (UTC)."""
    p = purchases(orders, t_end)
    p["day"] = p.ordered_at.dt.floor("D")
    days = p.groupby(["member_id", "day"], as_index=False).amount_fen.sum()
    end_day = pd.Timestamp(t_end).floor("D")
    rows = {}
    for member, g in days.groupby("member_id"):
        first, last = g.day.min(), g.day.max()
        rows[member] = {
            "frequency": len(g) - 1,
            "recency_days": (last - first).days,
            "T_days": (end_day - first).days,
            "repeat_fen": int(g.amount_fen[g.day > first].sum()),
        }
    return pd.DataFrame.from_dict(rows, orient="index").sort_index()


def stage(orders: int, recency_days: int | None, knee: int, at_risk: int, lapsed: int) -> str:
    """The lifecycle rule of docs/analytics.md, one member at a time."""
    if orders == 0 or recency_days is None:
        return "prospect"
    if recency_days > lapsed:
        return "lapsed"
    if recency_days > at_risk:
        return "at_risk"
    return "loyal" if orders >= knee else f"new_{orders}"


def stages(
    orders: pa.Table | pd.DataFrame,
    t_end: datetime,
    knee: int,
    at_risk: int,
    lapsed: int,
    members: tuple[object, ...] = (),
) -> dict[object, tuple[int, int | None, str]]:
    """member -> (orders, recency_days, stage) as of t_end; `members` who bought nothing
    by then are prospects."""
    end = pd.Timestamp(t_end).floor("s")
    out: dict[object, tuple[int, int | None, str]] = {}
    for member, g in purchases(orders, t_end).groupby("member_id"):
        last = g.ordered_at.max().floor("s")
        recency = int((end - last).total_seconds() // 86_400)
        out[member] = (len(g), recency, stage(len(g), recency, knee, at_risk, lapsed))
    for member in members:
        out.setdefault(member, (0, None, "prospect"))
    return out


def transitions(
    orders: pa.Table | pd.DataFrame,
    times: list[datetime],
    knee: int,
    at_risk: int,
    lapsed: int,
    members: tuple[object, ...] = (),
) -> dict[tuple[datetime, str, str], int]:
    """(time, stage at the previous time, stage at this time) -> members, over everyone
    who bought by the last time plus `members`."""
    everyone = tuple(set(members) | set(purchases(orders, max(times)).member_id))
    at = [stages(orders, t, knee, at_risk, lapsed, everyone) for t in times]
    counts: dict[tuple[datetime, str, str], int] = {}
    for i in range(1, len(times)):
        for member in everyone:
            key = (times[i], at[i - 1][member][2], at[i][member][2])
            counts[key] = counts.get(key, 0) + 1
    return counts


def kpi_orders(
    orders: pd.DataFrame, t_end: datetime, since: datetime | None = None
) -> pd.DataFrame:
    """One row per order in (since, t_end] with its month index, cancelled ones dropped."""
    df = orders[orders.status != "cancelled"]
    df = df[df.ordered_at <= pd.Timestamp(t_end)]
    if since is not None:
        df = df[df.ordered_at > pd.Timestamp(since)]
    per = df.groupby(["member_id", "order_id"], as_index=False).agg(
        ordered_at=("ordered_at", "min"),
        amount_fen=("amount_fen", "sum"),
        brand_id=("brand_id", "min"),
        channel=("channel", "min"),
        guide_id=("guide_id", "min"),
    )
    per["month"] = per.ordered_at.dt.year * 12 + per.ordered_at.dt.month - 1
    return per


def kpis(orders: pd.DataFrame, t_end: datetime, max_months: int) -> dict[str, object]:
    """Cohorts, repurchase, cross-brand, channels and guides, member by member."""
    o = kpi_orders(orders, t_end)
    months = {m: set(g.member_id) for m, g in o.groupby("month")}
    member_months: dict[object, list[int]] = {}
    for member, g in o.groupby("member_id"):
        member_months[member] = sorted(set(g.month))
    last = t_end.year * 12 + t_end.month - 1
    cohorts: dict[int, list[int]] = {}
    for member_list in member_months.values():
        first = member_list[0]
        row = cohorts.setdefault(first, [0] * (min(max_months, last - first) + 1))
        for m in member_list:
            if m - first <= max_months:
                row[m - first] += 1
    repurchase = {}
    for m in sorted(months):
        in_month = o[o.month == m].groupby("member_id").size()
        repurchase[m] = (
            len(in_month),
            int((in_month >= 2).sum()),
            sum(1 for member in in_month.index if member_months[member][0] < m),
        )
    cross_months = {
        m: (g.member_id.nunique(), int((g.groupby("member_id").brand_id.nunique() >= 2).sum()))
        for m, g in o.groupby("month")
    }
    brands = o.groupby("member_id").brand_id.nunique()
    channels = {
        c: (len(g), int(g.amount_fen.sum()), g.member_id.nunique()) for c, g in o.groupby("channel")
    }
    guided = o[o.guide_id.notna()]
    guides = {
        m: (len(g), int(g.amount_fen.sum()), int(g.guide_id.notna().sum()),
            int(g.amount_fen[g.guide_id.notna()].sum()))
        for m, g in o.groupby("month")
    }  # fmt: skip
    ranking = sorted(
        ((gid, len(g), int(g.amount_fen.sum()), g.member_id.nunique())
         for gid, g in guided.groupby("guide_id")),
        key=lambda r: (-r[2], r[0]),
    )  # fmt: skip
    return {
        "cohorts": cohorts,
        "repurchase": repurchase,
        "cross_overall": (len(brands), int((brands >= 2).sum())),
        "cross_months": cross_months,
        "channels": channels,
        "guides": guides,
        "ranking": ranking,
    }


def funnel(events: pd.DataFrame, t_end: datetime) -> dict[tuple[str, str], tuple[int, int]]:
    """(channel, step) -> (events, distinct members), resolved members only."""
    e = events[(events.occurred_at <= pd.Timestamp(t_end)) & events.member_id.notna()]
    e = e[e.type.isin(["view", "add_to_cart", "order", "pay"])]
    return {(c, t): (len(g), g.member_id.nunique()) for (c, t), g in e.groupby(["channel", "type"])}
