"""`siyu segments`: define segments from rule files, preview them on the warehouse, evaluate
them (members written back to the store), read their members and export them. Thin over
`segments.stored` and `segments.evaluate`; HQ's operator holds the store (changes are by
`cli`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from siyu.cli.analyze import AsOfOption, EngineOption, analysis_end, engine_named
from siyu.cli.common import (
    GroupOption,
    WarehouseOption,
    emit_json,
    errors,
    load_settings,
    open_store,
    out,
    progress_bars,
)

app = typer.Typer(
    help="Segments: rules kept under a slug, evaluated on the warehouse.", no_args_is_help=True
)
BY = "cli"
RuleOption = Annotated[
    str,
    typer.Option(
        "--rule", help="The rule document: a JSON file, or the JSON itself (docs/segments.md)."
    ),
]


def _rule(text: str) -> object:
    """A rule from a file path or from JSON text; a clear error naming `rule` otherwise."""
    from siyu.errors import ValidationError

    path = Path(text)
    raw = path.read_text(encoding="utf-8") if not text.lstrip().startswith("{") else text
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValidationError("rule", f"is not JSON ({exc.msg} at line {exc.lineno})") from None


def _segment(s: Any) -> dict[str, Any]:
    return {k: (str(v) if hasattr(v, "isoformat") else v) for k, v in vars(s).items()}


@contextmanager
def _warehouse(location: Path | None, engine: str, group_id: str) -> Iterator[tuple[Any, Any]]:
    from siyu.analytics.engines import open_engine
    from siyu.analytics.warehouse import open_warehouse

    settings = load_settings()
    with open_engine(engine_named(engine)) as backend:
        yield backend, open_warehouse(backend, location or Path(settings.warehouse), group_id)


@app.command("list")
def list_cmd(
    archived: Annotated[bool, typer.Option(help="Include archived segments.")] = False,
    group: GroupOption = None,
) -> None:
    """The brand group's segments with their last size, one JSON object per line."""
    from siyu.segments.stored import list_segments

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine, engine.connect() as conn:
        for found in list_segments(conn, group or settings.group_id, archived):
            emit_json(_segment(found))


@app.command("define")
def define_cmd(
    slug: Annotated[str, typer.Argument(help="a-z, 0-9, _ and - (up to 64).")],
    rule: RuleOption,
    name_zh: Annotated[str, typer.Option("--name-zh", help="The Chinese label.")],
    name_en: Annotated[str, typer.Option("--name-en", help="The English label.")],
    refresh: Annotated[str, typer.Option(help="nightly, hourly, manual or realtime.")] = "nightly",
    owner: Annotated[str, typer.Option(help="Who owns it: a role, user or key id.")] = "hq",
    group: GroupOption = None,
) -> None:
    """Define a segment (version 1)."""
    from siyu.segments.stored import define_segment

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine:
        doc = _rule(rule)
        with engine.begin() as conn:
            made = define_segment(
                conn,
                group or settings.group_id,
                slug,
                name_zh=name_zh,
                name_en=name_en,
                rule=doc,
                owner=owner,
                refresh=refresh,
            )
    emit_json(_segment(made))


@app.command("update")
def update_cmd(
    slug: str,
    rule: Annotated[str | None, typer.Option("--rule", help="A new rule: a new version.")] = None,
    name_zh: Annotated[str | None, typer.Option("--name-zh")] = None,
    name_en: Annotated[str | None, typer.Option("--name-en")] = None,
    refresh: Annotated[str | None, typer.Option()] = None,
    group: GroupOption = None,
) -> None:
    """Change a segment's labels or refresh; a different rule adds a version."""
    from siyu.segments.stored import update_segment

    settings = load_settings()
    fields: dict[str, Any] = {
        k: v
        for k, v in (("name_zh", name_zh), ("name_en", name_en), ("refresh", refresh))
        if v is not None
    }
    with errors(), open_store(settings.database_url) as engine:
        if rule is not None:
            fields["rule"] = _rule(rule)
        with engine.begin() as conn:
            changed = update_segment(conn, group or settings.group_id, slug, by=BY, **fields)
    emit_json(_segment(changed))


@app.command("archive")
def archive_cmd(slug: str, group: GroupOption = None) -> None:
    """Archive a segment (refused while a live segment nests it)."""
    from siyu.segments.stored import archive_segment

    settings = load_settings()
    with errors(), open_store(settings.database_url) as engine, engine.begin() as conn:
        emit_json(_segment(archive_segment(conn, group or settings.group_id, slug)))


@app.command("preview")
def preview_cmd(
    rule: RuleOption,
    sample: Annotated[int, typer.Option(help="Member ids to show (0 to 100).")] = 20,
    exact: Annotated[bool, typer.Option(help="Count everyone (past 1M: an estimate).")] = False,
    location: WarehouseOption = None,
    as_of: AsOfOption = None,
    engine: EngineOption = "duckdb",
    group: GroupOption = None,
) -> None:
    """A rule's size and first member ids on the warehouse now; writes nothing."""
    from siyu.segments.evaluate import preview_rule

    settings = load_settings()
    group_id = group or settings.group_id
    end = analysis_end(as_of)
    with errors(), open_store(settings.database_url) as store:
        doc = _rule(rule)
        with _warehouse(location, engine, group_id) as (backend, wh):
            found = preview_rule(store, backend, wh, doc, end, sample, exact)
    emit_json({**vars(found), "as_of": str(found.as_of)})


@app.command("evaluate")
def evaluate_cmd(
    slugs: Annotated[
        list[str] | None, typer.Argument(help="Segments to evaluate (default: every live one).")
    ] = None,
    location: WarehouseOption = None,
    as_of: AsOfOption = None,
    engine: EngineOption = "duckdb",
    group: GroupOption = None,
) -> None:
    """Evaluate segments on the warehouse and write their members back to the store
    (nested segments first); one JSON line per segment: size, entered, left, seconds."""
    from siyu.segments.evaluate import evaluate_segments

    settings = load_settings()
    group_id = group or settings.group_id
    end = analysis_end(as_of)
    with (
        errors(),
        open_store(settings.database_url) as store,
        _warehouse(location, engine, group_id) as (backend, wh),
        progress_bars() as bars,
    ):
        task = bars.add_task("segments", total=None)

        def moved(slug: str, i: int, n: int) -> None:
            bars.update(task, description=f"segment {slug}", completed=i, total=n)

        done = evaluate_segments(store, backend, wh, slugs or None, end, "manual", moved)
        bars.update(task, completed=len(done))
    for evaluation in done:
        emit_json({**vars(evaluation), "as_of": str(evaluation.as_of)})


@app.command("realtime")
def realtime_cmd(
    every: Annotated[
        float, typer.Option(help="Seconds between passes; 0 runs one pass and stops.")
    ] = 0,
    group: GroupOption = None,
) -> None:
    """Re-evaluate real-time segments for the members whose facts just arrived (or whose
    follow-up window just closed), from the store; one JSON line per segment and pass.
    With --every, runs until interrupted (Ctrl-C ends it between passes)."""
    import time

    from siyu.segments.realtime import run_realtime

    settings = load_settings()
    group_id = group or settings.group_id
    with errors(), open_store(settings.database_url) as store:
        try:
            while True:
                for done in run_realtime(store, group_id):
                    emit_json(vars(done))
                if every <= 0:
                    break
                time.sleep(every)
        except KeyboardInterrupt:
            out.print("stopped")


@app.command("show")
def show_cmd(
    slug: str,
    days: Annotated[int, typer.Option(help="Days of size history to show.")] = 30,
    group: GroupOption = None,
) -> None:
    """A segment, its versions and its size per day."""
    from siyu.segments.evaluate import size_history
    from siyu.segments.stored import get_segment, segment_versions_of

    settings = load_settings()
    group_id = group or settings.group_id
    with errors(), open_store(settings.database_url) as engine:
        with engine.connect() as conn:
            found = get_segment(conn, group_id, slug)
            versions = segment_versions_of(conn, group_id, slug)
        sizes = size_history(engine, group_id, slug, days)
    emit_json(
        {
            **_segment(found),
            "versions": [{**vars(v), "created_at": str(v.created_at)} for v in versions],
            "days": [{**vars(d), "day": str(d.day)} for d in sizes],
        }
    )


@app.command("export")
def export_cmd(
    slug: str,
    to: Annotated[Path, typer.Option("--out", help="The CSV file to write.")],
    group: GroupOption = None,
) -> None:
    """The segment's members as CSV (member ids, masked names, phones masked: the
    analyst's view, whatever the operator may see) for ad audience uploads."""
    import asyncio

    from siyu.auth.principal import Principal, Role
    from siyu.privacy import Vault
    from siyu.segments import lists
    from siyu.segments.stored import get_segment
    from siyu.store.reads import make_reads

    settings = load_settings()
    group_id = group or settings.group_id
    who = Principal(0, group_id, Role.ANALYST)  # masks, every member of the group

    async def write(engine: Any) -> int:
        reads = make_reads(engine, pool_size=1)
        rows = 0
        try:
            async with reads.connection() as reader:
                with to.open("w", encoding="utf-8", newline="") as f:
                    criteria = lists.MemberCriteria(segment=slug)
                    async for chunk in lists.export_csv(
                        reader, Vault(settings.secret_key), who, criteria, lists.ListView()
                    ):
                        f.write(chunk)
                        rows += chunk.count("\n")
        finally:
            await reads.close()
        return rows - 1  # the header

    with errors(), open_store(settings.database_url) as engine:
        with engine.connect() as conn:
            get_segment(conn, group_id, slug)  # a clear error before an empty file
        written = asyncio.run(write(engine))
    out.print(f"{written} members -> {to}")
