"""`siyu analyze`: member analytics on an orders file (retention, RFM, CLV); the
warehouse-fed commands (stages, snapshot, kpis) are in `analyze_warehouse`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from siyu.cli.common import JsonOption, emit_json, errors, fail, out
from siyu.errors import SiyuError

if TYPE_CHECKING:
    from siyu.analytics.engines import Engine

app = typer.Typer(
    help="Member analytics on an orders file (no database): retention, RFM, CLV.",
    no_args_is_help=True,
)

OrdersOption = Annotated[
    Path,
    typer.Option("--orders", help="CSV or Parquet: order_id, member_id, ordered_at, amount_fen."),
]
EngineOption = Annotated[
    str, typer.Option(help="duckdb (default) or spark (needs the spark extra).")
]
AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", help="End of the data (ISO date or time; default: last order)."),
]


def engine_named(name: str) -> Engine:
    if name == "duckdb":
        return "duckdb"
    if name == "spark":
        return "spark"
    fail(SiyuError(f"engine: must be duckdb or spark, got {name!r}"))
    raise AssertionError  # fail exits


def analysis_end(text: str | None) -> datetime | None:
    from siyu.analytics.orders import parse_as_of

    with errors():
        return None if text is None else parse_as_of(text)
    return None


@app.command("retention")
def analyze_retention(
    orders: OrdersOption,
    window_days: Annotated[int, typer.Option(help="W: a next order within W days retains.")],
    max_k: Annotated[int, typer.Option(help="Report k = 1..N orders.")] = 10,
    as_of: AsOfOption = None,
    by: Annotated[
        list[str] | None,
        typer.Option(help="Break down by a column of the first order, or cohort_month (repeat)."),
    ] = None,
    knee_method: Annotated[str, typer.Option(help="jump (default) or kneedle.")] = "jump",
    min_support: Annotated[int, typer.Option(help="Eligible members a point needs to count.")] = 30,
    engine: EngineOption = "duckdb",
    as_json: JsonOption = False,
) -> None:
    """Retention by order count (会员四次): rate_k, its 95% interval, and the knee."""
    from siyu.analytics.render import print_retention
    from siyu.analytics.service import retention_report

    if knee_method not in ("jump", "kneedle"):
        fail(SiyuError(f"knee-method: must be jump or kneedle, got {knee_method!r}"))
    with errors():
        report = retention_report(
            orders,
            window_days,
            max_k,
            analysis_end(as_of),
            tuple(by or ()),
            "kneedle" if knee_method == "kneedle" else "jump",
            min_support,
            engine_named(engine),
        )
    if as_json:
        emit_json(report.payload)
    else:
        print_retention(out, report.rows, report.payload)


@app.command("rfm")
def analyze_rfm(
    orders: OrdersOption,
    as_of: AsOfOption = None,
    layering: Annotated[
        str,
        typer.Option(
            help="auto (recency in days, frequency and money by share of members unless "
            "ties dominate), quantile or threshold."
        ),
    ] = "auto",
    members_out: Annotated[
        Path | None, typer.Option("--out", help="Write every member's scores (.csv/.parquet).")
    ] = None,
    engine: EngineOption = "duckdb",
    as_json: JsonOption = False,
) -> None:
    """RFM scores 1-5 and value layers: vip, regular, develop, win_back, dormant."""
    from siyu.analytics.render import print_rfm
    from siyu.analytics.rfm import LAYERINGS, RFMConfig
    from siyu.analytics.service import rfm_report

    if layering not in LAYERINGS:
        fail(SiyuError(f"layering: must be one of {', '.join(LAYERINGS)}, got {layering!r}"))
    with errors():
        config = RFMConfig(layering=layering)  # type: ignore[arg-type]
        payload = rfm_report(orders, analysis_end(as_of), config, members_out, engine_named(engine))
    if as_json:
        emit_json(payload)
    else:
        print_rfm(out, payload)


@app.command("clv")
def analyze_clv(
    summary: Annotated[
        Path | None,
        typer.Option(help="CSV: frequency,recency,T (or x,t_x,T), optional zbar/monetary_value."),
    ] = None,
    orders: Annotated[
        Path | None, typer.Option(help="Or an orders file: the summary is computed from it.")
    ] = None,
    period_days: Annotated[int, typer.Option(help="Days per period (orders only).")] = 7,
    horizon: Annotated[int, typer.Option(help="Periods to predict.")] = 52,
    as_of: AsOfOption = None,
    members_out: Annotated[
        Path | None, typer.Option("--out", help="Per-member predictions, CSV (orders only).")
    ] = None,
    engine: EngineOption = "duckdb",
    as_json: JsonOption = False,
) -> None:
    """CLV: BG/NBD (how many purchases) and Gamma-Gamma (worth how much)."""
    from siyu.analytics.render import print_clv
    from siyu.analytics.service import clv_from_orders, clv_from_summary, write_members

    if (summary is None) == (orders is None):
        fail(SiyuError("summary/orders: give exactly one of --summary and --orders"))
    with errors():
        if summary is not None:
            payload = clv_from_summary(summary, horizon)
        else:
            assert orders is not None
            result = clv_from_orders(
                orders, period_days, horizon, analysis_end(as_of), engine=engine_named(engine)
            )
            payload = result.to_json()
            if members_out is not None:
                write_members(result.members(), members_out)
                payload["out"] = str(members_out)
    if as_json:
        emit_json(payload)
    else:
        print_clv(out, payload)
