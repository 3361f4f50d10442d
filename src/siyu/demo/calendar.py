"""The shopping calendar: weekends, Chinese New Year, promotion days and hours of the day.

Orders are placed in "operational time": a clock that runs faster on busy days. A buyer's
gaps are drawn in operational time and mapped back to real days, so every order (first
or repeat) inherits the daily intensity and spikes show in daily order counts, while the
mean gap in days stays close to `mean_gap_days`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from siyu.demo.config import GeneratorConfig
from siyu.demo.rand import F64, I64

DAY = 86_400
UTC_OFFSET = 8 * 3600  # China Standard Time; data is written in UTC

# Chinese New Year (first day of the lunar year), 2015-2040.
CNY = {
    2015: (2, 19), 2016: (2, 8), 2017: (1, 28), 2018: (2, 16), 2019: (2, 5), 2020: (1, 25),
    2021: (2, 12), 2022: (2, 1), 2023: (1, 22), 2024: (2, 10), 2025: (1, 29), 2026: (2, 17),
    2027: (2, 6), 2028: (1, 26), 2029: (2, 13), 2030: (2, 3), 2031: (1, 23), 2032: (2, 11),
    2033: (1, 31), 2034: (2, 19), 2035: (2, 8), 2036: (1, 28), 2037: (2, 15), 2038: (2, 4),
    2039: (1, 24), 2040: (2, 12),
}  # fmt: skip

# (month, day, code, factor, lead-in days, lead-in factor, brand index or -1 for all)
PROMOTIONS: tuple[tuple[int, int, str, float, int, float, int], ...] = (
    (3, 8, "38", 1.6, 0, 1.0, -1),  # 女神节
    (6, 18, "618", 2.5, 3, 1.3, -1),
    (11, 11, "1111", 3.0, 10, 1.2, -1),
    (12, 12, "1212", 1.8, 0, 1.0, -1),
    (8, 8, "B01day", 1.5, 0, 1.0, 0),  # brand days
    (5, 20, "B02day", 1.5, 0, 1.0, 1),
    (9, 9, "B03day", 1.5, 0, 1.0, 2),
)
WEEKDAY = (0.92, 0.9, 0.9, 0.95, 1.05, 1.3, 1.25)  # Monday .. Sunday
CNY_BEFORE, CNY_BEFORE_FACTOR = 12, 1.35  # gift fruit and cakes before the holiday
CNY_DURING, CNY_DURING_FACTOR = 7, 0.45  # stores closed, people away
# Local hour of day: stores peak at lunch and after work, online in the evening.
HOURS_STORE = (0, 0, 0, 0, 0, 0, 0.2, 1, 3, 5, 6, 7, 8, 6, 5, 5, 6, 8, 9, 8, 6, 4, 2, 0.4)
HOURS_ONLINE = (2, 1, 0.5, 0.2, 0.1, 0.1, 0.3, 1, 2, 3, 3.5, 4, 4.5, 3.5, 3, 3, 3.5, 4, 4.5, 5,
                6.5, 7.5, 7, 4.5)  # fmt: skip


@dataclass(frozen=True)
class Calendar:
    """Per-day arrays over the window [start, start + days)."""

    start: date
    days: int
    day0: int  # start as days since 1970-01-01
    weight: F64  # relative order intensity of each day, mean 1
    op_clock: F64  # operational time at the start of each day (len days + 1)
    first_cum: F64  # cumulative weights for drawing first-order days (growth x weight)
    promo: I64  # index into PROMOTIONS of the day's promotion, -1 if none
    brand_day: I64  # brand index whose brand day it is, -1 if none
    hours_store: F64  # cumulative hour-of-day weights
    hours_online: F64

    @property
    def start_s(self) -> int:
        """Window start in local seconds since the epoch."""
        return self.day0 * DAY

    @property
    def end_s(self) -> int:
        """Window end (exclusive) in local seconds since the epoch."""
        return (self.day0 + self.days) * DAY

    def real_day(self, op_time: F64) -> I64:
        """Day index (0-based, may be >= days: censored) of an operational time."""
        return np.searchsorted(self.op_clock, op_time, side="right").astype(np.int64) - 1

    def promo_days(self) -> list[dict[str, object]]:
        """Promotion days inside the window, for truth.json."""
        out: list[dict[str, object]] = []
        for d in np.flatnonzero(self.promo >= 0):
            p = PROMOTIONS[int(self.promo[d])]
            when = self.start + timedelta(days=int(d))
            out.append({"date": when.isoformat(), "code": p[2], "factor": p[3]})
        return out


def build_calendar(config: GeneratorConfig) -> Calendar:
    """Intensity of each day of the window, from weekday, CNY and promotions."""
    days = config.days
    dates = [config.start + timedelta(days=i) for i in range(days)]
    weight = np.array([WEEKDAY[d.weekday()] for d in dates], dtype=np.float64)
    promo = np.full(days, -1, dtype=np.int64)
    brand_day = np.full(days, -1, dtype=np.int64)
    index = {d: i for i, d in enumerate(dates)}
    for year in range(config.start.year - 1, dates[-1].year + 2):
        if year in CNY:
            cny = date(year, *CNY[year])
            for off in range(-CNY_BEFORE, CNY_DURING):
                i = index.get(cny + timedelta(days=off))
                if i is not None:
                    weight[i] *= CNY_BEFORE_FACTOR if off < 0 else CNY_DURING_FACTOR
        for p_idx, (month, day, _code, factor, lead, lead_factor, brand) in enumerate(PROMOTIONS):
            when = date(year, month, day)
            i = index.get(when)
            if i is not None:
                weight[i] *= factor
                promo[i] = p_idx
                brand_day[i] = brand
            for off in range(1, lead + 1):
                j = index.get(when - timedelta(days=off))
                if j is not None:
                    weight[j] *= lead_factor
    weight /= weight.mean()
    op_clock = np.concatenate([[0.0], np.cumsum(weight)])
    growth = 1.0 + config.growth * (np.arange(days) + 0.5) / days
    first_cum = np.cumsum(growth * weight)
    return Calendar(
        start=config.start,
        days=days,
        day0=(config.start - date(1970, 1, 1)).days,
        weight=weight,
        op_clock=op_clock,
        first_cum=first_cum,
        promo=promo,
        brand_day=brand_day,
        hours_store=np.cumsum(np.array(HOURS_STORE, dtype=np.float64)),
        hours_online=np.cumsum(np.array(HOURS_ONLINE, dtype=np.float64)),
    )
