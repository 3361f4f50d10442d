"""The KPIs as `siyu analyze kpis` reports them: engine counts, rates divided in Python."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
from ibis import BaseBackend

from siyu.analytics import kpis
from siyu.analytics.engines import (
    Engine,
    engine_name,
    load_arrow,
    materialised,
    open_engine,
    to_pandas,
)
from siyu.analytics.warehouse import open_warehouse
from siyu.catalog.models import ONLINE_CHANNELS
from siyu.errors import ValidationError

DIMENSIONS = ("brand_id", "channel", "guide_id")


def kpis_from_warehouse(
    location: Path,
    group_id: str,
    as_of: datetime | None = None,
    since: datetime | None = None,
    max_months: int = 12,
    top_guides: int = 10,
    engine: Engine = "duckdb",
    con: BaseBackend | None = None,
    stores: pa.Table | None = None,
) -> dict[str, Any]:
    """Every KPI of one brand group's landed data, in (since, as_of]. `stores` (store_id,
    city: the catalog's, which the warehouse does not hold) adds the same-city share."""
    with open_engine(engine, con) as backend:
        wh = open_warehouse(backend, location, group_id)
        as_of = as_of or wh.data_end()
        cities = None if stores is None else load_arrow(backend, stores, "kpi_store_cities")
        payload = kpi_report(
            backend,
            wh.purchases(),
            wh.events(),
            wh.tables["identities"],
            wh.members(),
            as_of,
            since,
            max_months,
            top_guides,
            cities,
        )
    payload.update(warehouse=str(location), group=group_id)
    return payload


def kpi_report(
    backend: BaseBackend,
    orders: ir.Table,
    events: ir.Table | None,
    identities: ir.Table | None,
    members: ir.Table | None,
    as_of: datetime | None = None,
    since: datetime | None = None,
    max_months: int = 12,
    top_guides: int = 10,
    stores: ir.Table | None = None,
    distinct: bool = False,
) -> dict[str, Any]:
    """The KPIs of docs/analytics.md from analytics orders (and events, identities, members
    and store cities when given) as one JSON-ready dict. `distinct`: the orders are already
    one row per order (`orders.per_order`), as a full recompute materialises them once."""
    if max_months < 0:
        raise ValidationError("max_months", f"must be >= 0, got {max_months}")
    if top_guides < 0:
        raise ValidationError("top_guides", f"must be >= 0, got {top_guides}")
    for column in DIMENSIONS:
        if column not in orders.columns:
            raise ValidationError(
                column, f"column is missing; the KPIs need {', '.join(DIMENSIONS)} on orders"
            )
    t_end = as_of or _latest(backend, orders)
    if since is not None and since >= t_end:
        raise ValidationError("since", f"must be before the end of the data ({t_end}), got {since}")
    with_store = stores is not None and "store_id" in orders.columns
    dims = (*DIMENSIONS, "store_id") if with_store else DIMENSIONS
    # Every order KPI reads the window's orders, one row per order: materialised once (a
    # temp table on DuckDB, a cached DataFrame on Spark) unless they already are a table.
    # Cohorts, repurchase and cross-brand by month are sums over one small grid
    # (`kpis.month_grid`), computed here in Python.
    with ExitStack() as stack:
        facts = kpis.order_facts(orders, t_end, since, dims, distinct)
        if not distinct:  # a distinct table is already materialised: this is a filter
            facts = stack.enter_context(materialised(facts))

        def run(expr: ir.Table) -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = to_pandas(backend, expr).to_dict("records")
            return rows

        total = run(kpis.member_totals(facts))[0]
        grid = [{k: int(v) for k, v in r.items()} for r in run(kpis.month_grid(facts))]
        payload: dict[str, Any] = {
            "as_of": t_end.isoformat(),
            "since": None if since is None else since.isoformat(),
            "engine": engine_name(backend),
            "totals": _ints(total, ("orders", "sales_fen", "members")),
            "cohorts": _cohorts(grid, t_end, max_months),
            "repurchase": _repurchase(grid),
            "cross_brand": {
                "overall": _cross({"buyers": total["members"], **total}),
                "months": [
                    {"month": kpis.month_label(month), **_cross(r)}
                    for month, r in _by_month(grid).items()
                ],
            },
            "channels": [
                {
                    "channel": r["channel"],
                    "orders": int(r["orders"]),
                    "order_share": _rate(r["orders"], total["orders"]),
                    "sales_fen": int(r["sales_fen"]),
                    "sales_share": _rate(r["sales_fen"], total["sales_fen"]),
                    "members": int(r["members"]),
                    "member_share": _rate(r["members"], total["members"]),
                }
                for r in run(kpis.channel_share(facts))
            ],
            "guides": _guides(
                run(kpis.guide_sales(facts)), run(kpis.guide_ranking(facts)), top_guides
            ),
        }
        if events is not None:
            payload["funnel"] = _funnel(run(kpis.funnel(events, t_end, since)), "channel")
            if "guide_id" in events.columns:
                by_guide = run(kpis.funnel(events, t_end, since, by="guide_id"))
                payload["funnel_guides"] = _funnel(by_guide, "guide_id")
        if identities is not None:
            counts = _ints(
                run(kpis.non_member_enrollment(facts, identities, t_end))[0],
                ("till_orders", "non_member_orders", "non_member_buyers", "enrolled_buyers"),
            )
            payload["enrollment"] = {
                **counts,
                "non_member_order_share": _rate(counts["non_member_orders"], counts["till_orders"]),
                "enrollment_rate": _rate(counts["enrolled_buyers"], counts["non_member_buyers"]),
            }
        if stores is not None and with_store:
            # a member's home city is decided by orders before the window too
            history = (
                facts
                if since is None
                else kpis.order_facts(orders, t_end, None, ("store_id",), distinct)
            )
            city = _ints(
                run(kpis.same_city(facts, history, stores))[0],
                ("store_orders", "store_sales_fen", "same_city_orders", "same_city_sales_fen"),
            )
            payload["same_city"] = {
                **city,
                "order_share": _rate(city["same_city_orders"], city["store_orders"]),
                "sales_share": _rate(city["same_city_sales_fen"], city["store_sales_fen"]),
            }
        if identities is not None and members is not None:
            reach = run(kpis.online_reach(identities, members, sorted(ONLINE_CHANNELS)))[0]
            payload["online"] = {
                "members": int(reach["members"]),
                "online_members": int(reach["online_members"]),
                "online_rate": _rate(reach["online_members"], reach["members"]),
                "offline_members": int(reach["offline_members"]),
                "offline_online_members": int(reach["offline_online_members"]),
                "offline_online_rate": _rate(
                    reach["offline_online_members"], reach["offline_members"]
                ),
            }
        return payload


def _cohorts(grid: list[dict[str, int]], t_end: datetime, max_months: int) -> list[dict[str, Any]]:
    """Per cohort (month of the first order in the window): its size and how many of its
    members ordered 0 .. max_months months later (every member is active in its first
    month, so month 0 is the size)."""
    last = t_end.year * 12 + t_end.month - 1
    active_by: dict[int, dict[int, int]] = {}
    for r in grid:
        since = r["month"] - r["first_month"]
        if since <= max_months:
            active_by.setdefault(r["first_month"], {})[since] = r["buyers"]
    out = []
    for cohort in sorted(active_by):
        size = active_by[cohort][0]
        # months the data has seen for this cohort (a zero there is a real zero)
        active = [active_by[cohort].get(m, 0) for m in range(min(max_months, last - cohort) + 1)]
        out.append(
            {
                "cohort": kpis.month_label(cohort),
                "members": size,
                "active": active,
                "rates": [_rate(a, size) for a in active],
            }
        )
    return out


def _by_month(grid: list[dict[str, int]]) -> dict[int, dict[str, int]]:
    """Per month, in order: buyers, repeat_buyers, returning_buyers (ordered that month and
    in an earlier month of the window) and cross_brand_buyers."""
    months: dict[int, dict[str, int]] = {}
    for r in grid:
        m = months.setdefault(
            r["month"],
            {"buyers": 0, "repeat_buyers": 0, "returning_buyers": 0, "cross_brand_buyers": 0},
        )
        m["buyers"] += r["buyers"]
        m["repeat_buyers"] += r["repeat_buyers"]
        m["cross_brand_buyers"] += r["cross_brand_buyers"]
        if r["first_month"] < r["month"]:
            m["returning_buyers"] += r["buyers"]
    return dict(sorted(months.items()))


def _repurchase(grid: list[dict[str, int]]) -> list[dict[str, Any]]:
    return [
        {
            "month": kpis.month_label(month),
            "buyers": r["buyers"],
            "repeat_buyers": r["repeat_buyers"],
            "repeat_rate": _rate(r["repeat_buyers"], r["buyers"]),
            "returning_buyers": r["returning_buyers"],
            "returning_rate": _rate(r["returning_buyers"], r["buyers"]),
        }
        for month, r in _by_month(grid).items()
    ]


def _cross(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "buyers": int(r["buyers"]),
        "cross_brand_buyers": int(r["cross_brand_buyers"] or 0),
        "rate": _rate(r["cross_brand_buyers"] or 0, r["buyers"]),
    }


def funnel_observed(steps: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a channel's funnel was seen at every step. A marketplace (Tmall, JD) hands
    a brand its orders, never its shoppers' browsing and carts: with those steps missing
    a funnel would only redraw the orders, so none is drawn."""
    return bool(steps) and all(int(s["members"]) > 0 for s in steps)


def _funnel(rows: list[dict[str, Any]], by: str) -> list[dict[str, Any]]:
    per: dict[str, dict[str, dict[str, int]]] = {}
    for r in rows:
        per.setdefault(r[by], {})[r["type"]] = {
            "events": int(r["events"]),
            "members": int(r["members"]),
        }
    out = []
    for key in sorted(per):
        steps: list[dict[str, Any]] = []
        before: int | None = None
        for step in kpis.FUNNEL:
            got = per[key].get(step, {"events": 0, "members": 0})
            conversion = None if before is None else _rate(got["members"], before)
            steps.append({"step": step, **got, "conversion": conversion})
            before = got["members"]
        out.append({by: key, "steps": steps})
    return out


def _guides(
    months: list[dict[str, Any]], ranking: list[dict[str, Any]], top: int
) -> dict[str, Any]:
    keys = ("orders", "sales_fen", "guide_orders", "guide_sales_fen")
    overall = {k: sum(int(m[k]) for m in months) for k in keys}
    return {
        "overall": {
            **overall,
            "sales_share": _rate(overall["guide_sales_fen"], overall["sales_fen"]),
        },
        "months": [
            {
                "month": kpis.month_label(int(m["month"])),
                **{k: int(m[k]) for k in keys},
                "sales_share": _rate(m["guide_sales_fen"], m["sales_fen"]),
            }
            for m in months
        ],
        "top": [
            {
                "guide_id": g["guide_id"],
                "orders": int(g["orders"]),
                "sales_fen": int(g["sales_fen"]),
                "members": int(g["members"]),
            }
            for g in ranking[:top]
        ],
    }


def _ints(row: dict[str, Any], keys: tuple[str, ...]) -> dict[str, int]:
    """`keys` of a one-row aggregate as ints (a sum over no rows is null: 0)."""
    return {k: int(row[k] or 0) for k in keys}


def _rate(part: Any, whole: Any) -> float | None:
    return round(int(part) / int(whole), 6) if whole else None


def _latest(backend: BaseBackend, orders: ir.Table) -> datetime:
    latest = backend.execute(orders.ordered_at.max())
    if latest is None or pd.isna(latest):
        raise ValidationError("orders", "has no rows to analyse")
    end: datetime = pd.Timestamp(latest).to_pydatetime()
    return end
