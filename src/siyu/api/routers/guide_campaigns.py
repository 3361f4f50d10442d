"""HQ's tasks for guides and the guides' training (issue #19): HQ authors a task document,
assigns it (one task per target member for the member's guide; the tasks are then listed
and moved by the routes in `guides.py`) and reads its completion and effect; a guide reads
the training items with its own completions and marks one done. A guide key reads only its
own training (the row rule of `guides.service.may_read`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.concurrency import run_in_threadpool

from siyu.api.deps import Services, require, services
from siyu.api.problems import Problem, not_the_path
from siyu.auth.principal import Principal
from siyu.experiments.guide_task_effect import task_report
from siyu.guides.campaigns import TaskDocument, assign_tasks, author_task
from siyu.guides.service import may_read
from siyu.guides.training import complete, training_progress
from siyu.store.times import as_utc

router = APIRouter(prefix="/v1", tags=["guides"])
Code = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
GuideId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f/]*$")]


@router.put("/guide-tasks/{code}")
async def put_guide_task(
    code: Code,
    body: TaskDocument,
    who: Principal = Depends(require("guide-tasks:write")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Store an HQ task document; the same one again is a no-op, a different one under a
    used code is refused (409 `task_campaign_exists`)."""
    if body.code != code:
        raise not_the_path("code", body.code, code)
    created = await run_in_threadpool(author_task, svc.engine, who.group_id, body)
    return {"code": code, "created": created}


@router.post("/guide-tasks/{code}:assign")
async def assign_guide_task(
    code: Code,
    who: Principal = Depends(require("guide-tasks:write")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Make one task per target member for the member's guide (safe to repeat)."""
    done = await run_in_threadpool(assign_tasks, svc.engine, who.group_id, code)
    return {
        k: getattr(done, k)
        for k in ("code", "targeted", "tasked", "control", "no_guide", "already")
    }


@router.get("/guide-tasks/{code}/report")
async def guide_task_report(
    code: Code,
    who: Principal = Depends(require("guide-tasks:report")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Completion per state (and overdue) and the effect: revenue and orders per member,
    tasked against the held-out control, Welch's 95% interval."""
    report = await run_in_threadpool(task_report, svc.engine, who.group_id, code)

    def lift(d: Any) -> dict[str, float] | None:
        if d is None:
            return None
        a = d.absolute
        return {
            "control_mean": d.control_mean,
            "treatment_mean": d.treatment_mean,
            "estimate": a.estimate,
            "ci_low": a.ci_low,
            "ci_high": a.ci_high,
            "p_value": a.p_value,
        }

    window = None if report.window is None else [as_utc(t) for t in report.window]
    return {
        "code": code,
        "completion": report.completion,
        "no_guide": report.no_guide,
        "window": window,
        "arms": {k: vars(v) for k, v in report.arms.items()},
        "revenue_per_member_fen": lift(report.revenue),
        "orders_per_member": lift(report.orders),
        "why": report.why,
    }


@router.get("/guides/{guide_id}/training")
async def guide_training(
    guide_id: GuideId,
    who: Principal = Depends(require("tasks:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The training items, each with when this guide completed it and how many guides did."""
    if not may_read(who, guide_id):
        raise Problem(
            403, "Forbidden", "guide_id: a guide key reads only its own training", "forbidden"
        )

    def work() -> list[Any]:
        with svc.engine.connect() as conn:
            return training_progress(conn, who.group_id, guide_id)

    items = await run_in_threadpool(work)
    return {"items": [_item(i) for i in items]}


def _item(i: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        k: getattr(i, k)
        for k in ("code", "title_zh", "title_en", "url", "body", "for_class", "for_task")
    }
    out.update(completed=i.completed, guides=i.guides)
    out["done_at"] = None if i.done_at is None else as_utc(i.done_at)
    return out


@router.post("/training/{code}:complete")
async def complete_training(
    code: Code,
    who: Principal = Depends(require("training:complete")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The calling guide marks the item done (again is a no-op)."""
    if who.guide_id is None:
        raise Problem(
            403, "Forbidden", "guide_id: only a guide key completes training", "forbidden"
        )
    new = await run_in_threadpool(complete, svc.engine, who.group_id, who.guide_id, code)
    return {"code": code, "guide_id": who.guide_id, "recorded": new}
