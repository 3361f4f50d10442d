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
from siyu.guides.errors import (
    NotYourTask,
    TaskNotFound,
    TaskTransitionRefused,
    TrainingNotFound,
)
from siyu.guides.models import CLOSED, CONTACTED, DISMISSED, DONE, LIVE
from siyu.guides.service import change_state, may_act
from siyu.guides.training import complete, training_progress
from siyu.identity.profile import shown_identity
from siyu.store.reads import Reader, Sql

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
        contacts = await _contacts(ctx, reader, [t.member_id for t in found.tasks])
        titles = await _titles(reader, who.group_id, {t.campaign_code for t in found.tasks})
    training = []
    if who.guide_id is not None:
        training = await run_in_threadpool(_training, ctx, who.guide_id)
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
        contacts=contacts,
        titles=titles,
        training=training,
    )


# How a guide reaches a member from its phone: tel: with the member's first phone (only
# for roles that see personal data; a mask is shown, not dialled) and WeCom's deep link
# to the member's external contact (wxwork://message/?username=<external_userid>).
_PHONES = Sql(
    "SELECT member_id, type, value, value_enc, value_masked FROM identities "
    "WHERE group_id = :g AND type IN ('phone', 'external_userid') AND member_id IN :ids "
    "ORDER BY member_id, first_seen, identity_id"
)
_TITLES = Sql(
    "SELECT code, title_zh, title_en FROM guide_task_campaigns WHERE group_id = :g "
    "AND code IN :codes"
)


async def _contacts(ctx: Ctx, reader: Reader, ids: list[int]) -> dict[int, dict[str, Any]]:
    assert ctx.who is not None
    out: dict[int, dict[str, Any]] = {}
    if not ids:
        return out
    for r in await reader.all(_PHONES, {"g": ctx.who.group_id, "ids": ids}):
        mine = out.setdefault(int(r.member_id), {})
        if r.type in mine:
            continue  # the member's first one
        value, masked = shown_identity(
            ctx.svc.vault, ctx.who.sees_personal_data, r.type, r.value, r.value_enc, r.value_masked
        )
        mine[str(r.type)] = (value, masked)
    return out


async def _titles(reader: Reader, group_id: str, codes: set[str | None]) -> dict[str, Any]:
    wanted = sorted(c for c in codes if c)
    if not wanted:
        return {}
    rows = await reader.all(_TITLES, {"g": group_id, "codes": wanted})
    return {str(r.code): (r.title_zh, r.title_en) for r in rows}


def _training(ctx: Ctx, guide_id: str) -> list[Any]:
    assert ctx.who is not None
    with ctx.svc.engine.connect() as conn:
        return training_progress(conn, ctx.who.group_id, guide_id)


@router.post("/training/{code}/complete")
async def complete_training(code: str, request: Request) -> Response:
    """A guide marks a training item done (a form's POST, CSRF-checked)."""
    ctx = await authenticated(request, "tasks")
    assert ctx.who is not None
    await posted_form(request)
    if ctx.who.guide_id is None:
        raise ConsoleExit(403)
    try:
        await run_in_threadpool(complete, ctx.svc.engine, ctx.who.group_id, ctx.who.guide_id, code)
    except TrainingNotFound:
        raise ConsoleExit(404) from None
    return redirect(ctx, "/console/tasks#training")


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
