"""HQ's view of its tasks for guides (issue #19): each task code with its completion
(assigned, open, contacted, done, dismissed, overdue; control and members without a
guide) and its effect against the held-out control; every count links to the members
behind it (the member list, `member_lists.show_list` with `among`). Below, the training
items with the share of guides who completed each."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from siyu.console import member_lists
from siyu.console.web import ConsoleExit, authenticated, render
from siyu.errors import NotFoundError
from siyu.experiments.guide_task_effect import FIGURES, figure_members, task_codes, task_report
from siyu.guides.training import training_progress

router = APIRouter()


def _path(code: str) -> str:
    return f"/console/guide-tasks/{quote(code, safe='')}"


@router.get("/guide-tasks")
async def guide_tasks(request: Request) -> Response:
    ctx = await authenticated(request, "guide_tasks")
    assert ctx.who is not None
    group = ctx.who.group_id

    def work() -> tuple[list[Any], list[Any]]:
        engine = ctx.svc.engine
        reports = [task_report(engine, group, code) for code in task_codes(engine, group)]
        with engine.connect() as conn:
            return reports, training_progress(conn, group)

    reports, training = await run_in_threadpool(work)

    def members_link(code: str, figure: str) -> str:
        return f"{_path(code)}/members?{urlencode({'figure': figure})}"

    return render(
        ctx, "guide_tasks.html", reports=reports, training=training, members_link=members_link
    )


@router.get("/guide-tasks/{code}/members")
async def guide_task_members(code: str, request: Request) -> Response:
    """The members behind one count of a task code's report."""
    ctx = await authenticated(request, "guide_tasks")
    assert ctx.who is not None
    figure = ctx.request.query_params.get("figure", "")
    if figure not in FIGURES:
        raise ConsoleExit(404)
    try:
        report = await run_in_threadpool(task_report, ctx.svc.engine, ctx.who.group_id, code)
    except NotFoundError:
        raise ConsoleExit(404) from None
    ids = await run_in_threadpool(figure_members, ctx.svc.engine, ctx.who.group_id, code, figure)
    doc = report.document
    title = doc.title_zh if ctx.lang == "zh" else doc.title_en
    return await member_lists.show_list(
        ctx,
        f"{_path(code)}/members",
        f"{title} · {ctx.t('gt.figure.' + figure)}",
        among=ids,
        keep={"figure": figure},
        back=("/console/guide-tasks", ctx.t("nav.guide_tasks")),
    )
