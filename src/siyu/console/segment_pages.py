"""Stored segments in the console: the list, and one segment's page (its rule in words,
versions, size per day, members paged and exported, evaluate now, archive).

Each page and action needs the permission its API endpoint needs (`segments:read`,
`:write`, `:export`); members are read from the store (the last evaluation) through the
member lists (`segments.lists`), so paging, sorting, masks and a guide's row scope are
the member list's. Only "evaluate now" runs on the warehouse, in the thread pool, as the
API's evaluate does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from siyu.analytics.engines import connect
from siyu.analytics.warehouse import Warehouse, open_warehouse
from siyu.console import member_lists, rule_text
from siyu.console.web import (
    ConsoleExit,
    Ctx,
    authenticated,
    need,
    posted_form,
    redirect,
    render,
)
from siyu.errors import ConflictError, NotFoundError, ValidationError
from siyu.segments import evaluate as runs
from siyu.segments import lists
from siyu.segments import stored as service
from siyu.segments.lists import ListView, MemberCriteria
from siyu.services import Services

if TYPE_CHECKING:
    from sqlalchemy import Connection

router = APIRouter()
Found = TypeVar("Found")

PER_PAGE = 50  # segments per page of the list
HISTORY_DAYS = 90


def read(ctx: Ctx, fn: Callable[..., Any], *args: Any) -> Any:
    """A sync service read on the store (the segment services take a connection)."""

    def work() -> Any:
        with ctx.svc.engine.connect() as conn:
            return fn(conn, *args)

    return run_in_threadpool(work)


async def coded_or_404(ctx: Ctx, load: Callable[[Connection, str, str], Found], code: str) -> Found:
    """What `load(conn, group_id, code)` finds under the brand group's code (a campaign, an
    experiment, a prize pool, a send), or the 404 page. Codes are at most 64 characters,
    so a longer one from the path is cut and simply not found."""
    assert ctx.who is not None
    try:
        found: Found = await read(ctx, load, ctx.who.group_id, code[:64])
    except NotFoundError:
        raise ConsoleExit(404) from None
    return found


async def segment_or_404(ctx: Ctx, slug: str) -> service.StoredSegment:
    assert ctx.who is not None
    try:
        found: service.StoredSegment = await read(ctx, service.get_segment, ctx.who.group_id, slug)
    except (NotFoundError, ValidationError):
        raise ConsoleExit(404) from None
    return found


@contextmanager
def warehouse(svc: Services, group_id: str) -> Iterator[tuple[Any, Warehouse]]:
    """The brand's warehouse (SIYU_WAREHOUSE) on an in-memory DuckDB, as the API opens it."""
    backend = connect("duckdb")
    try:
        yield backend, open_warehouse(backend, Path(svc.settings.warehouse), group_id)
    finally:
        backend.disconnect()


def name_of(segment: service.StoredSegment, lang: str) -> str:
    return segment.name_zh if lang == "zh" else segment.name_en


def page_number(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and 0 < int(raw) <= 10**6 else 1


@router.get("/segments")
async def segment_list(request: Request) -> Response:
    ctx = await authenticated(request, "segments")
    assert ctx.who is not None
    archived = request.query_params.get("archived") == "1"
    found: list[service.StoredSegment] = await read(
        ctx, service.list_segments, ctx.who.group_id, archived
    )
    pages = max(1, -(-len(found) // PER_PAGE))
    page_no = min(page_number(request.query_params.get("page")), pages)

    def link(number: int) -> str:
        query = {"page": str(number), **({"archived": "1"} if archived else {})}
        return f"/console/segments?{urlencode(query)}"

    return render(
        ctx,
        "segments.html",
        segments=found[(page_no - 1) * PER_PAGE : page_no * PER_PAGE],
        total=len(found),
        page_no=page_no,
        pages=pages,
        link=link,
        archived=archived,
        name_of=lambda s: name_of(s, ctx.lang),
        may_build=ctx.who.may("segments:preview"),
    )


@router.get("/segments/{slug}")
async def segment_page(slug: str, request: Request) -> Response:
    ctx = await authenticated(request, "segments")
    return await show_segment(ctx, slug)


async def show_segment(
    ctx: Ctx, slug: str, status: int = 200, error: str | None = None, notice: str | None = None
) -> Response:
    assert ctx.who is not None
    segment = await segment_or_404(ctx, slug)
    params = ctx.request.query_params
    try:
        view = lists.parse_view({"sort": "member_id", **params})
    except ValidationError as exc:
        view, error, status = ListView("member_id", False), f"{ctx.t('list.bad_input')} {exc}", 422
    versions = await read(ctx, service.segment_versions_of, ctx.who.group_id, slug)
    days = await run_in_threadpool(
        runs.size_history, ctx.svc.engine, ctx.who.group_id, slug, HISTORY_DAYS
    )
    async with ctx.svc.reads.connection() as reader:
        found = await lists.member_page(
            reader, ctx.svc.vault, ctx.who, MemberCriteria(segment=slug), view
        )
    base = f"/console/segments/{slug}"

    def link(**change: Any) -> str:
        return f"{base}?{urlencode({**found.view.query(), **change})}"

    def sort_link(key: str) -> str:
        desc = not found.view.desc if found.view.sort == key else key != "member_id"
        return link(sort=key, dir="desc" if desc else "asc", page=1)

    if notice is None and params.get("evaluated", "").isdigit():
        notice = ctx.t(
            "seg.evaluated",
            size=params["evaluated"],
            entered=params.get("entered", "0"),
            left=params.get("left", "0"),
        )
    who = ctx.who
    csv_query = {"sort": found.view.sort, "dir": "desc" if found.view.desc else "asc"}
    return render(
        ctx,
        "segment.html",
        status=status,
        s=segment,
        name=name_of(segment, ctx.lang),
        rule=rule_text.describe(segment.rule, ctx.lang),
        versions=[(v, rule_text.describe(v.rule, ctx.lang)) for v in reversed(versions)],
        days=days,
        size_option=size_chart(days),
        found=found,
        link=link,
        sort_link=sort_link,
        csv_url=f"{base}/members.csv?{urlencode(csv_query)}",
        may_write=who.may("segments:write") and segment.archived_at is None,
        may_export=who.may("segments:export"),
        may_build=who.may("segments:preview"),
        masked=not who.sees_personal_data,
        error=error,
        notice=notice,
        to_json=rule_json,
    )


def rule_json(rule: Any) -> str:
    return json.dumps(rule, ensure_ascii=False, indent=2)


def size_chart(days: list[runs.DaySize]) -> dict[str, Any]:
    """Members per day (the day's last evaluation)."""
    return {
        "grid": {"left": 48, "right": 16, "top": 16, "bottom": 28},
        "xAxis": {"type": "category", "data": [d.day.isoformat() for d in days]},
        "yAxis": {"type": "value", "minInterval": 1},
        "tooltip": {"trigger": "axis"},
        "series": [{"type": "line", "data": [d.size for d in days], "showSymbol": True}],
    }


async def _checked_post(request: Request, permission: str) -> Ctx:
    ctx = await authenticated(request, "segments")
    need(ctx, permission)
    await posted_form(request)
    return ctx


@router.post("/segments/{slug}/evaluate")
async def evaluate_now(slug: str, request: Request) -> Response:
    """Evaluate now (and the segments it nests, first); back to the page with the counts."""
    ctx = await _checked_post(request, "segments:write")
    assert ctx.who is not None
    segment = await segment_or_404(ctx, slug)
    group, svc = ctx.who.group_id, ctx.svc

    def work() -> list[runs.Evaluation]:
        with warehouse(svc, group) as (backend, wh):
            return runs.evaluate_segments(svc.engine, backend, wh, [segment.slug], None, "manual")

    try:
        done = await run_in_threadpool(work)
    except (ValidationError, NotFoundError) as exc:
        return await show_segment(ctx, slug, 422, f"{ctx.t('seg.evaluate_failed')} {exc}")
    last = done[-1]
    query = {"evaluated": last.size, "entered": last.entered, "left": last.left}
    return redirect(ctx, f"/console/segments/{slug}?{urlencode(query)}")


@router.post("/segments/{slug}/archive")
async def archive(slug: str, request: Request) -> Response:
    """Archive; refused (409) naming the live segments that nest it."""
    ctx = await _checked_post(request, "segments:write")
    assert ctx.who is not None
    await segment_or_404(ctx, slug)
    group = ctx.who.group_id

    def work() -> service.StoredSegment:
        with ctx.svc.engine.begin() as conn:
            return service.archive_segment(conn, group, slug)

    try:
        await run_in_threadpool(work)
    except ConflictError:
        live = await read(ctx, service.list_segments, group, False)
        nesting = [s.slug for s in live if slug in s.nests()]
        message = ctx.t("seg.archive_refused", by=", ".join(nesting))
        return await show_segment(ctx, slug, 409, message)
    return redirect(ctx, f"/console/segments/{slug}")


@router.get("/segments/{slug}/members.csv")
async def members_csv(slug: str, request: Request) -> Response:
    """The segment's members as CSV, in the page's order, masks and scope (the API's
    export, `segments:export`)."""
    ctx = await authenticated(request, "segments")
    need(ctx, "segments:export")
    assert ctx.who is not None
    segment = await segment_or_404(ctx, slug)
    criteria = MemberCriteria(segment=segment.slug)
    return await member_lists.export_of(ctx, criteria, f"segment-{slug}.csv")
