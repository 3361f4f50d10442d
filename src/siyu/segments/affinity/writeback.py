"""Every member's affinity score written back to the store (`member_affinity`), so a
segment rule can compare it as a number (`affinity gte 300`) and `auto.affinity` bands the
same numbers. `siyu tags refresh` writes them just before it computes that tag.

The stored value is the shown score (4 decimals) in ten-thousandths, an exact integer: a
rule's threshold is compared with it divided back (`segments.sources`), which gives the
same float as the shown score, so "score ≥ 22.75" holds for a member shown 22.75, on any
engine, as a band with `min_score` 22.75 does.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
from sqlalchemy import DateTime, Engine, bindparam, text

from siyu.segments.affinity.score import score_all, shown
from siyu.segments.models import AFFINITY_SCALE
from siyu.store.bulk import stage, unstage
from siyu.store.dialect import GROUP, dialect_of
from siyu.store.times import stored_now


def score_e4(total: float) -> int:
    """The shown score in ten-thousandths (22.749999 is shown 22.75: 227500)."""
    return round(shown(total) * AFFINITY_SCALE)


def write_scores(
    engine: Engine, group_id: str, as_of: datetime, computed_at: datetime | None = None
) -> int:
    """Score the group's active members as of `as_of` under the rules in force and make
    those the group's rows of `member_affinity`, in one transaction: a member whose shown
    score is 0 (no behaviour in the window, a merged member) has no row, so members who no
    longer score lose theirs. Returns the rows written."""
    with engine.connect() as conn:  # scored outside the write: SQLite would hold its lock
        version, _, scores = score_all(conn, group_id, as_of)
    scored = [(m, score_e4(s.total)) for m, s in scores.items()]
    kept = [(m, e4) for m, e4 in scored if e4 != 0]
    rows = pa.table(
        {
            "member_id": pa.array([m for m, _ in kept], pa.int64()),
            "score_e4": pa.array([e4 for _, e4 in kept], pa.int64()),
        }
    )
    at = as_of.astimezone(UTC).replace(tzinfo=None) if as_of.tzinfo else as_of
    with engine.begin() as conn:
        # two refreshes of a group take turns: the second would otherwise insert rows the
        # first committed after its DELETE looked (a duplicate key on PostgreSQL)
        dialect_of(conn).advisory_lock(conn, "member_affinity", group_id)
        conn.execute(text("DELETE FROM member_affinity WHERE group_id = :g"), {"g": group_id})
        staged = stage(conn, "affinity", rows)
        insert = text(f"""
            INSERT INTO member_affinity (group_id, member_id, score_e4, rules_version, as_of,
                computed_at)
            SELECT {GROUP}, s.member_id, s.score_e4, :v, :as_of, :now FROM {staged.name} s""")
        conn.execute(
            insert.bindparams(
                bindparam("as_of", type_=DateTime()), bindparam("now", type_=DateTime())
            ),
            {"g": group_id, "v": version, "as_of": at, "now": computed_at or stored_now()},
        )
        unstage(conn, staged)
    return rows.num_rows
