"""`siyu guides programme stages|report`: HQ's programme for guides by stage (show it, or
put a new version from a JSON file) and the report of a period: every guide's focus
metrics of the stage in force, targets met or not, and the totals (issue #19). Thin over
guides.programme."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from siyu.cli.common import (
    GroupOption,
    JsonOption,
    emit_json,
    errors,
    load_settings,
    open_store,
    out,
    read_json,
)

app = typer.Typer(help="Guides' programme by stage: stages, report.", no_args_is_help=True)


@app.command("stages")
def stages_cmd(
    file: Annotated[
        Path | None,
        typer.Option("--file", help="A programme document (JSON) to put as the next version."),
    ] = None,
    group: GroupOption = None,
) -> None:
    """The programme in force, as JSON; with --file, store the file's as the next version
    first (a refusal names the field)."""
    from siyu.guides import programme
    from siyu.store.migrate import upgrade

    settings = load_settings()
    group_id = group or settings.group_id
    with errors():
        parsed = None if file is None else programme.parse(read_json(file))
        with open_store(settings.database_url) as engine:
            upgrade(engine)
            if parsed is not None:
                programme.save_programme(engine, group_id, parsed)
            with engine.connect() as conn:
                found = programme.current_programme(conn, group_id)
    emit_json({"version": found.version, "programme": found.programme.model_dump(mode="json")})


def _shown(value: int | None) -> str:
    return "-" if value is None else str(value)


@app.command("report")
def report_cmd(
    since: Annotated[str, typer.Option(help="First day or time of the period (ISO, UTC).")],
    until: Annotated[str, typer.Option(help="End of the period, not included (ISO, UTC).")],
    at: Annotated[str | None, typer.Option(help="Refunds as of (default now).")] = None,
    guide: Annotated[str | None, typer.Option(help="One guide only.")] = None,
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """Each guide's focus metrics of the stage in force for [since, until), by the
    programme version saved before its end, the targets met (yes/no), and the totals
    (attribute the period first: `siyu guides attribute`)."""
    from siyu.cli.guides import _when
    from siyu.guides.programme import programme_report

    settings = load_settings()
    with errors():
        start, end = _when(since, "since"), _when(until, "until")
        moment = None if at is None else _when(at, "at")
        with open_store(settings.database_url) as engine, engine.connect() as conn:
            report = programme_report(
                conn, group or settings.group_id, start, end, moment, guide_id=guide
            )
    stage = report.stage
    if as_json:
        emit_json(
            {
                "since": start.isoformat(),
                "until": end.isoformat(),
                "version": report.version,
                "stage": stage.model_dump(mode="json"),
                "guides": [
                    {
                        "guide_id": g.guide_id,
                        "store_id": g.store_id,
                        "spam_risk": g.spam_risk,
                        "met_all": g.met_all,
                        "metrics": [vars(m) for m in g.measured],
                    }
                    for g in report.guides
                ],
                "totals": [vars(t) for t in report.totals],
            }
        )
        return
    table = Table(title=f"{stage.code} {stage.name_en} (from {stage.starts_on}, v{report.version})")
    table.add_column("guide")
    table.add_column("store")
    for f in stage.focus:
        bounds = " ".join(
            s for s in (f.min is not None and f">={f.min}", f.max is not None and f"<={f.max}") if s
        )
        table.add_column(f"{f.metric} {bounds}".strip())
    table.add_column("all met")
    marks = {True: "yes", False: "no", None: ""}
    for g in report.guides:
        cells = [f"{_shown(m.value)} {marks[m.met]}".strip() for m in g.measured]
        table.add_row(g.guide_id, g.store_id, *cells, marks[g.met_all])
    table.add_row(
        "total",
        "",
        *(f"{_shown(t.value)} ({t.guides_met}/{t.guides} met)" for t in report.totals),
        "",
    )
    out.print(table)
