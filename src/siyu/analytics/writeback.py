"""Per-member results of a snapshot run written back to the operational store, so the
console's counts open the members behind them (`segments.lists`): each buyer's RFM scores
and segment (`member_rfm`). The stages have their own writer
(`lifecycle.write_member_stages`)."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
from sqlalchemy import Engine, text

from siyu.errors import ValidationError
from siyu.store.bulk import stage, unstage
from siyu.store.dialect import GROUP


def write_member_rfm(
    engine: Engine, group_id: str, scored: pa.Table, computed_at: datetime | None = None
) -> int:
    """Replace the group's rows of `member_rfm` with `scored` (member_id, r, f, m,
    segment) in one transaction; returns the rows written."""
    if not pa.types.is_integer(scored.schema.field("member_id").type):
        raise ValidationError(
            "member_id", "must be the store's integer member ids to write RFM scores back"
        )
    now = computed_at or datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    rows = pa.table(
        {
            "member_id": scored["member_id"].cast(pa.int64()),
            "r": scored["r"].cast(pa.int64()),
            "f": scored["f"].cast(pa.int64()),
            "m": scored["m"].cast(pa.int64()),
            "segment": scored["segment"].cast(pa.string()),
        }
    )
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM member_rfm WHERE group_id = :g"), {"g": group_id})
        staged = stage(conn, "rfm", rows)
        conn.execute(
            text(f"""
            INSERT INTO member_rfm (group_id, member_id, r, f, m, segment, computed_at)
            SELECT {GROUP}, s.member_id, s.r, s.f, s.m, s.segment, :now
            FROM {staged.name} s"""),
            {"g": group_id, "now": now},
        )
        unstage(conn, staged)
    return rows.num_rows
