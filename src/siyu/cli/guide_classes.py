"""`siyu guides classes rules|classify|list`: HQ's A/B/C class rules (show, or put a new
version from a JSON file), class a period's guides by them, and list the classes with
their metrics (issue #19). Thin over guides.classes."""

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
    yuan,
)

app = typer.Typer(help="Guides' A/B/C classes: rules, classify, list.", no_args_is_help=True)
Since = Annotated[str, typer.Option(help="First day or time of the period (ISO, UTC).")]
Until = Annotated[str, typer.Option(help="End of the period, not included (ISO, UTC).")]


@app.command("rules")
def rules_cmd(
    file: Annotated[
        Path | None,
        typer.Option("--file", help="A rules document (JSON) to put as the next version."),
    ] = None,
    group: GroupOption = None,
) -> None:
    """The class rules in force, as JSON; with --file, store the file's as the next
    version first (a refusal names the field)."""
    from siyu.guides import classes
    from siyu.store.migrate import upgrade

    settings = load_settings()
    group_id = group or settings.group_id
    with errors():
        parsed = None if file is None else classes.parse(read_json(file))
        with open_store(settings.database_url) as engine:
            upgrade(engine)
            if parsed is not None:
                classes.save_rules(engine, group_id, parsed)
            with engine.connect() as conn:
                found = classes.current_rules(conn, group_id)
    emit_json({"version": found.version, "rules": found.rules.model_dump(mode="json")})


@app.command("classify")
def classify_cmd(
    since: Since, until: Until, group: GroupOption = None, as_json: JsonOption = False
) -> None:
    """Class every guide for [since, until) by the rules in force, replacing the period's
    earlier classes (attribute the period first: `siyu guides attribute`)."""
    from siyu.cli.guides import _when
    from siyu.guides.classes import classify
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors():
        start, end = _when(since, "since"), _when(until, "until")
        with open_store(settings.database_url) as engine:
            upgrade(engine)
            done = classify(engine, group or settings.group_id, start, end)
    summary = {
        "since": start.isoformat(),
        "until": end.isoformat(),
        "rules_version": done.rules_version,
        "by_class": done.by_class,
        "spam_risk": done.flagged,
    }
    if as_json:
        emit_json(summary)
    else:
        parts = ", ".join(f"{c} {n}" for c, n in done.by_class.items())
        out.print(
            f"{start:%Y-%m-%d} .. {end:%Y-%m-%d}: {parts} (rules v{done.rules_version}); "
            f"{done.flagged} flagged spam_risk"
        )


@app.command("list")
def list_cmd(
    since: Annotated[str | None, typer.Option(help="With --until: that period's classes.")] = None,
    until: Annotated[str | None, typer.Option(help="End of the period (ISO, UTC).")] = None,
    guide: Annotated[str | None, typer.Option(help="One guide only.")] = None,
    history: Annotated[bool, typer.Option(help="Every period, latest first.")] = False,
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """Each guide's current class (its latest period), a period's, or the history, with
    the metrics it was decided on."""
    from siyu.cli.guides import _when
    from siyu.guides.classes import classes

    settings = load_settings()
    with errors():
        start = None if since is None else _when(since, "since")
        end = None if until is None else _when(until, "until")
        with open_store(settings.database_url) as engine, engine.connect() as conn:
            found = classes(
                conn, group or settings.group_id, start, end, guide_id=guide, history=history
            )
    if as_json:
        emit_json(
            [
                {
                    "guide_id": c.guide_id,
                    "store_id": c.store_id,
                    "class": c.guide_class,
                    "spam_risk": c.spam_risk,
                    "since": c.period_start.isoformat(),
                    "until": c.period_end.isoformat(),
                    "rules_version": c.rules_version,
                    "metrics": c.metrics,
                }
                for c in found
            ]
        )
        return
    table = Table(title="Guide classes")
    for name in ("guide", "store", "class", "period", "sales", "orders", "UV", "conv. bp", "flag"):
        table.add_column(name)
    for c in found:
        m = c.metrics
        table.add_row(
            c.guide_id,
            c.store_id,
            c.guide_class,
            f"{c.period_start:%Y-%m-%d}..{c.period_end:%Y-%m-%d}",
            yuan(int(m["sales_fen"])),
            str(m["orders"]),
            str(m["share_openers"]),
            "-" if m["conversion_bp"] is None else str(m["conversion_bp"]),
            "spam_risk" if c.spam_risk else "",
        )
    out.print(table)
