"""`siyu warehouse`: land the store's facts in the analytics warehouse, and its status."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from siyu.cli.common import (
    GroupOption,
    JsonOption,
    WarehouseOption,
    emit_json,
    errors,
    fail,
    load_settings,
    open_store,
    out,
    progress_bars,
)
from siyu.config import Settings
from siyu.errors import SiyuError

app = typer.Typer(
    help="The analytics warehouse: land the store's facts (DuckDB file or Parquet), status.",
    no_args_is_help=True,
)


def _warehouse_path(fmt: str, path: Path | None, settings: Settings) -> Path:
    if path is not None:
        return path
    if fmt == "parquet":
        fail(SiyuError("out: --format parquet needs --out DIR (a directory of Parquet files)"))
    return Path(settings.warehouse)


@app.command("land")
def warehouse_land(
    fmt: Annotated[
        str, typer.Option("--format", help="duckdb (one file, default) or parquet (for Spark).")
    ] = "duckdb",
    out_path: Annotated[
        Path | None,
        typer.Option("--out", help="The DuckDB file (default SIYU_WAREHOUSE) or Parquet DIR."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Compare and land only days from this date on (YYYY-MM-DD)."),
    ] = None,
    full: Annotated[bool, typer.Option(help="Land every day and snapshot again.")] = False,
    table: Annotated[
        list[str] | None, typer.Option(help="Land only this table (repeat; default: all).")
    ] = None,
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """Copy the store's orders, lines, refunds, events, identities and members (no personal
    data) into the warehouse. Incremental and idempotent: only days whose rows changed."""
    from datetime import date

    from siyu.analytics.landing import land
    from siyu.analytics.render import print_landing
    from siyu.errors import ValidationError
    from siyu.store.migrate import upgrade

    settings = load_settings()
    target = _warehouse_path(fmt, out_path, settings)
    with open_store(settings.database_url) as engine, errors():
        try:
            since_day = None if since is None else date.fromisoformat(since)
        except ValueError:
            raise ValidationError("since", f"must be a date YYYY-MM-DD, got {since!r}") from None
        upgrade(engine)
        with progress_bars() as progress:

            def bar(name: str, total: int) -> Callable[[int], None]:
                task = progress.add_task(name, total=total)
                return lambda rows: progress.advance(task, rows)

            report = land(
                engine,
                group or settings.group_id,
                target,
                fmt,
                since_day,
                full,
                progress=bar,
                tables=table or None,
            )
    if as_json:
        emit_json(report.to_json())
    else:
        print_landing(out, report.to_json())
        out.print(f"{report.rows:,} rows landed in {report.seconds:.2f} s")


@app.command("status")
def warehouse_status_cmd(location: WarehouseOption = None, group: GroupOption = None) -> None:
    """What the warehouse holds: rows and days per table, and the last landing run."""
    from siyu.analytics.warehouse import warehouse_status

    settings = load_settings()
    with errors():
        payload = warehouse_status(location or Path(settings.warehouse), group or settings.group_id)
    emit_json(payload)
