"""Automatic tags the store computes: copies of per-member results already written back
(lifecycle stage, RFM segment, tier, CLV band), what only the store holds (reachable
identifiers, gender, birth month, age band), and the affinity band, of the scores the
refresh has just written from the store's facts by the scorer the tiers use (so a tag and a
tier never read two scores).

Gender, birth date and identifiers are personal data and never reach the warehouse
(`analytics.schema.PERSONAL`), so these tags are read here, from the store, as coarse
labels only: a birth month without day or year, an age band of about ten years, the
gender code the member profile shows every role already. The birth date itself never
leaves this module.

Each function returns (member_id int64, value string) for the group's active members it
applies to; a merged member holds no automatic tag (its survivor does).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import Connection, text

from siyu.segments.affinity.rules import affinity_rules
from siyu.segments.affinity.score import band_of
from siyu.segments.models import AFFINITY_SCALE

ACTIVE = (
    "JOIN members m ON m.group_id = x.group_id AND m.member_id = x.member_id "
    "AND m.status = 'active'"
)

Compute = Callable[[Connection, str, datetime], pa.Table]


def result(member_ids: list[Any], values: list[Any]) -> pa.Table:
    return pa.table(
        {
            "member_id": pa.array([int(m) for m in member_ids], pa.int64()),
            "value": pa.array([None if v is None else str(v) for v in values], pa.string()),
        }
    )


def _rows(conn: Connection, sql: str, params: dict[str, Any]) -> pa.Table:
    rows = conn.execute(text(sql), params).all()
    return result([r[0] for r in rows], [r[1] for r in rows])


def stage(conn: Connection, group_id: str, as_of: datetime) -> pa.Table:
    """The lifecycle stage `member_stages` holds (written by the last stages run)."""
    return _rows(
        conn,
        f"SELECT x.member_id, x.stage FROM member_stages x {ACTIVE} WHERE x.group_id = :g",
        {"g": group_id},
    )


def rfm_segment(conn: Connection, group_id: str, as_of: datetime) -> pa.Table:
    """The RFM segment `member_rfm` holds (written by the last snapshot)."""
    return _rows(
        conn,
        f"SELECT x.member_id, x.segment FROM member_rfm x {ACTIVE} WHERE x.group_id = :g",
        {"g": group_id},
    )


def tier(conn: Connection, group_id: str, as_of: datetime) -> pa.Table:
    """The member's tier code; with tiers per brand, `brand:code` per scope joined by ','
    in scope order (one group-wide tier is its bare code)."""
    rows = conn.execute(
        text(f"""SELECT x.member_id, x.scope_key, x.tier_code FROM member_tiers x {ACTIVE}
                 WHERE x.group_id = :g ORDER BY x.member_id, x.scope_key"""),
        {"g": group_id},
    ).all()
    held: dict[int, list[str]] = {}
    for member_id, scope, code in rows:
        held.setdefault(int(member_id), []).append(code if scope == "*" else f"{scope}:{code}")
    return result(list(held), [",".join(v) for v in held.values()])


# top 20 % of the group's CLV (by rank, equal values share one), the next 30 %, the rest
CLV_BANDS = ((2, "high"), (5, "mid"))


def clv_band(conn: Connection, group_id: str, as_of: datetime) -> pa.Table:
    """high / mid / low by the member's rank in `member_clv` (expected spend over the
    horizon); equal values share the band of the first of them."""
    rows = conn.execute(
        text(f"""SELECT x.member_id, RANK() OVER (ORDER BY x.clv_fen DESC) - 1 AS r,
                        COUNT(*) OVER () AS n
                 FROM member_clv x {ACTIVE} WHERE x.group_id = :g"""),
        {"g": group_id},
    ).all()
    values = []
    for _, r, n in rows:
        band = next((label for tenths, label in CLV_BANDS if 10 * r < tenths * n), "low")
        values.append(band)
    return result([r[0] for r in rows], values)


def affinity(conn: Connection, group_id: str, as_of: datetime) -> pa.Table:
    """The band of each member's affinity score under the group's affinity rules
    (`segments.affinity`): the scores `member_affinity` holds, which the refresh writes as
    of `as_of` just before (`affinity.writeback`); a member below the lowest band holds no
    tag. The band reads the stored (shown) score, so the tag and a rule on the number agree."""
    _, rules = affinity_rules(conn, group_id)
    rows = conn.execute(
        text(
            f"SELECT x.member_id, x.score_e4 FROM member_affinity x {ACTIVE} WHERE x.group_id = :g"
        ),
        {"g": group_id},
    ).all()
    banded = [(int(m), band_of(rules, int(e4) / AFFINITY_SCALE)) for m, e4 in rows]
    held = [(m, band) for m, band in banded if band is not None]
    return result([m for m, _ in held], [band for _, band in held])


# Best first: a guide's WeCom chat is free and personal; an official-account template
# message needs the member to follow; a mini-program subscription message needs consent per
# message; an SMS costs money per message.
CONTACT_METHODS = ("wecom", "official_account", "miniprogram", "sms")
_CONTACT_RANK = """CASE WHEN x.type = 'external_userid' THEN 0
    WHEN x.type = 'openid' AND x.source_channel = 'official_account' THEN 1
    WHEN x.type = 'openid' THEN 2 WHEN x.type = 'phone' THEN 3 END"""


def contact_method(conn: Connection, group_id: str, as_of: datetime) -> pa.Table:
    """The best way to reach the member among the identifiers it has (CONTACT_METHODS)."""
    rows = conn.execute(
        text(f"""SELECT x.member_id, MIN({_CONTACT_RANK}) AS best FROM identities x {ACTIVE}
                 WHERE x.group_id = :g AND x.type IN ('external_userid', 'openid', 'phone')
                 GROUP BY x.member_id"""),
        {"g": group_id},
    ).all()
    return result([r[0] for r in rows], [CONTACT_METHODS[int(r[1])] for r in rows])


GENDERS = ("f", "m")  # 'u' (unknown) and missing get no tag


def gender(conn: Connection, group_id: str, as_of: datetime) -> pa.Table:
    return _rows(
        conn,
        """SELECT member_id, gender FROM members
           WHERE group_id = :g AND status = 'active' AND gender IN ('f', 'm')""",
        {"g": group_id},
    )


def _births(conn: Connection, group_id: str) -> tuple[list[int], list[date]]:
    rows = conn.execute(
        text("""SELECT member_id, birth_date FROM members
                WHERE group_id = :g AND status = 'active' AND birth_date IS NOT NULL"""),
        {"g": group_id},
    ).all()
    # raw SQL on SQLite returns dates as text, PostgreSQL as date objects
    born = [b if isinstance(b, date) else date.fromisoformat(str(b)[:10]) for _, b in rows]
    return [int(r[0]) for r in rows], born


def birth_month(conn: Connection, group_id: str, as_of: datetime) -> pa.Table:
    """The month of birth, '01' to '12' (for birthday campaigns); never the day or year."""
    members, born = _births(conn, group_id)
    return result(members, [f"{b.month:02d}" for b in born])


AGE_BANDS = ((17, "<18"), (24, "18-24"), (34, "25-34"), (44, "35-44"), (54, "45-54"))


def age_band(conn: Connection, group_id: str, as_of: datetime) -> pa.Table:
    """Whole years at the as-of date, banded (AGE_BANDS, then '55+'); a birth date after
    the as-of date (bad data) gets no tag."""
    members, born = _births(conn, group_id)
    day = as_of.date()
    ages = np.array(
        [day.year - b.year - ((day.month, day.day) < (b.month, b.day)) for b in born], np.int64
    )
    keep = ages >= 0
    labels = [next((lab for top, lab in AGE_BANDS if a <= top), "55+") for a in ages[keep]]
    return result(list(np.asarray(members, np.int64)[keep]), labels)
