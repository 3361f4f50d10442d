"""The analyses as the CLI (and later the API) call them: files in, JSON-ready dicts out.

Each function reads its input, opens an engine (or uses the one it is given), runs the Ibis
expressions and post-processes in Python only what must be exact on every engine (rates,
intervals, knees: from integer counts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from ibis import BaseBackend

from siyu.analytics.bgnbd import fit_bgnbd
from siyu.analytics.clv import CLVResult, clv_summary, fit_clv
from siyu.analytics.engines import (
    Engine,
    engine_name,
    load_orders,
    open_engine,
    scalar,
    to_arrow,
    to_pandas,
)
from siyu.analytics.gamma_gamma import fit_gamma_gamma
from siyu.analytics.knee import DEFAULT_MIN_SUPPORT, KneeMethod, find_knee
from siyu.analytics.retention import RetentionRow, retention_counts, retention_rows
from siyu.analytics.rfm import (
    RFMConfig,
    layer_bounds,
    rfm_scores,
    rfm_values,
    segment_summary,
    summary_json,
)
from siyu.errors import ValidationError

AXES: tuple[tuple[str, Literal["r", "f", "m"]], ...] = (
    ("recency_days", "r"),
    ("frequency", "f"),
    ("monetary_fen", "m"),
)


@dataclass(frozen=True)
class RetentionReport:
    """The curve (overall, and per group when broken down), its knee and the JSON."""

    rows: list[RetentionRow]
    groups: list[RetentionRow]
    payload: dict[str, Any]


def retention_report(
    orders: Path | pa.Table,
    window_days: int,
    max_k: int = 10,
    as_of: datetime | None = None,
    by: Sequence[str] = (),
    knee_method: KneeMethod = "jump",
    min_support: int = DEFAULT_MIN_SUPPORT,
    engine: Engine = "duckdb",
    con: BaseBackend | None = None,
) -> RetentionReport:
    """Retention by order count k = 1..max_k with window W, its knee and the evidence."""
    with open_engine(engine, con) as backend:
        table = load_orders(backend, orders)
        t_end = _t_end(backend, table, as_of)
        counts = to_pandas(backend, retention_counts(table, window_days, max_k, t_end))
        rows = retention_rows(counts, max_k)
        groups: list[RetentionRow] = []
        if by:
            grouped = to_pandas(backend, retention_counts(table, window_days, max_k, t_end, by))
            groups = retention_rows(grouped, max_k, by)
        name = engine_name(backend)
    knee = find_knee(rows, knee_method, min_support)
    payload: dict[str, Any] = {
        "window_days": window_days,
        "max_k": max_k,
        "as_of": t_end.isoformat(),
        "engine": name,
        "rows": [r.to_json() for r in rows],
        "knee": knee.k,
        "knee_evidence": knee.to_json(),
    }
    if by:
        payload["by"] = list(by)
        payload["groups"] = [r.to_json() for r in groups]
        payload["group_knees"] = _group_knees(groups, knee_method, min_support)
    return RetentionReport(rows, groups, payload)


def rfm_report(
    orders: Path | pa.Table,
    as_of: datetime | None = None,
    config: RFMConfig | None = None,
    out: Path | None = None,
    engine: Engine = "duckdb",
    con: BaseBackend | None = None,
) -> dict[str, Any]:
    """Segment sizes and score layers; every member's scores go to `out` (CSV or Parquet)."""
    if out is not None and out.suffix.lower() not in (".csv", ".parquet"):
        raise ValidationError("out", f"must end in .csv or .parquet, got {out.name}")
    config = config or RFMConfig()
    with open_engine(engine, con) as backend:
        table = load_orders(backend, orders)
        t_end = _t_end(backend, table, as_of)
        scored = rfm_scores(rfm_values(table, t_end), config)
        members = int(scalar(backend, scored.count()))
        segments = summary_json(to_pandas(backend, segment_summary(scored)), members)
        layers = {
            axis: [
                {k: int(v) for k, v in rec.items()}
                for rec in to_pandas(backend, layer_bounds(scored, short)).to_dict("records")
            ]
            for axis, short in AXES
        }
        if out is not None:
            _write(to_arrow(backend, scored.order_by("member_id")), out)
        name = engine_name(backend)
    return {
        "as_of": t_end.isoformat(),
        "engine": name,
        "layering": config.layering,
        "members": members,
        "segments": segments,
        "layers": layers,
        **({"out": str(out)} if out is not None else {}),
    }


def clv_from_orders(
    orders: Path | pa.Table,
    period_days: int = 7,
    horizon: int = 52,
    as_of: datetime | None = None,
    discount_rate: float = 0.0,
    engine: Engine = "duckdb",
    con: BaseBackend | None = None,
) -> CLVResult:
    """BG/NBD + Gamma-Gamma on the summary computed from orders (money in fen)."""
    with open_engine(engine, con) as backend:
        table = load_orders(backend, orders)
        t_end = _t_end(backend, table, as_of)
        summary = to_pandas(backend, clv_summary(table, t_end))
    return fit_clv(summary, period_days, horizon, discount_rate)


def clv_from_summary(path: Path, horizon: int = 52) -> dict[str, Any]:
    """BG/NBD (and Gamma-Gamma if the file has an average spend column) on a summary
    file: `frequency,recency,T` or `x,t_x,T`, optional `zbar` or `monetary_value`, in the
    file's own time and money units."""
    data = _read_table(path)
    names = set(data.column_names)
    if {"frequency", "recency", "T"} <= names:
        x, t_x, T = (_numbers(data, c) for c in ("frequency", "recency", "T"))
    elif {"x", "t_x", "T"} <= names:
        x, t_x, T = (_numbers(data, c) for c in ("x", "t_x", "T"))
    else:
        missing = [c for c in ("frequency", "recency", "T") if c not in names]
        raise ValidationError(
            missing[0],
            "column is missing; a summary needs frequency,recency,T (or x,t_x,T), "
            f"found: {', '.join(data.column_names) or 'none'}",
        )
    bg = fit_bgnbd(x, t_x, T)
    payload: dict[str, Any] = {
        "members": len(x),
        "bgnbd": bg.to_json(),
        "horizon_periods": horizon,
        "expected_purchases": round(float(bg.expected_purchases(horizon, x, t_x, T).sum()), 3),
    }
    spend = next((c for c in ("zbar", "monetary_value") if c in names), None)
    if spend is not None:
        payload["gamma_gamma"] = fit_gamma_gamma(x, _numbers(data, spend)).to_json()
    return payload


def _t_end(backend: BaseBackend, table: Any, as_of: datetime | None) -> datetime:
    if as_of is not None:
        return as_of
    latest = scalar(backend, table.ordered_at.max())
    if latest is None or pd.isna(latest):  # no orders at all
        raise ValidationError("orders", "has no rows to analyse")
    end: datetime = pd.Timestamp(latest).to_pydatetime()
    return end


def _group_knees(
    rows: Sequence[RetentionRow], method: KneeMethod, min_support: int
) -> list[dict[str, Any]]:
    by_group: dict[tuple[tuple[str, Any], ...], list[RetentionRow]] = {}
    for r in rows:
        by_group.setdefault(r.group, []).append(r)
    return [
        {**dict(group), "knee": find_knee(curve, method, min_support).k}
        for group, curve in by_group.items()
    ]


def _read_table(path: Path) -> pa.Table:
    if not path.is_file():
        raise ValidationError("summary", f"no such file: {path}")
    if path.suffix.lower() == ".parquet":
        return pq.read_table(path)
    try:
        return pacsv.read_csv(path)
    except pa.ArrowInvalid as exc:
        raise ValidationError("summary", f"{path.name} is not a readable CSV file: {exc}") from exc


def _numbers(data: pa.Table, column: str) -> list[float]:
    col = data[column]
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
        raise ValidationError(column, f"must be numbers, got {col.type}")
    if col.null_count:
        raise ValidationError(column, "must not be empty")
    return [float(v) for v in col.to_pylist()]


def write_members(rows: list[dict[str, Any]], out: Path) -> None:
    """Per-member rows (e.g. `CLVResult.members()`) to a CSV or Parquet file."""
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise ValidationError("out", f"must end in .csv or .parquet, got {out.name}")
    _write(pa.Table.from_pylist(rows), out)


def _write(table: pa.Table, out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".parquet":
        pq.write_table(table, out)
    else:
        pacsv.write_csv(table, out)
