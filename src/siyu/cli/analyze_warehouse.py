"""`siyu analyze stages|snapshot|kpis`: analytics read from the warehouse, whose results
go back to the store (member stages, the console's snapshots)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from siyu.cli.analyze import AsOfOption, EngineOption, analysis_end, app, engine_named
from siyu.cli.common import (
    GroupOption,
    JsonOption,
    WarehouseOption,
    emit_json,
    errors,
    load_settings,
    open_store,
    out,
)


@app.command("stages")
def analyze_stages(
    orders: Annotated[
        Path | None,
        typer.Option(help="An orders file instead of the warehouse (buyers only, no write-back)."),
    ] = None,
    location: WarehouseOption = None,
    knee: Annotated[
        int | None, typer.Option(help="Order count from which members stay (default: found).")
    ] = None,
    at_risk_days: Annotated[int, typer.Option(help="At risk after this many silent days.")] = 60,
    lapsed_days: Annotated[int, typer.Option(help="Lapsed after this many silent days.")] = 120,
    window_days: Annotated[
        int, typer.Option(help="W of the retention curve the knee is found on.")
    ] = 120,
    min_support: Annotated[int, typer.Option(help="Eligible members a point needs to count.")] = 30,
    months: Annotated[
        int, typer.Option(help="Month-over-month transition matrices to report.")
    ] = 1,
    as_of: AsOfOption = None,
    write: Annotated[
        bool, typer.Option(help="Write the stages to the store's member_stages (warehouse only).")
    ] = True,
    members_out: Annotated[
        Path | None, typer.Option("--out", help="Write every member's stage (.csv/.parquet).")
    ] = None,
    group: GroupOption = None,
    engine: EngineOption = "duckdb",
    as_json: JsonOption = False,
) -> None:
    """Lifecycle stages from the knee (new_1 .. loyal, at_risk, lapsed, prospect) and the
    month-over-month transition matrix; written back to the store for serving."""
    from siyu.analytics.lifecycle import (
        stages_from_orders,
        stages_from_warehouse,
        write_member_stages,
        write_stages_file,
    )
    from siyu.analytics.render import print_stages
    from siyu.analytics.stages import StageConfig
    from siyu.store.migrate import upgrade

    settings = load_settings()
    group_id = group or settings.group_id
    with errors():
        config = StageConfig(
            knee=knee,
            at_risk_days=at_risk_days,
            lapsed_days=lapsed_days,
            window_days=window_days,
            min_support=min_support,
        )
        end = analysis_end(as_of)
        if orders is not None:
            report = stages_from_orders(orders, config, end, months, engine_named(engine))
        else:
            where = location or Path(settings.warehouse)
            report = stages_from_warehouse(
                where, group_id, config, end, months, engine_named(engine)
            )
            if write:
                with open_store(settings.database_url) as store:
                    upgrade(store)
                    report.payload["written"] = write_member_stages(store, group_id, report.members)
        if members_out is not None:
            write_stages_file(report.members, members_out)
            report.payload["out"] = str(members_out)
    if as_json:
        emit_json(report.payload)
    else:
        print_stages(out, report.payload)


@app.command("snapshot")
def analyze_snapshot(
    location: WarehouseOption = None,
    land_first: Annotated[
        bool,
        typer.Option(
            "--land/--no-land", help="Land what changed in the store first (DuckDB file only)."
        ),
    ] = True,
    knee: Annotated[
        int | None, typer.Option(help="Stage from this knee instead of the data's.")
    ] = None,
    window_days: Annotated[int, typer.Option(help="Retention window W in days.")] = 120,
    write_stages: Annotated[
        bool, typer.Option(help="Write every member's stage to member_stages too.")
    ] = True,
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """The console's numbers: KPIs, retention and stages, RFM, sales, stores and guides
    computed from the warehouse and stored in the store (analytics_snapshots), so pages
    never query the warehouse. Run after each landing (e.g. nightly)."""
    from siyu.analytics.landing import land
    from siyu.analytics.snapshot import compute_snapshots, save_snapshots
    from siyu.analytics.stages import StageConfig
    from siyu.store.migrate import upgrade

    settings = load_settings()
    target = location or Path(settings.warehouse)
    group_id = group or settings.group_id
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
        if land_first and not target.is_dir():
            land(engine, group_id, target)
        config = StageConfig(knee=knee, window_days=window_days)
        payloads = compute_snapshots(engine, group_id, target, config, write_stages)
        save_snapshots(engine, group_id, payloads)
    summary = {
        "group": group_id,
        "warehouse": str(target),
        "kinds": sorted(payloads),
        "as_of": payloads["kpis"]["as_of"],
        "knee": payloads["lifecycle"]["knee"],
    }
    if as_json:
        emit_json(summary)
    else:
        out.print(
            f"snapshot of {group_id} as of {summary['as_of']}: {', '.join(summary['kinds'])}"
            f" (knee {summary['knee']}); the console shows it now"
        )


@app.command("kpis")
def analyze_kpis(
    location: WarehouseOption = None,
    as_of: AsOfOption = None,
    since: Annotated[
        str | None, typer.Option(help="Count facts after this time only (ISO date or time).")
    ] = None,
    max_months: Annotated[int, typer.Option(help="Months after the first order in cohorts.")] = 12,
    top_guides: Annotated[int, typer.Option(help="Guides listed by sales.")] = 10,
    group: GroupOption = None,
    engine: EngineOption = "duckdb",
    as_json: JsonOption = False,
) -> None:
    """KPIs from the warehouse: cohort retention, monthly repurchase, cross-brand rate,
    channel shares, funnel by channel and guide, guide share of sales, online reach,
    non-member enrollment, same-city share."""
    from siyu.analytics.kpi_service import kpis_from_warehouse
    from siyu.analytics.render import print_kpis
    from siyu.analytics.store_read import StoreReader

    settings = load_settings()
    with errors():
        # the stores' cities are catalog data the warehouse does not hold (same-city share)
        with open_store(settings.database_url) as store:
            stores = StoreReader(store, group or settings.group_id).store_cities()
        payload = kpis_from_warehouse(
            location or Path(settings.warehouse),
            group or settings.group_id,
            analysis_end(as_of),
            analysis_end(since),
            max_months,
            top_guides,
            engine_named(engine),
            stores=stores,
        )
    if as_json:
        emit_json(payload)
    else:
        print_kpis(out, payload)
