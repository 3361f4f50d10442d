"""Lifecycle stages as the CLI and the demo call them: knee, stages, transitions, write-back.

From an orders file (like the other `siyu analyze` commands) or from the warehouse (the
landed store: members who never ordered are prospects, and the stages can be written back
to the store's `member_stages` for serving).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
from ibis import BaseBackend
from sqlalchemy import Engine, text

from siyu.analytics.engines import Engine as EngineName
from siyu.analytics.engines import engine_name, load_orders, open_engine, to_arrow, to_pandas
from siyu.analytics.knee import Knee, find_knee
from siyu.analytics.retention import RetentionRow, retention_counts, retention_rows
from siyu.analytics.stages import (
    StageConfig,
    member_stages,
    month_ends,
    stage_names,
    stage_transitions,
)
from siyu.analytics.warehouse import open_warehouse
from siyu.errors import ValidationError
from siyu.store.bulk import stage, unstage
from siyu.store.dialect import GROUP


@dataclass(frozen=True)
class StagesReport:
    """Every member's stage (`members`, an Arrow table), the knee behind them, the curve
    it came from (empty when the knee was given) and the JSON payload."""

    members: pa.Table
    knee: int
    curve: list[RetentionRow]
    payload: dict[str, Any]


def stages_from_orders(
    orders: Path | pa.Table,
    config: StageConfig | None = None,
    as_of: datetime | None = None,
    months: int = 1,
    engine: EngineName = "duckdb",
    con: BaseBackend | None = None,
) -> StagesReport:
    """Stages of the buyers in an orders file (no prospects: a file knows only buyers)."""
    with open_engine(engine, con) as backend:
        table = load_orders(backend, orders)
        return stages_report(backend, table, None, config or StageConfig(), as_of, months)


def stages_from_warehouse(
    location: Path,
    group_id: str,
    config: StageConfig | None = None,
    as_of: datetime | None = None,
    months: int = 1,
    engine: EngineName = "duckdb",
    con: BaseBackend | None = None,
) -> StagesReport:
    """Stages of every active member of a brand group in the warehouse."""
    with open_engine(engine, con) as backend:
        wh = open_warehouse(backend, location, group_id)
        report = stages_report(
            backend,
            wh.purchases(),
            wh.members(),
            config or StageConfig(),
            as_of or wh.data_end(),
            months,
            distinct=True,  # the warehouse's orders are one row per order
        )
        report.payload["warehouse"] = str(location)
        report.payload["group"] = group_id
        return report


def stages_report(
    backend: BaseBackend,
    purchases: ir.Table,
    members: ir.Table | None,
    config: StageConfig,
    as_of: datetime | None,
    months: int,
    distinct: bool = False,
) -> StagesReport:
    """The knee (unless `config.knee` gives it), every member's stage and `months`
    month-over-month transition matrices. `distinct`: the orders are already one row per
    order (`orders.per_order`)."""
    t_end = as_of or _latest(backend, purchases)
    curve: list[RetentionRow] = []
    found: Knee | None = None
    if config.knee is None:
        counts = to_pandas(
            backend,
            retention_counts(purchases, config.window_days, config.max_k, t_end, distinct=distinct),
        )
        curve = retention_rows(counts, config.max_k)
        found = find_knee(curve, "jump", config.min_support)
        if found.k is None:
            raise ValidationError(
                "knee",
                "the retention curve has no knee (no supported rise in the rate); "
                "give one (--knee) or lower --min-support",
            )
        knee = found.k
    else:
        knee = config.knee
    names = stage_names(knee)
    per_member = to_arrow(
        backend,
        member_stages(purchases, knee, config, t_end, members, distinct).order_by("member_id"),
    )
    sizes = pd.Series(per_member["stage"].to_pylist(), dtype="object").value_counts()
    total = per_member.num_rows
    moves = to_pandas(
        backend,
        stage_transitions(purchases, knee, month_ends(t_end, months), config, members, distinct),
    )
    payload: dict[str, Any] = {
        "as_of": t_end.isoformat(),
        "engine": engine_name(backend),
        "knee": knee,
        "knee_source": "given" if found is None else "data",
        "config": {
            "at_risk_days": config.at_risk_days,
            "lapsed_days": config.lapsed_days,
            "window_days": config.window_days,
            "min_support": config.min_support,
        },
        "members": total,
        "stages": [
            {
                "stage": name,
                "members": int(sizes.get(name, 0)),
                "share": round(int(sizes.get(name, 0)) / total, 6) if total else None,
            }
            for name in names
        ],
        "transitions": _matrices(moves, names),
    }
    if found is not None:
        payload["knee_evidence"] = found.to_json()
    return StagesReport(per_member, knee, curve, payload)


def _matrices(moves: pd.DataFrame, names: list[str]) -> list[dict[str, Any]]:
    """One matrix per month: rows = stage before, columns = stage after, zeros filled."""
    out = []
    for as_of, block in moves.groupby("as_of", sort=True):
        matrix = {a: dict.fromkeys(names, 0) for a in names}
        for rec in block.to_dict("records"):
            matrix[rec["from_stage"]][rec["to_stage"]] = int(rec["members"])
        end = pd.Timestamp(as_of).to_pydatetime()
        out.append({"to": end.isoformat(), "month": end.strftime("%Y-%m"), "matrix": matrix})
    # each matrix's start is the previous one's end; the first starts a month before
    return out


def write_member_stages(
    engine: Engine, group_id: str, stages: pa.Table, computed_at: datetime | None = None
) -> int:
    """Replace the group's rows of `member_stages` with `stages` (member_id, stage,
    orders, last_order_at) in one transaction; returns the rows written."""
    if not pa.types.is_integer(stages.schema.field("member_id").type):
        raise ValidationError(
            "member_id", "must be the store's integer member ids to write stages back"
        )
    now = computed_at or datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    rows = pa.table(
        {
            "member_id": stages["member_id"].cast(pa.int64()),
            "stage": stages["stage"].cast(pa.string()),
            "orders": stages["orders"].cast(pa.int64()),
            "last_order_at": stages["last_order_at"].cast(pa.timestamp("us")),
        }
    )
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM member_stages WHERE group_id = :g"), {"g": group_id})
        staged = stage(conn, "stages", rows)
        conn.execute(
            text(f"""
            INSERT INTO member_stages
                (group_id, member_id, stage, orders, last_order_at, computed_at)
            SELECT {GROUP}, s.member_id, s.stage, s.orders, s.last_order_at, :now
            FROM {staged.name} s"""),
            {"g": group_id, "now": now},
        )
        unstage(conn, staged)
    return rows.num_rows


def _latest(backend: BaseBackend, purchases: ir.Table) -> datetime:
    latest = backend.execute(purchases.ordered_at.max())
    if latest is None or pd.isna(latest):
        raise ValidationError("orders", "has no rows to analyse")
    end: datetime = pd.Timestamp(latest).to_pydatetime()
    return end


def write_stages_file(stages: pa.Table, out: Path) -> None:
    """Every member's stage to a CSV or Parquet file."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValidationError("out", f"must end in .csv or .parquet, got {out.name}")
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        pq.write_table(stages, out)
    else:
        pacsv.write_csv(stages, out)
