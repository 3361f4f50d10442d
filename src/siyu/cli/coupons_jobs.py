"""`siyu coupons expire|liability|run`: the coupons' periodic work and its report, added to
the `coupons` group (`siyu.cli.coupons`) when this module loads."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

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
    yuan,
)
from siyu.cli.coupons import app
from siyu.errors import ValidationError
from siyu.i18n import t

if TYPE_CHECKING:
    from siyu.coupons.liability import Liability

AtOption = Annotated[
    str | None,
    typer.Option("--at", help="An ISO date or time, UTC unless it names a zone (default: now)."),
]
LIABILITY_COLUMNS = ("issued", "redeemed", "returned", "expired", "outstanding")


@app.command("expire")
def expire_cmd(at: AtOption = None, group: GroupOption = None, as_json: JsonOption = False) -> None:
    """Coupons whose validity ended by --at become expired (safe to re-run)."""
    from siyu.coupons.expiry import expire
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors():
        when = _at(at)
        with open_store(settings.database_url) as engine:
            upgrade(engine)
            done = expire(engine, group or settings.group_id, when)
    if as_json:
        emit_json({"expired": done, "at": when})
    else:
        out.print(f"expired {done:,} coupons")


@app.command("liability")
def liability_cmd(
    at: AtOption = None, group: GroupOption = None, as_json: JsonOption = False
) -> None:
    """Per template as of --at: issued, redeemed, returned, expired and outstanding, with
    the outstanding coupons' face value and cost to the brand (from the events alone)."""
    from siyu.coupons.liability import liability
    from siyu.store.migrate import upgrade
    from siyu.store.times import stored_now

    settings = load_settings()
    with errors():
        when = _at(at) or stored_now()
        with open_store(settings.database_url) as engine:
            upgrade(engine)
            found = liability(engine, group or settings.group_id, when)
    if as_json:
        emit_json({"at": when, "templates": [row.as_dict() for row in found]})
    elif found:
        out.print(liability_table(found, when, settings.lang))
    else:
        out.print(t("coupons.no_events", settings.lang))


def liability_table(found: list[Liability], at: datetime, lang: str) -> Table:
    """One row per template, counts and yuan; a total row when there are several."""
    table = Table(title=t("coupons.liability", lang, at=f"{at:%Y-%m-%d %H:%M}"))
    table.add_column(t("coupons.col.code", lang))
    for name in (*LIABILITY_COLUMNS, "outstanding_face", "outstanding_cost"):
        table.add_column(t(f"coupons.col.{name}", lang), justify="right")

    def row(label: str, rows: list[Liability]) -> list[str]:
        counts = [f"{sum(getattr(r, c) for r in rows):,}" for c in LIABILITY_COLUMNS]
        face = yuan(sum(r.outstanding_face_fen for r in rows))
        cost = yuan(sum(r.outstanding_cost_fen for r in rows))
        return [label, *counts, face, cost]

    for one in found:
        table.add_row(*row(one.template_code, [one]))
    if len(found) > 1:
        table.add_section()
        table.add_row(*row(t("coupons.total", lang), found))
    return table


@app.command("run")
def run_cmd(group: GroupOption = None, as_json: JsonOption = False) -> None:
    """The nightly job: expire what is due, then issue the coupon packs of tier upgrades
    not given theirs yet (the last 30 days). Safe to re-run."""
    from siyu.coupons.expiry import expire
    from siyu.coupons.tier_packs import issue_tier_packs
    from siyu.store.migrate import upgrade

    settings = load_settings()
    group_id = group or settings.group_id
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
        expired = expire(engine, group_id)
        packs = issue_tier_packs(engine, group_id)
    if as_json:
        emit_json({"expired": expired, "tier_packs": packs})
        return
    out.print(f"expired {expired:,} coupons")
    out.print(
        f"tier packs: issued {packs['issued']:,}, refused {packs['refused']:,}, "
        f"no template {packs['no_template']:,}"
    )


def _at(value: str | None) -> datetime | None:
    """--at as a stored time (naive UTC), or None for now."""
    from siyu.store.times import as_stored

    if value is None:
        return None
    try:
        return as_stored(datetime.fromisoformat(value))
    except ValueError:
        raise ValidationError("--at", "an ISO date or time, e.g. 2026-12-31T23:59:59") from None
