"""Snapshots: the aggregates the console serves, computed from the warehouse in one run and
stored in the operational store (`analytics_snapshots`), one JSON payload per kind.

A page then reads one indexed row instead of running DuckDB per request: pages stay fast,
any number of server workers can read them on SQLite or PostgreSQL, and the DuckDB file is
never opened (or locked) by the server. Every payload holds aggregates only: counts, fen,
rates and ids of stores and guides, never a member's personal data.

Kinds:
    kpis       `kpi_service.kpis_from_warehouse` (every guide in `guides.top`)
    lifecycle  retention by order count, its knee, the stages it produced, the last month's
               transitions
    rfm        RFM segments and what each score layer means
    sales      members, active members and sales by channel per month (the overview's trends)
    stores     per store (shops and counters; a warehouse ships online orders and is no
               store): orders, sales, buyers, home members, last months' sales
    guides     per guide: store and its name, alias, orders, sales, members (from `kpis`),
               the funnel
    clv        the BG/NBD and Gamma-Gamma fits behind each buyer's 12-month CLV (written
               back to `member_clv` for the guides' tasks), or why none was written
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from ibis import BaseBackend
from sqlalchemy import Engine, text

from siyu.analytics import kpis as kpi_exprs
from siyu.analytics.clv import CLVResult, clv_summary, fit_clv
from siyu.analytics.engines import connect, load_arrow, materialised, to_arrow, to_pandas
from siyu.analytics.knee import find_knee
from siyu.analytics.kpi_service import kpi_report
from siyu.analytics.lifecycle import stages_report, write_member_stages
from siyu.analytics.retention import retention_counts, retention_rows
from siyu.analytics.rfm import (
    RFMConfig,
    layer_bounds,
    lifecycle_recency_days,
    rfm_scores,
    rfm_values,
    rule_json,
    segment_summary,
    summary_json,
)
from siyu.analytics.service import AXES
from siyu.analytics.stages import StageConfig, month_ends
from siyu.analytics.store_read import StoreReader
from siyu.analytics.warehouse import Warehouse, open_warehouse
from siyu.analytics.writeback import write_member_clv, write_member_rfm
from siyu.errors import SiyuError, ValidationError
from siyu.guides.service import generate_tasks
from siyu.guides.tasks import plan_from_lifecycle
from siyu.store.reads import Reader, Sql

KINDS = ("kpis", "lifecycle", "rfm", "sales", "stores", "guides", "clv")
KEEP = 5  # runs kept per kind: the newest is served, the others are history
TREND_MONTHS = 12
ACTIVE_DAYS = 90  # an active member ordered within this many days
STAGE_MAX_K = 8
CLV_PERIOD_DAYS = 7
MIN_REPEAT_BUYERS = 2  # Gamma-Gamma's own minimum
CLV_HORIZON = 52  # weeks: the tasks' value is what a member is worth over the next year


@dataclass(frozen=True)
class Snapshot:
    kind: str
    as_of: datetime
    computed_at: datetime
    payload: dict[str, Any]


def compute_snapshots(
    engine: Engine,
    group_id: str,
    warehouse: Path,
    config: StageConfig | None = None,
    write_stages: bool = True,
) -> dict[str, dict[str, Any]]:
    """Every kind's payload from the landed warehouse (DuckDB file or Parquet directory).
    The knee is found in the data unless `config.knee` gives it; with `write_stages` the
    members' stages are written back to `member_stages` (as `siyu analyze stages` does)."""
    config = config or StageConfig()
    con = connect("duckdb")
    try:
        wh = open_warehouse(con, warehouse, group_id)
        # One row per order, each joined to its identity's current member: materialised
        # once, and every analysis is told so (distinct=True) instead of re-aggregating
        # the orders and re-joining the identities in each of its queries.
        with materialised(wh.purchases()) as purchases:
            payloads = _payloads(con, wh, purchases, engine, group_id, config, write_stages)
    finally:
        con.disconnect()
    payloads["kpis"].update(warehouse=str(warehouse), group=group_id)
    return payloads


def _payloads(
    con: BaseBackend,
    wh: Warehouse,
    purchases: ir.Table,
    engine: Engine,
    group_id: str,
    config: StageConfig,
    write_stages: bool,
) -> dict[str, dict[str, Any]]:
    latest = con.execute(purchases.ordered_at.max())
    if latest is None or pd.isna(latest):
        raise ValidationError("warehouse", f"{wh.location} holds no orders of {group_id!r}")
    # every kind is as of the data's end (its newest fact), not the last order: a member
    # who joined after it is on the overview and in the stages alike
    t_end = wh.data_end() or pd.Timestamp(latest).to_pydatetime()
    cities = load_arrow(con, StoreReader(engine, group_id).store_cities(), "snapshot_cities")
    kpis = kpi_report(
        con,
        purchases,
        wh.events(),
        wh.tables["identities"],
        wh.members(),
        t_end,
        top_guides=1_000_000,
        stores=cities,
        distinct=True,
    )
    payloads = {
        "kpis": kpis,
        "lifecycle": _lifecycle(con, wh, purchases, engine, group_id, config, t_end, write_stages),
        "rfm": _rfm(con, purchases, t_end, config, engine, group_id),
        "sales": _sales(con, wh, purchases, t_end),
        "stores": _stores(con, engine, group_id, purchases, t_end),
        "guides": _guides(engine, group_id, kpis),
        "clv": _clv(con, purchases, t_end, engine, group_id),
    }
    for payload in payloads.values():
        payload.setdefault("as_of", t_end.isoformat())
    return payloads


def save_snapshots(
    engine: Engine,
    group_id: str,
    payloads: Mapping[str, dict[str, Any]],
    computed_at: datetime | None = None,
) -> None:
    """Store one run (every kind in one transaction) and drop runs older than the last
    `KEEP` of each kind. The guides' follow-up tasks follow the lifecycle's stages, in the
    same transaction (`guides.service.generate_tasks`)."""
    now = computed_at or datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    with engine.begin() as conn:
        for kind, payload in payloads.items():
            as_of = datetime.fromisoformat(str(payload["as_of"])).replace(tzinfo=None)
            conn.execute(
                text(
                    "INSERT INTO analytics_snapshots (group_id, kind, as_of, computed_at, payload)"
                    " VALUES (:g, :k, :a, :c, :p)"
                ),
                {
                    "g": group_id,
                    "k": kind,
                    "a": as_of,
                    "c": now,
                    "p": json.dumps(payload, ensure_ascii=False, default=str),
                },
            )
            keep = conn.execute(
                text(
                    "SELECT snapshot_id FROM analytics_snapshots WHERE group_id = :g AND kind = :k"
                    " ORDER BY snapshot_id DESC LIMIT 1 OFFSET :n"
                ),
                {"g": group_id, "k": kind, "n": KEEP - 1},
            ).scalar()
            if keep is not None:
                conn.execute(
                    text(
                        "DELETE FROM analytics_snapshots WHERE group_id = :g AND kind = :k"
                        " AND snapshot_id < :s"
                    ),
                    {"g": group_id, "k": kind, "s": keep},
                )
            plan = plan_from_lifecycle(payload) if kind == "lifecycle" else None
            if plan is not None:
                generate_tasks(conn, group_id, plan, now)


LATEST = Sql(
    "SELECT kind, as_of, computed_at, payload FROM analytics_snapshots "
    "WHERE group_id = :g AND kind = :k ORDER BY snapshot_id DESC LIMIT 1"
)


async def latest_snapshot(reader: Reader, group_id: str, kind: str) -> Snapshot | None:
    """The newest snapshot of `kind`, or None when none was computed."""
    row = await reader.first(LATEST, {"g": group_id, "k": kind})
    if row is None:
        return None
    return Snapshot(
        row.kind, _time(row.as_of), _time(row.computed_at), json.loads(str(row.payload))
    )


def _time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _lifecycle(
    con: BaseBackend,
    wh: Warehouse,
    purchases: ir.Table,
    engine: Engine,
    group_id: str,
    config: StageConfig,
    t_end: datetime,
    write_stages: bool,
) -> dict[str, Any]:
    max_k = max(STAGE_MAX_K, config.knee or 0)
    counts = to_pandas(
        con, retention_counts(purchases, config.window_days, max_k, t_end, distinct=True)
    )
    curve = retention_rows(counts, max_k)
    found = find_knee(curve, "jump", config.min_support)
    knee = config.knee or found.k
    payload: dict[str, Any] = {
        "as_of": t_end.isoformat(),
        "window_days": config.window_days,
        "curve": [r.to_json() for r in curve],
        "knee": knee,
        "knee_source": "given" if config.knee else "data",
        "knee_evidence": found.to_json(),
        "stages": [],
        "transitions": None,
    }
    if knee is None:
        return payload
    staged = StageConfig(
        knee=knee,
        at_risk_days=config.at_risk_days,
        lapsed_days=config.lapsed_days,
        window_days=config.window_days,
        max_k=config.max_k,
        min_support=config.min_support,
    )
    report = stages_report(con, purchases, wh.members(), staged, t_end, 1, distinct=True)
    if write_stages:
        write_member_stages(engine, group_id, report.members)
    payload["stages"] = report.payload["stages"]
    payload["config"] = report.payload["config"]
    moves = report.payload["transitions"]
    payload["transitions"] = moves[-1] if moves else None
    return payload


def _rfm(
    con: BaseBackend,
    purchases: ir.Table,
    t_end: datetime,
    stages: StageConfig,
    engine: Engine,
    group_id: str,
) -> dict[str, Any]:
    # recency on the lifecycle's edges, so r <= 2 is exactly the stages' "lapsed"
    edges = lifecycle_recency_days(stages.at_risk_days, stages.lapsed_days)
    config = RFMConfig(recency_days=edges)
    # scored once (three ranks over every member), then read by every query below
    with materialised(rfm_scores(rfm_values(purchases, t_end, distinct=True), config)) as scored:
        # each member's scores, so the page's counts open their members (segments.lists)
        write_member_rfm(
            engine, group_id, to_arrow(con, scored.select("member_id", "r", "f", "m", "segment"))
        )
        members = int(con.execute(scored.count()))
        layers = {
            axis: [
                {k: int(v) for k, v in rec.items()}
                for rec in to_pandas(con, layer_bounds(scored, short)).to_dict("records")
            ]
            for axis, short in AXES
        }
        segments = summary_json(to_pandas(con, segment_summary(scored)), members)
    return {
        "as_of": t_end.isoformat(),
        "members": members,
        "segments": segments,
        "layers": layers,
        "layering": config.layering,
        "recency_days": list(edges),
        "lapsed_days": stages.lapsed_days,
        "rules": rule_json(config),
    }


def _clv(
    con: BaseBackend, purchases: ir.Table, t_end: datetime, engine: Engine, group_id: str
) -> dict[str, Any]:
    """Each buyer's CLV over the next `CLV_HORIZON` weeks as of the data's end, written back
    to `member_clv`; when the fit cannot run (too few repeat buyers, no spend to fit) the
    group's rows are cleared, the tasks fall back to their own value, and the payload says
    why."""
    summary = to_pandas(con, clv_summary(purchases, t_end))
    result: CLVResult | None = None
    reason = None
    repeat = int(((summary["frequency"] > 0) & (summary["repeat_fen"] > 0)).sum())
    if repeat < MIN_REPEAT_BUYERS:
        reason = (
            f"Gamma-Gamma needs at least {MIN_REPEAT_BUYERS} repeat buyers who paid, found {repeat}"
        )
    else:
        try:  # a fit on little data may wander through overflows: judged by its result
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                result = fit_clv(summary, CLV_PERIOD_DAYS, CLV_HORIZON)
        except SiyuError as e:
            reason = str(e)
    if result is not None and result.clv_fen is None:
        reason = "the Gamma-Gamma fit did not run"
    elif result is not None and result.clv_fen is not None:
        finite = np.isfinite(result.expected_purchases).all() and np.isfinite(result.p_alive).all()
        if not finite or (result.clv_fen < 0).any():  # a degenerate fit: no usable values
            reason = "the fit gave no finite, non-negative values"
    written = write_member_clv(engine, group_id, None if reason else result)
    payload: dict[str, Any] = {
        "as_of": t_end.isoformat(),
        "period_days": CLV_PERIOD_DAYS,
        "horizon_periods": CLV_HORIZON,
        "buyers": len(summary),
        "written": written,
    }
    if reason is not None:
        payload["not_written"] = reason
    if result is not None:
        payload["fit"] = result.to_json()
    return payload


def _sales(con: BaseBackend, wh: Warehouse, purchases: ir.Table, t_end: datetime) -> dict[str, Any]:
    # the purchases are materialised already: this is a filter over them
    facts = kpi_exprs.order_facts(purchases, t_end, None, ("channel",), distinct=True)
    first_month = _month_of(t_end) - TREND_MONTHS + 1
    recent = facts.filter(facts.month >= first_month)
    by_channel = to_pandas(
        con,
        recent.group_by(["month", "channel"]).aggregate(
            orders=recent.count().cast("int64"),
            sales_fen=recent.amount_fen.sum().cast("int64"),
            buyers=recent.member_id.nunique().cast("int64"),
        ),
    )
    monthly = to_pandas(
        con,
        recent.group_by("month").aggregate(
            orders=recent.count().cast("int64"),
            sales_fen=recent.amount_fen.sum().cast("int64"),
            buyers=recent.member_id.nunique().cast("int64"),
        ),
    )
    ends = month_ends(t_end, TREND_MONTHS - 1)
    active_at = dict(zip(ends, _active_members(con, facts, ends), strict=True))
    members = wh.members()
    members = members.filter(members.registered_at <= ibis.timestamp(t_end))
    joined = to_pandas(
        con,
        members.group_by(month=kpi_exprs.month_index(members.registered_at)).aggregate(
            n=members.count().cast("int64")
        ),
    )
    registered = {int(r.month): int(r.n) for r in joined.itertuples()}
    months = list(range(first_month, first_month + TREND_MONTHS))
    before = sum(n for m, n in registered.items() if m < first_month)
    cumulative = []
    for m in months:
        before += registered.get(m, 0)
        cumulative.append(before)
    per_month = {int(r.month): r for r in monthly.itertuples()}
    channels = sorted(set(by_channel["channel"].astype(str)))
    cells = {(int(r.month), str(r.channel)): r for r in by_channel.itertuples()}
    return {
        "as_of": t_end.isoformat(),
        "active_days": ACTIVE_DAYS,
        "months": [kpi_exprs.month_label(m) for m in months],
        "members": cumulative,
        "new_members": [registered.get(m, 0) for m in months],
        "active": [active_at[e] for e in ends],
        "buyers": [int(per_month[m].buyers) if m in per_month else 0 for m in months],
        "orders": [int(per_month[m].orders) if m in per_month else 0 for m in months],
        "sales_fen": [int(per_month[m].sales_fen) if m in per_month else 0 for m in months],
        "channels": {
            c: {
                "orders": [int(cells[(m, c)].orders) if (m, c) in cells else 0 for m in months],
                "sales_fen": [
                    int(cells[(m, c)].sales_fen) if (m, c) in cells else 0 for m in months
                ],
            }
            for c in channels
        },
    }


def _stores(
    con: BaseBackend, engine: Engine, group_id: str, purchases: ir.Table, t_end: datetime
) -> dict[str, Any]:
    facts = kpi_exprs.order_facts(purchases, t_end, None, ("store_id",), distinct=True)
    facts = facts.filter(facts.store_id.notnull())
    totals = to_pandas(
        con,
        facts.group_by("store_id").aggregate(
            orders=facts.count().cast("int64"),
            sales_fen=facts.amount_fen.sum().cast("int64"),
            buyers=facts.member_id.nunique().cast("int64"),
        ),
    )
    first_month = _month_of(t_end) - TREND_MONTHS + 1
    recent = facts.filter(facts.month >= first_month)
    monthly = to_pandas(
        con,
        recent.group_by(["store_id", "month"]).aggregate(
            sales_fen=recent.amount_fen.sum().cast("int64"), orders=recent.count().cast("int64")
        ),
    )
    months = list(range(first_month, first_month + TREND_MONTHS))
    cells = {(str(r.store_id), int(r.month)): r for r in monthly.itertuples()}
    per_store = {str(r.store_id): r for r in totals.itertuples()}
    with engine.connect() as conn:
        catalog = conn.execute(
            text(
                "SELECT store_id, brand_id, name, city, kind FROM stores WHERE group_id = :g"
                " AND kind <> 'warehouse' ORDER BY store_id"
            ),
            {"g": group_id},
        ).all()
        homes: dict[str, int] = {
            str(store): int(n)
            for store, n in conn.execute(
                text(
                    "SELECT home_store_id, COUNT(*) FROM members WHERE group_id = :g"
                    " AND status = 'active' AND home_store_id IS NOT NULL GROUP BY home_store_id"
                ),
                {"g": group_id},
            ).all()
        }
    stores = []
    for s in catalog:
        sid = str(s.store_id)
        row = per_store.get(sid)
        stores.append(
            {
                "store_id": sid,
                "brand_id": s.brand_id,
                "name": s.name,
                "city": s.city,
                "kind": s.kind,
                "orders": int(row.orders) if row is not None else 0,
                "sales_fen": int(row.sales_fen) if row is not None else 0,
                "buyers": int(row.buyers) if row is not None else 0,
                "home_members": int(homes.get(sid, 0)),
                "sales_by_month": [
                    int(cells[(sid, m)].sales_fen) if (sid, m) in cells else 0 for m in months
                ],
            }
        )
    stores.sort(key=lambda s: (-int(s["sales_fen"]), str(s["store_id"])))
    return {
        "as_of": t_end.isoformat(),
        "months": [kpi_exprs.month_label(m) for m in months],
        "stores": stores,
    }


def _guides(engine: Engine, group_id: str, kpis: dict[str, Any]) -> dict[str, Any]:
    with engine.connect() as conn:
        catalog = {
            str(r.guide_id): r
            for r in conn.execute(
                text(
                    "SELECT g.guide_id, g.store_id, g.alias, s.name AS store_name FROM guides g"
                    " LEFT JOIN stores s ON s.group_id = g.group_id AND s.store_id = g.store_id"
                    " WHERE g.group_id = :g"
                ),
                {"g": group_id},
            ).all()
        }
    ranking = kpis.get("guides", {}).get("top", [])
    funnels = {str(f["guide_id"]): f["steps"] for f in kpis.get("funnel_guides", [])}
    guides = []
    for rank, g in enumerate(ranking, start=1):
        gid = str(g["guide_id"])
        known = catalog.get(gid)
        guides.append(
            {
                "rank": rank,
                "guide_id": gid,
                "alias": None if known is None else known.alias,
                "store_id": None if known is None else known.store_id,
                "store_name": None if known is None else known.store_name,
                "orders": int(g["orders"]),
                "sales_fen": int(g["sales_fen"]),
                "members": int(g["members"]),
                "funnel": funnels.get(gid),
            }
        )
    overall = kpis.get("guides", {}).get("overall", {})
    return {"as_of": kpis["as_of"], "overall": overall, "guides": guides}


def _month_of(t: datetime) -> int:
    """`kpis.month_index` of a Python time."""
    return t.year * 12 + t.month - 1


def _active_members(con: BaseBackend, facts: ir.Table, ends: list[datetime]) -> list[int]:
    """Members with an order in the ACTIVE_DAYS up to each of `ends`: one pass over the
    orders, a flag per end and member (conditional aggregates, as stage transitions do),
    instead of every order crossed with every end and a distinct count per end."""
    span = ibis.interval(days=ACTIVE_DAYS)
    flags = {
        f"at_{i}": (
            (facts.ordered_at <= ibis.timestamp(end))
            & (facts.ordered_at > ibis.timestamp(end) - span)
        )
        .cast("int64")
        .max()
        for i, end in enumerate(ends)
    }
    per = facts.group_by("member_id").aggregate(**flags)
    counts = to_pandas(con, per.aggregate(**{k: per[k].sum() for k in flags}))
    return [int(counts[k].iloc[0] or 0) for k in flags]
