"""A guide's tasks, read live and scoped. The member lists (a guide's, a store's, any
count's) are `member_lists`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from siyu.analytics.snapshot import latest_snapshot
from siyu.console.web import authenticated, render
from siyu.segments import lists

router = APIRouter()


@router.get("/tasks")
async def tasks(request: Request) -> Response:
    ctx = await authenticated(request, "tasks")
    assert ctx.who is not None and ctx.who.guide_id is not None
    async with ctx.svc.reads.connection() as reader:
        life = await latest_snapshot(reader, ctx.who.group_id, "lifecycle")
        knee = None if life is None else life.payload.get("knee")
        found = await lists.guide_tasks(reader, ctx.who.group_id, ctx.who.guide_id, knee)
    return render(ctx, "tasks.html", tasks=found, knee=knee)
