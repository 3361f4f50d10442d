"""A guide's follow-up tasks, read live and scoped, and the forms that move them (mark
contacted with a note, done, dismiss). A guide sees and acts on its own tasks; an HQ admin
sees every guide's (or one guide's) and may act on them. The member lists (a guide's, a
store's, any count's) are `member_lists`."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from siyu.auth.principal import Role
from siyu.console.web import ConsoleExit, Ctx, authenticated, posted_form, redirect, render
from siyu.errors import ValidationError
from siyu.guides import queries
from siyu.guides.errors import NotYourTask, TaskNotFound, TaskTransitionRefused
from siyu.guides.models import CLOSED, CONTACTED, DISMISSED, DONE, LIVE
from siyu.guides.service import change_state, may_act

router = APIRouter()

PER_PAGE = 50
VIEWS = {"live": LIVE, "closed": CLOSED}
ACTIONS = {"contacted": CONTACTED, "done": DONE, "dismiss": DISMISSED}
_GUIDE = re.compile(r"^[\w.:@-]{1,64}$")


@router.get("/tasks")
async def tasks(request: Request) -> Response:
    ctx = await authenticated(request, "tasks")
    return await _show(ctx)


async def _show(ctx: Ctx, status: int = 200, error: str | None = None) -> Response:
    assert ctx.who is not None
    who, params = ctx.who, ctx.request.query_params
    view = params.get("view") or "live"
    view = view if view in VIEWS else "live"
    hq = who.role != Role.GUIDE
    asked = (params.get("guide") or "").strip()
    guide = who.guide_id if not hq else (asked if _GUIDE.match(asked) else None)
    page_raw = params.get("page") or "1"
    page_no = int(page_raw) if page_raw.isdigit() and 0 < int(page_raw) <= 10**6 else 1
    async with ctx.svc.reads.connection() as reader:
        found = await queries.task_page(
            reader,
            who.group_id,
            guide,
            VIEWS[view],
            PER_PAGE,
            (page_no - 1) * PER_PAGE,
            notes=who.sees_personal_data,
        )
    changed = None
    task_id, state = params.get("changed", ""), params.get("state", "")
    if task_id.isdigit() and state in ACTIONS.values():
        changed = ctx.t("tasks.changed", id=task_id, state=ctx.t(f"task.state.{state}"))

    def view_url(name: str, number: int = 1) -> str:
        query = {"view": name, **({"guide": guide} if hq and guide else {})}
        if number > 1:
            query["page"] = str(number)
        return f"/console/tasks?{urlencode(query)}"

    return render(
        ctx,
        "tasks.html",
        status=status,
        page=found,
        view=view,
        hq=hq,
        guide=guide,
        page_no=page_no,
        pages=max(1, -(-found.total // PER_PAGE)),
        view_url=view_url,
        may_act=lambda guide_id: may_act(who, guide_id),
        changed=changed,
        error=error,
    )


@router.post("/tasks/{task_id}/{action}")
async def act(task_id: int, action: str, request: Request) -> Response:
    """Move a task (a form's POST, CSRF-checked): 403 for another guide's task, 409 for a
    move its state does not allow, naming the rule; then back to the list."""
    ctx = await authenticated(request, "tasks")
    assert ctx.who is not None
    fields = await posted_form(request)
    if action not in ACTIONS:
        raise ConsoleExit(404)
    who = ctx.who
    try:
        done = await run_in_threadpool(
            change_state, ctx.svc.engine, who, task_id, ACTIONS[action], fields.get("note")
        )
    except TaskNotFound:
        raise ConsoleExit(404) from None
    except NotYourTask:
        raise ConsoleExit(403) from None
    except TaskTransitionRefused as exc:
        return _refused(ctx, exc)
    except ValidationError:
        return await _show(ctx, 422, ctx.t("tasks.bad_note"))
    return redirect(
        ctx, f"/console/tasks?{urlencode({'changed': done.task_id, 'state': done.state})}"
    )


def _refused(ctx: Ctx, exc: TaskTransitionRefused) -> Response:
    state = ctx.t(f"task.state.{exc.current}")
    values: dict[str, Any] = {"id": exc.task_id, "state": state}
    return render(
        ctx,
        "error.html",
        status=409,
        title=ctx.t("tasks.refused"),
        text=ctx.t("tasks.refused.text", **values),
    )
