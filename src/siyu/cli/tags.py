"""`siyu tags`: define tags and set manual ones by hand, as HQ (the operator holds the
store), and refresh the automatic ones. Thin over `segments.tags` and
`segments.automatic`; every write keeps history, set by `cli` (by `system` for a refresh)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from siyu.cli.analyze import AsOfOption, EngineOption, analysis_end, engine_named
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

app = typer.Typer(help="Tags: define them, set manual ones on members.", no_args_is_help=True)
BY = "cli"  # who a change from the command line is by


def _tag(t: Any) -> dict[str, Any]:
    return {**vars(t), "created_at": str(t.created_at), "updated_at": str(t.updated_at)}


@app.command("list")
def list_cmd(
    archived: Annotated[bool, typer.Option(help="Include archived tags.")] = False,
    group: GroupOption = None,
) -> None:
    """The brand group's tags with their member counts, one JSON object per line."""
    from siyu.segments.tags import list_tags

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine, engine.connect() as conn:
        for found in list_tags(conn, group or settings.group_id, archived):
            emit_json(_tag(found))


@app.command("define")
def define_cmd(
    slug: Annotated[str, typer.Argument(help="Lower case, digits, _ . - (up to 64).")],
    name_zh: Annotated[str, typer.Option("--name-zh", help="The Chinese label.")],
    name_en: Annotated[str, typer.Option("--name-en", help="The English label.")],
    kind: Annotated[str, typer.Option(help="manual, imported or automatic.")] = "manual",
    refresh: Annotated[
        str | None, typer.Option(help="nightly, hourly, manual or on_import.")
    ] = None,
    definition: Annotated[
        str | None, typer.Option(help="JSON: an automatic tag's rule, an imported tag's source.")
    ] = None,
    owner: Annotated[str, typer.Option(help="Who owns it: a role, user or key id.")] = "hq",
    group: GroupOption = None,
) -> None:
    """Define a tag."""
    from siyu.errors import ValidationError
    from siyu.segments.tags import define_tag

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        try:
            parsed = None if definition is None else json.loads(definition)
        except json.JSONDecodeError:
            raise ValidationError("definition", "a JSON object") from None
        with engine.begin() as conn:
            made = define_tag(
                conn,
                group or settings.group_id,
                slug,
                name_zh=name_zh,
                name_en=name_en,
                kind=kind,
                owner=owner,
                refresh=refresh,
                definition=parsed,
            )
    emit_json(_tag(made))


@app.command("show")
def show_cmd(
    slug: str,
    members: Annotated[int, typer.Option(help="List up to this many members.")] = 20,
    group: GroupOption = None,
) -> None:
    """A tag, its first members and its latest changes."""
    from siyu.segments.tags import get_tag, history, tag_members

    settings = load_settings()
    group_id = group or settings.group_id
    with errors(), open_store(settings.database_url) as engine, engine.connect() as conn:
        found = get_tag(conn, group_id, slug)
        _, page, _ = tag_members(conn, group_id, slug, limit=max(1, members))
        changes = history(conn, group_id, slug=slug, limit=20)
    emit_json(
        {
            **_tag(found),
            "holders": [{**vars(h), "set_at": str(h.set_at)} for h in page],
            "history": [{**vars(c), "at": str(c.at)} for c in changes],
        }
    )


@app.command("set")
def set_cmd(
    member_id: int,
    slug: str,
    value: Annotated[str | None, typer.Option(help="An optional value (a band, a label).")] = None,
    group: GroupOption = None,
) -> None:
    """Give a member a manual tag (a merged member's survivor gets it); a no-op when the
    member holds it with that value already."""
    from siyu.segments.tags import current_member, set_member_tag

    settings = load_settings()
    group_id = group or settings.group_id
    with errors(), open_store(settings.database_url) as engine, engine.begin() as conn:
        target = current_member(conn, group_id, member_id)
        change = set_member_tag(conn, group_id, slug, target, BY, value)
    out.print(f"member {target}: {slug} {change}")


@app.command("unset")
def unset_cmd(member_id: int, slug: str, group: GroupOption = None) -> None:
    """Take a manual tag from a member; a no-op when it does not hold it."""
    from siyu.segments.tags import current_member, unset_member_tag

    settings = load_settings()
    group_id = group or settings.group_id
    with errors(), open_store(settings.database_url) as engine, engine.begin() as conn:
        target = current_member(conn, group_id, member_id)
        gone = unset_member_tag(conn, group_id, slug, target, BY)
    out.print(f"member {target}: {slug} {'leave' if gone else 'none'}")


@app.command("refresh")
def refresh_cmd(
    location: WarehouseOption = None,
    only: Annotated[
        list[str] | None, typer.Option(help="Refresh only this automatic tag (repeat).")
    ] = None,
    as_of: AsOfOption = None,
    engine: EngineOption = "duckdb",
    group: GroupOption = None,
    as_json: JsonOption = False,
) -> None:
    """Compute the automatic tags (docs/segments.md) from the warehouse and the store's
    written-back results, and write each one's members back with history; one line per
    tag as it is written. Run after `siyu analyze snapshot` (stage, RFM and CLV tags copy
    what it wrote)."""
    from siyu.segments.automatic import TagRefresh, refresh_from_location
    from siyu.store.migrate import upgrade

    settings = load_settings()
    end = analysis_end(as_of)

    def line(tag: TagRefresh) -> None:
        if as_json:
            return
        if tag.skipped:
            out.print(f"{tag.slug}: skipped ({tag.skipped})")
            return
        out.print(
            f"{tag.slug}: {tag.size:,} members, +{tag.entered:,} -{tag.left:,} "
            f"~{tag.changed:,} ({tag.compute_seconds:.2f} s + {tag.write_seconds:.2f} s)"
        )

    with errors(), open_store(settings.database_url) as store:
        upgrade(store)
        report = refresh_from_location(
            store,
            location or Path(settings.warehouse),
            group or settings.group_id,
            end,
            line,
            only,
            engine_named(engine),
        )
    if as_json:
        emit_json(report.to_json())
    else:
        out.print(
            f"{len(report.tags)} automatic tags as of {report.as_of} in {report.seconds:.2f} s"
        )
