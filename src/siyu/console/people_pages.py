"""Pages of people, read live and scoped: a guide's members (HQ, or the guide itself as
"My members"), a guide's tasks, a store's home members."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from siyu.analytics.snapshot import latest_snapshot
from siyu.auth.principal import Role
from siyu.console.web import ConsoleExit, authenticated, render
from siyu.segments import lists

router = APIRouter()


@router.get("/guides/{guide_id}")
async def guide_members(guide_id: str, request: Request) -> Response:
    ctx = await authenticated(request, "guide_members")
    assert ctx.who is not None
    async with ctx.svc.reads.connection() as reader:
        found = await lists.guide_members(reader, ctx.who.group_id, guide_id[:64])
    return render(
        ctx,
        "member_list.html",
        title=ctx.t("guides.members", guide=guide_id[:64]),
        summary=ctx.t("guides.count", n=found.total, shown=len(found.rows)),
        rows=found.rows,
    )


@router.get("/my-members")
async def my_members(request: Request) -> Response:
    ctx = await authenticated(request, "my_members")
    assert ctx.who is not None and ctx.who.guide_id is not None
    async with ctx.svc.reads.connection() as reader:
        found = await lists.guide_members(reader, ctx.who.group_id, ctx.who.guide_id)
    return render(
        ctx,
        "member_list.html",
        title=ctx.t("my.title"),
        summary=ctx.t("guides.count", n=found.total, shown=len(found.rows)),
        rows=found.rows,
    )


@router.get("/tasks")
async def tasks(request: Request) -> Response:
    ctx = await authenticated(request, "tasks")
    assert ctx.who is not None and ctx.who.guide_id is not None
    async with ctx.svc.reads.connection() as reader:
        life = await latest_snapshot(reader, ctx.who.group_id, "lifecycle")
        knee = None if life is None else life.payload.get("knee")
        found = await lists.guide_tasks(reader, ctx.who.group_id, ctx.who.guide_id, knee)
    return render(ctx, "tasks.html", tasks=found, knee=knee)


@router.get("/stores/{store_id}")
async def store_members(store_id: str, request: Request) -> Response:
    ctx = await authenticated(request, "store_members")
    assert ctx.who is not None
    if ctx.who.role == Role.STORE and store_id not in ctx.who.stores:
        raise ConsoleExit(403)
    async with ctx.svc.reads.connection() as reader:
        found = await lists.store_members(reader, ctx.who.group_id, store_id[:64])
    return render(
        ctx,
        "member_list.html",
        title=ctx.t("stores.members", store=store_id[:64]),
        summary=ctx.t("stores.count", n=found.total, shown=len(found.rows)),
        rows=found.rows,
    )
