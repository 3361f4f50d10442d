"""`siyu scenes`: register WeChat's parameterised QR codes within its limits, list and
archive them, and read what each code brought and the star members who brought others.
Thin over `siyu.scenes.registry` and `siyu.scenes.report`; amounts in yuan, member ids
only (a star member is its id, never a name or phone)."""

from __future__ import annotations

from datetime import datetime
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
    yuan,
)
from siyu.errors import ValidationError

app = typer.Typer(
    help="QR scenes: WeChat codes (create, list, archive), what each brought, star members.",
    no_args_is_help=True,
)


@app.command("create")
def create_cmd(
    scene: Annotated[str, typer.Argument(help="WeChat's scene string (1-64 visible chars).")],
    kind: Annotated[str, typer.Option(help="permanent or temporary")],
    expires_at: Annotated[
        str | None,
        typer.Option(help="A temporary code's end (ISO, UTC unless it names a zone; <= 30 days)."),
    ] = None,
    store: Annotated[str | None, typer.Option(help="The store the code points at.")] = None,
    guide: Annotated[str | None, typer.Option(help="The shopping guide it points at.")] = None,
    campaign: Annotated[str | None, typer.Option(help="The campaign it belongs to.")] = None,
    poster: Annotated[str | None, typer.Option(help="The poster it is printed on.")] = None,
    counter: Annotated[str | None, typer.Option(help="The counter it stands at.")] = None,
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a code (a permanent one takes one of the group's 100,000 slots, for
    good); the same scene again with the same kind and targets answers the existing code."""
    from siyu.scenes.registry import create
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors():
        end = _when(expires_at, "--expires-at")
        with open_store(settings.database_url) as engine:
            upgrade(engine)
            made = create(
                engine,
                group or settings.group_id,
                scene,
                kind,
                expires_at=end,
                store_id=store,
                guide_id=guide,
                campaign=campaign,
                poster=poster,
                counter=counter,
            )
    if as_json:
        emit_json(made.as_dict())
    else:
        until = f", until {made.expires_at:%Y-%m-%d %H:%M} UTC" if made.expires_at else ""
        out.print(f"{made.scene}: {made.kind}{until}")


@app.command("list")
def list_cmd(
    campaign: Annotated[str | None, typer.Option(help="Only this campaign's codes.")] = None,
    archived: Annotated[bool, typer.Option(help="Archived codes too.")] = False,
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """Codes in scene order, with what they point at and the permanent slots used."""
    from siyu.scenes.models import TARGETS
    from siyu.scenes.registry import MAX_PERMANENT, list_scenes, permanent_used
    from siyu.store.migrate import upgrade

    settings = load_settings()
    group_id = group or settings.group_id
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
        found = list_scenes(engine, group_id, campaign=campaign, archived=archived, limit=100_000)
        with engine.connect() as conn:
            used = permanent_used(conn, group_id)
    if as_json:
        emit_json({"scenes": [s.as_dict() for s in found], "permanent_used": used})
        return
    if not found:
        out.print("No QR scenes.")
    else:
        table = Table(title="QR scenes")
        for column in ("scene", "kind", "expires", *TARGETS, "archived"):
            table.add_column(column, overflow="fold")
        for s in found:
            table.add_row(
                s.scene,
                s.kind,
                _day(s.expires_at),
                *(s.targets[t] or "" for t in TARGETS),
                _day(s.archived_at),
            )
        out.print(table)
    out.print(f"permanent codes used: {used:,} of {MAX_PERMANENT:,}")


@app.command("archive")
def archive_cmd(
    scene: Annotated[str, typer.Argument(help="The scene string.")],
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """Retire a code: it leaves the list; its later scans are recorded, flagged, and
    acquire no one (a permanent code's slot is not given back: WeChat never does)."""
    from siyu.scenes.registry import archive
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
        done = archive(engine, group or settings.group_id, scene)
    if as_json:
        emit_json(done.as_dict())
    else:
        out.print(f"{done.scene}: archived {done.archived_at:%Y-%m-%d %H:%M} UTC")


@app.command("report")
def report_cmd(
    knee: Annotated[
        int, typer.Option(help="Orders counted up to (the last column is 'knee or more').")
    ] = 4,
    campaign: Annotated[str | None, typer.Option(help="Only this campaign's codes.")] = None,
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """Per code: scans (flagged ones on dead codes), members acquired, how many reached
    each order count up to the knee, their revenue and CLV."""
    from siyu.scenes.report import scene_report
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        upgrade(engine)
        rows = scene_report(engine, group or settings.group_id, knee=knee, campaign=campaign)
    if as_json:
        emit_json({"knee": knee, "scenes": [r.as_dict(knee) for r in rows]})
        return
    if not rows:
        out.print("No QR scenes.")
        return
    table = Table(title=f"What each QR scene brought (orders up to {knee}+)")
    table.add_column("scene", overflow="fold")
    heads = ["scans", "flagged", "acquired"]
    heads += [
        f"{k}+ orders" if k == knee else f"{k} order{'s' if k > 1 else ''}"
        for k in range(1, knee + 1)
    ]
    heads += ["revenue (yuan)", "CLV (yuan)"]
    for head in heads:
        table.add_column(head, justify="right")
    for r in rows:
        table.add_row(
            r.scene,
            f"{r.scans:,}",
            f"{r.flagged:,}",
            f"{r.acquired:,}",
            *(f"{r.reached[k]:,}" for k in range(1, knee + 1)),
            yuan(r.revenue_fen),
            f"{yuan(r.clv_fen)} ({r.clv_members:,})" if r.clv_members else "",
        )
    out.print(table)


@app.command("stars")
def stars_cmd(
    limit: Annotated[int, typer.Option(help="How many, the most bringing first.")] = 100,
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """Star members (明星会员): ranked by the members their shared codes acquired, then by
    the scans that named them. Member ids only."""
    from siyu.scenes.report import star_members
    from siyu.store.migrate import upgrade

    settings = load_settings()
    with errors():
        if not 1 <= limit <= 10_000:
            raise ValidationError("--limit", f"from 1 to 10,000, got {limit}")
        with open_store(settings.database_url) as engine:
            upgrade(engine)
            found = star_members(engine, group or settings.group_id, limit)
    if as_json:
        emit_json({"stars": [vars(s) for s in found]})
    elif not found:
        out.print("No member has shared a code yet.")
    else:
        table = Table(title="Star members")
        for column in ("member_id", "brought", "scans"):
            table.add_column(column, justify="right")
        for s in found:
            table.add_row(str(s.member_id), f"{s.brought:,}", f"{s.scans:,}")
        out.print(table)


def _when(value: str | None, name: str) -> datetime | None:
    """An ISO date or time as given (naive: UTC, as the store keeps it), or None."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(name, "an ISO date or time, e.g. 2026-12-31T23:59:59") from None


def _day(value: datetime | None) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M}"
