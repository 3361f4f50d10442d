"""Per-member results of a snapshot run written back to the operational store, so the
console's counts open the members behind them (`segments.lists`): each buyer's RFM scores
and segment (`member_rfm`), each buyer's CLV over the next 12 months (`member_clv`, for the
guides' follow-up tasks). The stages have their own writer (`lifecycle.write_member_stages`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
from sqlalchemy import Engine, text

from siyu.errors import ValidationError
from siyu.store.bulk import stage, unstage
from siyu.store.dialect import GROUP

MICRO = 1_000_000

if TYPE_CHECKING:
    from siyu.analytics.clv import CLVResult


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


def write_member_clv(
    engine: Engine, group_id: str, result: CLVResult | None, computed_at: datetime | None = None
) -> int:
    """Replace the group's rows of `member_clv` with `result`'s members (expected purchases,
    P(alive) and CLV in fen over its horizon) in one transaction; returns the rows written.
    None, or a result without CLV (no Gamma-Gamma fit), clears the group's rows: stale values
    must not outlive the run that could not refit them."""
    now = computed_at or datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM member_clv WHERE group_id = :g"), {"g": group_id})
        if result is None or result.clv_fen is None or not result.member_ids:
            return 0
        rows = pa.table(
            {
                "member_id": pa.array(result.member_ids).cast(pa.int64()),
                # staged as integer millionths (staging carries integers), stored as floats
                "expected_micro": pa.array(np.rint(result.expected_purchases * MICRO), pa.int64()),
                "p_alive_micro": pa.array(np.rint(result.p_alive * MICRO), pa.int64()),
                "clv_fen": pa.array(result.clv_fen, pa.int64()),
            }
        )
        staged = stage(conn, "clv", rows)
        conn.execute(
            text(f"""
            INSERT INTO member_clv (group_id, member_id, expected_purchases, p_alive, clv_fen,
                horizon_days, computed_at)
            SELECT {GROUP}, s.member_id, s.expected_micro / {MICRO:.1f},
                s.p_alive_micro / {MICRO:.1f}, s.clv_fen, :h, :now
            FROM {staged.name} s"""),
            {"g": group_id, "h": result.period_days * result.horizon, "now": now},
        )
        unstage(conn, staged)
    return rows.num_rows
