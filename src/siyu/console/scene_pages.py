"""QR scenes in the console: the codes, paged, each with what it brought (members acquired,
how many reached 1 .. knee orders, their revenue and CLV), one code's report, and the star
members whose shared codes brought others; every count opens its members.

The figures are `scenes.report`'s, on the store's engine in the thread pool as the API's
report runs; a count's members (`acquired_members`, `referred_members`) are shown by the
member list among those ids. A scene string may hold any visible character ("/" too), so
it travels in the query, never in the path.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from siyu.analytics.snapshot import latest_snapshot
from siyu.console import member_lists
from siyu.console.web import ConsoleExit, Ctx, authenticated, render
from siyu.errors import NotFoundError, ValidationError
from siyu.scenes import registry
from siyu.scenes import report as scene_report
from siyu.scenes.models import TARGETS

router = APIRouter()

PER_PAGE = (25, 50, 100)
STARS = 20


async def knee(ctx: Ctx) -> int:
    """The knee of the latest lifecycle snapshot (as the API's report), else Pagoda's four."""
    assert ctx.who is not None
    async with ctx.svc.reads.connection() as reader:
        snap = await latest_snapshot(reader, ctx.who.group_id, "lifecycle")
    found = None if snap is None else snap.payload.get("knee")
    if isinstance(found, int) and 1 <= found <= scene_report.MAX_KNEE:
        return found
    return scene_report.DEFAULT_KNEE


def scene_of(raw: str | None) -> str:
    try:
        return registry.check_scene(raw or "")
    except ValidationError:
        raise ConsoleExit(404) from None


def members_link(scene: str, min_orders: int = 0) -> str:
    query = {"scene": scene, **({"min_orders": str(min_orders)} if min_orders else {})}
    return f"/console/scenes/members?{urlencode(query)}"


def scene_link(scene: str) -> str:
    return f"/console/scenes/report?{urlencode({'scene': scene})}"


def referred_link(member_id: int) -> str:
    return f"/console/scenes/referred?{urlencode({'member': member_id})}"


@router.get("/scenes")
async def scene_list(request: Request) -> Response:
    """The codes in scene order, a page at a time (`after`: the last scene of the page
    before), archived ones when asked; each with its report row."""
    ctx = await authenticated(request, "scenes")
    assert ctx.who is not None
    params = request.query_params
    raw_per = params.get("per", "")
    per = int(raw_per) if raw_per.isdigit() and int(raw_per) in PER_PAGE else PER_PAGE[1]
    archived = params.get("archived") == "1"
    after = params.get("after") or None
    group, engine, k = ctx.who.group_id, ctx.svc.engine, await knee(ctx)

    def work() -> tuple[list[registry.Scene], list[scene_report.SceneRow], list[Any]]:
        found = registry.list_scenes(engine, group, archived=archived, limit=per + 1, after=after)
        rows = scene_report.scene_report(
            engine, group, knee=k, scenes=[s.scene for s in found[:per]]
        )
        return found, rows, scene_report.star_members(engine, group, STARS)

    found, rows, stars = await run_in_threadpool(work)
    by_scene = {r.scene: r for r in rows}
    shown = found[:per]
    keep = {"per": str(per), **({"archived": "1"} if archived else {})}
    more = len(found) > per
    return render(
        ctx,
        "scenes.html",
        scenes=[(s, by_scene.get(s.scene)) for s in shown],
        knee=k,
        stars=stars,
        per=per,
        per_page=PER_PAGE,
        archived=archived,
        after=after,
        first_link=f"/console/scenes?{urlencode(keep)}",
        next_link=f"/console/scenes?{urlencode({**keep, 'after': shown[-1].scene})}"
        if more
        else None,
        per_link=lambda n: f"/console/scenes?{urlencode({**keep, 'per': n})}",
        archived_link="/console/scenes" if archived else "/console/scenes?archived=1",
        members_link=members_link,
        scene_link=scene_link,
        referred_link=referred_link,
        targets=TARGETS,
    )


@router.get("/scenes/report")
async def scene_page(request: Request) -> Response:
    """One code: what it points at, and what it brought."""
    ctx = await authenticated(request, "scenes")
    assert ctx.who is not None
    scene = scene_of(request.query_params.get("scene"))
    group, engine, k = ctx.who.group_id, ctx.svc.engine, await knee(ctx)

    def work() -> tuple[registry.Scene, list[scene_report.SceneRow]]:
        return registry.get(engine, group, scene), scene_report.scene_report(
            engine, group, knee=k, scenes=[scene]
        )

    try:
        code, rows = await run_in_threadpool(work)
    except NotFoundError:
        raise ConsoleExit(404) from None
    return render(
        ctx,
        "scene.html",
        s=code,
        r=rows[0] if rows else None,
        knee=k,
        members_link=members_link,
        targets=TARGETS,
    )


async def _acquired(ctx: Ctx) -> tuple[str, int, list[int]]:
    assert ctx.who is not None
    params = ctx.request.query_params
    scene = scene_of(params.get("scene"))
    raw = params.get("min_orders", "0")
    if not raw.isdigit() or int(raw) > scene_report.MAX_KNEE:
        raise ConsoleExit(404)
    ids = await run_in_threadpool(
        scene_report.acquired_members, ctx.svc.engine, ctx.who.group_id, scene, int(raw)
    )
    return scene, int(raw), ids


@router.get("/scenes/members")
async def scene_members(request: Request) -> Response:
    """The members behind a code's `acquired` count, or its `reached[k]` (`min_orders`)."""
    ctx = await authenticated(request, "scenes")
    scene, k, ids = await _acquired(ctx)
    title = (
        ctx.t("scene.members_reached", scene=scene, k=k)
        if k
        else ctx.t("scene.members_acquired", scene=scene)
    )
    keep = {"scene": scene, **({"min_orders": str(k)} if k else {})}
    return await member_lists.show_list(
        ctx,
        "/console/scenes/members",
        title,
        among=ids,
        keep=keep,
        csv_path="/console/scenes/members.csv",
        back=(scene_link(scene), scene),
    )


@router.get("/scenes/members.csv")
async def scene_members_csv(request: Request) -> Response:
    ctx = await authenticated(request, "scenes")
    _, k, ids = await _acquired(ctx)
    return await member_lists.export(ctx, ids, f"scene-members-{k}.csv")


async def _referred(ctx: Ctx) -> tuple[int, list[int]]:
    assert ctx.who is not None
    raw = ctx.request.query_params.get("member", "")
    if not raw.isdigit() or not 1 <= int(raw) < 2**62:
        raise ConsoleExit(404)
    ids = await run_in_threadpool(
        scene_report.referred_members, ctx.svc.engine, ctx.who.group_id, int(raw)
    )
    return int(raw), ids


@router.get("/scenes/referred")
async def referred_members(request: Request) -> Response:
    """The members a star member's shared codes acquired."""
    ctx = await authenticated(request, "scenes")
    member, ids = await _referred(ctx)
    return await member_lists.show_list(
        ctx,
        "/console/scenes/referred",
        ctx.t("scene.referred_title", member=member),
        among=ids,
        keep={"member": str(member)},
        csv_path="/console/scenes/referred.csv",
        back=("/console/scenes#stars", ctx.t("scene.stars")),
    )


@router.get("/scenes/referred.csv")
async def referred_csv(request: Request) -> Response:
    ctx = await authenticated(request, "scenes")
    member, ids = await _referred(ctx)
    return await member_lists.export(ctx, ids, f"referred-by-{member}.csv")
