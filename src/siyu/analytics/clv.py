"""Customer lifetime value from orders: the BG/NBD summary computed with Ibis, then BG/NBD
for how many purchases and Gamma-Gamma for what they are worth.

The summary follows the models' convention (and the `lifetimes` package's): purchases are
counted per day (UTC), so several orders on one day are one purchase; frequency is the
number of days with a purchase after the first; recency the days from the first to the last
such day; T the days from the first to T_end. Money stays integer fen: the summary carries
the repeat days' spend as a sum (`repeat_fen`), and CLV is rounded to whole fen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ibis.expr.types as ir
import numpy as np
from numpy.typing import NDArray

from siyu.analytics.bgnbd import BGNBD, fit_bgnbd
from siyu.analytics.gamma_gamma import GammaGamma, fit_gamma_gamma
from siyu.analytics.orders import DAY_SECONDS, data_end, epoch_seconds
from siyu.errors import ValidationError

SUMMARY_COLUMNS = ("member_id", "frequency", "recency_days", "T_days", "repeat_fen")


def clv_summary(orders: ir.Table, t_end: datetime | ir.TimestampScalar | None = None) -> ir.Table:
    """Per member: frequency, recency_days, T_days (whole days) and repeat_fen, as of
    `t_end` (default: the latest order; later orders are ignored)."""
    end = data_end(orders, t_end)
    known = orders.filter(orders.ordered_at <= end)
    known = known.mutate(day=epoch_seconds(known.ordered_at) // DAY_SECONDS)
    daily = known.group_by(["member_id", "day"]).aggregate(amount_fen=known.amount_fen.sum())
    per = daily.group_by("member_id").aggregate(
        days=daily.count(),
        first_day=daily.day.min(),
        last_day=daily.day.max(),
        total_fen=daily.amount_fen.sum(),
    )
    # the repeat spend is all but the first day's: joined back on (member, first day), two
    # hash aggregations and a join, a quarter faster on DuckDB than a window per member
    first = daily.join(per, (daily.member_id == per.member_id) & (daily.day == per.first_day))
    end_day = epoch_seconds(end) // DAY_SECONDS
    return first.select(
        first.member_id,
        frequency=(first.days - 1).cast("int64"),
        recency_days=(first.last_day - first.first_day).cast("int64"),
        T_days=(end_day - first.first_day).cast("int64"),
        repeat_fen=(first.total_fen - first.amount_fen).cast("int64"),
    ).order_by("member_id")


@dataclass(frozen=True)
class CLVResult:
    """Fits, per-member predictions over `horizon` periods, and totals."""

    period_days: int
    horizon: int
    bgnbd: BGNBD
    gamma_gamma: GammaGamma | None
    member_ids: list[Any]
    expected_purchases: NDArray[np.float64]
    p_alive: NDArray[np.float64]
    expected_spend_fen: NDArray[np.int64] | None
    clv_fen: NDArray[np.int64] | None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "period_days": self.period_days,
            "horizon_periods": self.horizon,
            "members": len(self.member_ids),
            "bgnbd": self.bgnbd.to_json(),
            "expected_purchases": round(float(self.expected_purchases.sum()), 3),
            "mean_p_alive": round(float(self.p_alive.mean()), 6),
        }
        if self.gamma_gamma is not None and self.clv_fen is not None:
            out["gamma_gamma"] = self.gamma_gamma.to_json()
            out["clv_fen"] = int(self.clv_fen.sum())
        return out

    def members(self) -> list[dict[str, Any]]:
        """One JSON-ready row per member."""
        rows = []
        for i, member in enumerate(self.member_ids):
            row: dict[str, Any] = {
                "member_id": member,
                "expected_purchases": round(float(self.expected_purchases[i]), 6),
                "p_alive": round(float(self.p_alive[i]), 6),
            }
            if self.expected_spend_fen is not None and self.clv_fen is not None:
                row["expected_spend_fen"] = int(self.expected_spend_fen[i])
                row["clv_fen"] = int(self.clv_fen[i])
            rows.append(row)
        return rows


def fit_clv(
    summary: Any,
    period_days: int = 7,
    horizon: int = 52,
    discount_rate: float = 0.0,
    monetary: bool = True,
) -> CLVResult:
    """Fit BG/NBD (and Gamma-Gamma when `monetary` and there are repeat buyers) on an
    executed `clv_summary` (a pandas DataFrame) and predict `horizon` periods of
    `period_days` days; CLV discounts each period's expected spend by `discount_rate`."""
    if period_days < 1:
        raise ValidationError("period_days", f"must be >= 1, got {period_days}")
    if horizon < 1:
        raise ValidationError("horizon", f"must be >= 1 period, got {horizon}")
    if not 0.0 <= discount_rate < 1.0:
        raise ValidationError("discount_rate", f"must be in [0, 1), got {discount_rate}")
    x = summary["frequency"].to_numpy(dtype=np.float64)
    t_x = summary["recency_days"].to_numpy(dtype=np.float64) / period_days
    T = summary["T_days"].to_numpy(dtype=np.float64) / period_days
    bg = fit_bgnbd(x, t_x, T)
    expected = bg.expected_purchases(horizon, x, t_x, T)
    alive = bg.p_alive(x, t_x, T)
    gg = spend = clv = None
    repeat_fen = summary["repeat_fen"].to_numpy(dtype=np.float64)
    zbar = np.where(x > 0, repeat_fen / np.maximum(x, 1), 0.0)
    # only repeat buyers who paid something say anything about spend (free repeat orders
    # have no log-density); the others still get a prediction, shrunk toward the mean
    spenders = (x > 0) & (zbar > 0)
    if monetary and spenders.sum() >= 2:
        gg = fit_gamma_gamma(np.where(spenders, x, 0.0), zbar)
        spend_f = gg.expected_spend(x, zbar)
        # expected purchases period by period, so later periods can be discounted; without
        # a discount the sum telescopes to the horizon's expected purchases
        if discount_rate == 0.0:
            value = expected * spend_f
        else:
            previous = np.zeros_like(x)
            value = np.zeros_like(x)
            for i in range(1, horizon + 1):
                current = bg.expected_purchases(i, x, t_x, T)
                value += (current - previous) * spend_f / (1 + discount_rate) ** i
                previous = current
        spend = np.rint(spend_f).astype(np.int64)
        clv = np.rint(value).astype(np.int64)
    return CLVResult(
        period_days,
        horizon,
        bg,
        gg,
        summary["member_id"].tolist(),
        expected,
        alive,
        spend,
        clv,
    )
