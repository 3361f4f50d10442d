"""`siyu guides commission`: the guides' commission on the ledger (guides/commission_*.py).
`rules` shows or sets the rules, `accrue` and `release` are the jobs (safe to re-run),
`pay` pays a guide, `statement` prints a month's statement of a guide, a store or all."""

from __future__ import annotations

from datetime import datetime
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
    read_document,
    yuan,
)

app = typer.Typer(help="Guides' commission on the ledger.", no_args_is_help=True)
Month = Annotated[str, typer.Option("--month", help="The statement month, YYYY-MM.")]


def _when(value: str, name: str) -> datetime:
    from siyu.errors import ValidationError
    from siyu.store.times import as_stored

    try:
        return as_stored(datetime.fromisoformat(value))
    except ValueError:
        raise ValidationError(name, "an ISO date or time, e.g. 2025-03-01") from None


@app.command("rules")
def commission_rules(
    set_: Annotated[
        Path | None, typer.Option("--set", help="A JSON file of rules: a new version.")
    ] = None,
    group: GroupOption = None,
) -> None:
    """The commission rules in force as JSON; with --set, validate and store new ones first
    (a refusal names the field, exit 2, nothing stored)."""
    from siyu.guides.commission_rules import CommissionRules, save, stored
    from siyu.store.migrate import upgrade

    settings = load_settings()
    group_id = group or settings.group_id
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
        if set_ is not None:
            save(engine, group_id, read_document(set_, CommissionRules, "rules"), None)
        with engine.connect() as conn:
            version, rules = stored(conn, group_id)
    emit_json({"version": version, "rules": rules.model_dump(mode="json")})


@app.command("accrue")
def commission_accrue(
    since: Annotated[str, typer.Option(help="Orders placed from (ISO date or time).")],
    until: Annotated[str, typer.Option(help="... up to, not including.")],
    group: GroupOption = None,
) -> None:
    """Accrue the commission of the orders placed in [since, until) and claw back their
    refunds; posts nothing twice."""
    from siyu.guides.commission_accrual import accrue
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
        run = accrue(
            engine, group or settings.group_id, _when(since, "--since"), _when(until, "--until")
        )
    emit_json(vars(run))


@app.command("release")
def commission_release(
    at: Annotated[
        str | None, typer.Option(help="Release what matured by then (default now).")
    ] = None,
    group: GroupOption = None,
) -> None:
    """Make payable what has come out of its freeze; releases nothing early."""
    from siyu.guides.commission_accrual import release
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
        when = None if at is None else _when(at, "--at")
        emit_json(vars(release(engine, group or settings.group_id, when)))


@app.command("pay")
def commission_pay(
    guide: Annotated[str, typer.Argument(help="The guide.")],
    month: Month,
    group: GroupOption = None,
) -> None:
    """Pay the guide what is payable, settling the statement of --month (once)."""
    from siyu.guides.commission_accrual import pay
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
        paid = pay(engine, group or settings.group_id, guide, month)
    emit_json({"guide_id": guide, "month": month, "paid_fen": paid})


@app.command("statement")
def commission_statement(
    month: Month,
    guide: Annotated[str | None, typer.Option(help="One guide's statement.")] = None,
    store: Annotated[str | None, typer.Option(help="One store's guides.")] = None,
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """The month's statement: one line per posting, totals per guide (the sums of the
    lines), each account's balance at the month's end."""
    from siyu.guides.commission_statements import statement
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
        with engine.connect() as conn:
            found = statement(conn, group or settings.group_id, month, guide, store)
    if as_json:
        emit_json(
            {
                "month": month,
                "guide_id": guide,
                "store_id": store,
                "totals": vars(found.totals),
                "by_guide": {g: vars(t) for g, t in found.by_guide.items()},
                "lines": [
                    {**vars(x), "business_at": x.business_at.isoformat()} for x in found.lines
                ],
            }
        )
        return
    table = Table(title=f"Commission {month}")
    for head in ("guide", "accrued", "clawed back", "commission", "released", "paid", "payable"):
        table.add_column(head, justify="left" if head == "guide" else "right")
    for guide_id, t in sorted(found.by_guide.items()):
        table.add_row(
            guide_id,
            yuan(t.accrued_fen),
            yuan(t.clawed_back_fen),
            yuan(t.commission_fen),
            yuan(t.released_fen),
            yuan(t.paid_fen),
            yuan(t.closing["cm_payable"]),
        )
    out.print(table)
