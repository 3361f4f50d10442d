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


def rfm(orders: pa.Table | pd.DataFrame, t_end: datetime, scores: int = 5) -> pd.DataFrame:
    """recency_days, frequency, monetary_fen and quantile scores r, f, m per member."""
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
