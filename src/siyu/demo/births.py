"""Birth dates at their edges: true births on 02-29, 12-31 and 01-01, and what a till
records instead of the truth (the year alone as YYYY-01-01, day and month swapped,
nothing). Dates are days since 1970-01-01 (negative before it), NO_BIRTH for unknown."""

from __future__ import annotations

import numpy as np

from siyu.demo.config import GeneratorConfig
from siyu.demo.rand import I64, Rng

NO_BIRTH = np.iinfo(np.int32).min  # unknown (a negative day is a birth before 1970)

# How a member record's birth date relates to the person's (truth/members.parquet).
BIRTH_AS_REGISTERED, BIRTH_PLACEHOLDER, BIRTH_SWAPPED, BIRTH_MISSING = range(4)
BIRTH_FORMS = ("as_registered", "year_only", "day_month_swapped", "missing")


def ymd(days: I64) -> tuple[I64, I64, I64]:
    """(year, month, day) of day numbers."""
    d = days.astype("datetime64[D]")
    y = d.astype("datetime64[Y]")
    m = d.astype("datetime64[M]")
    year = y.astype(np.int64) + 1970
    month = (m - y.astype("datetime64[M]")).astype(np.int64) + 1
    day = (d - m.astype("datetime64[D]")).astype(np.int64) + 1
    return year, month, day


def from_ymd(year: I64, month: I64, day: I64) -> I64:
    """Day numbers of valid (year, month, day) triples."""
    months = (year - 1970) * 12 + month - 1
    first = months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    return first + day - 1


def true_births(rng: Rng, config: GeneratorConfig, pid: I64, birth: I64) -> I64:
    """Move a share of known births to 02-29 (of the nearest leap year at or before) and to
    12-31 or 01-01 of their year."""
    known = birth != NO_BIRTH
    year, _m, _d = ymd(np.where(known, birth, 0))
    leap = known & rng.flag("leap_birth", config.leap_day_birth_rate, pid)
    edge = known & ~leap & rng.flag("year_edge_birth", config.year_edge_birth_rate, pid)
    new_year = rng.flag("year_edge_day", 0.5, pid)
    leap_year = year - year % 4  # births are 1949..2007: no century year that is not leap
    out = np.where(leap, from_ymd(leap_year, np.full_like(year, 2), np.full_like(year, 29)), birth)
    edge_day = np.where(
        new_year,
        from_ymd(year, np.ones_like(year), np.ones_like(year)),
        from_ymd(year, np.full_like(year, 12), np.full_like(year, 31)),
    )
    return np.where(edge, edge_day, out)


def recorded_births(rng: Rng, config: GeneratorConfig, birth: I64, keys: I64) -> tuple[I64, I64]:
    """(birth date on the record, its BIRTH_FORMS code) for records of persons born `birth`."""
    known = birth != NO_BIRTH
    year, month, day = ymd(np.where(known, birth, 0))
    u = rng.u("birth_form", keys)
    r1 = config.birth_missing_rate
    r2 = r1 + config.birth_placeholder_rate
    r3 = r2 + config.birth_swap_rate
    swappable = (day <= 12) & (day != month)
    form = np.where(
        ~known | (u < r1),
        BIRTH_MISSING,
        np.where(
            u < r2,
            BIRTH_PLACEHOLDER,
            np.where((u < r3) & swappable, BIRTH_SWAPPED, BIRTH_AS_REGISTERED),
        ),
    )
    ones = np.ones_like(year)
    recorded = np.select(
        [form == BIRTH_MISSING, form == BIRTH_PLACEHOLDER, form == BIRTH_SWAPPED],
        [np.full_like(birth, NO_BIRTH), from_ymd(year, ones, ones), from_ymd(year, day, month)],
        birth,
    )
    return recorded, form
