"""A guide's follow-up tasks: list them ranked (expected value, then urgency) and move one
(contacted with a note, done, dismissed). A guide key reads and moves only its own tasks;
HQ reads every guide's, an admin moves any. Moves take an Idempotency-Key: a retry with
the same key logs nothing twice."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from siyu.api.deps import RequiredIdempotencyKey, Services, require, services
from siyu.api.idempotency import Outcome, respond_once
from siyu.api.problems import Problem
from siyu.api.schemas import MAX_ID, Strict
from siyu.auth.principal import Principal
from siyu.guides.models import CLOSED, CONTACTED, DISMISSED, DONE, LIVE, NOTE_MAX, STATES
from siyu.guides.queries import TaskCard, task_page
from siyu.guides.service import change_state, may_read
from siyu.store.times import as_utc

router = APIRouter(prefix="/v1", tags=["guides"])
GuideId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f/]*$")]
TaskId = Annotated[int, Path(ge=1, le=MAX_ID)]
View = Literal["live", "closed", "open", "contacted", "done", "dismissed"]
VIEWS: dict[str, tuple[str, ...]] = {
    "live": LIVE,
    "closed": CLOSED,
    **{s: (s,) for s in STATES},
}


class TaskEventOut(BaseModel):
    state: str
    actor_key_id: int | None = Field(
        description="The API key that made the change; null: the generator."
    )
    actor_role: str | None
    note: str | None = Field(description="Free text; only for roles that may see personal data.")
    at: datetime


class TaskOut(BaseModel):
    task_id: int
    guide_id: str
    member_id: int
    name: str | None = Field(description="Masked.")
    kind: str
    stage: str
    state: str
    expected_value_fen: int
    urgency: int = Field(description="Per mille of the stage's window used up.")
    due_on: date
    last_order_at: datetime | None
    created_at: datetime
    updated_at: datetime
    history: list[TaskEventOut]
    campaign_code: str | None = Field(default=None, description="An HQ task's code.")
    script: str | None = Field(default=None, description="What HQ suggests the guide says.")


class TaskListOut(BaseModel):
    total: int
    tasks: list[TaskOut]


class TaskActIn(Strict):
    note: str | None = Field(default=None, max_length=NOTE_MAX)


class TaskMovedOut(BaseModel):
    task_id: int
    guide_id: str
    previous_state: str
    state: str
    at: datetime
    actor_key_id: int


@router.get("/guides/{guide_id}/tasks", response_model=TaskListOut)
async def guide_tasks(
    guide_id: GuideId,
    state: Annotated[
        View, Query(description="live (open and contacted), closed, or one state")
    ] = "live",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10**7)] = 0,
    who: Principal = Depends(require("tasks:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The guide's tasks in `state`, ranked by expected value then urgency, each with who
    changed it and when."""
    if not may_read(who, guide_id):
        raise Problem(
            403, "Forbidden", "guide_id: a guide key reads only its own tasks", "forbidden"
        )
    async with svc.reads.connection() as reader:
        page = await task_page(
            reader, who.group_id, guide_id, VIEWS[state], limit, offset, who.sees_personal_data
        )
    return {"total": page.total, "tasks": [_task(t) for t in page.tasks]}


def _task(t: TaskCard) -> dict[str, Any]:
    return {
        **{
            k: getattr(t, k) for k in ("task_id", "guide_id", "member_id", "kind", "stage", "state")
        },
        "name": t.name_masked,
        "campaign_code": t.campaign_code,
        "script": t.script,
        "expected_value_fen": t.expected_value_fen,
        "urgency": t.urgency,
        "due_on": t.due_on,
        "last_order_at": None if t.last_order_at is None else as_utc(t.last_order_at),
        "created_at": as_utc(t.created_at),
        "updated_at": as_utc(t.updated_at),
        "history": [
            {
                "state": e.state,
                "actor_key_id": e.actor_key_id,
                "actor_role": e.actor_role,
                "note": e.note,
                "at": as_utc(e.at),
            }
            for e in t.history
        ],
    }


async def _move(
    to: str,
    task_id: int,
    body: TaskActIn | None,
    request: Request,
    key: str,
    who: Principal,
    svc: Services,
) -> JSONResponse:
    given = body or TaskActIn()

    def work() -> Outcome:
        moved = change_state(svc.engine, who, task_id, to, given.note)
        out = TaskMovedOut(
            task_id=moved.task_id,
            guide_id=moved.guide_id,
            previous_state=moved.previous,
            state=moved.state,
            at=as_utc(moved.at),
            actor_key_id=moved.actor_key_id,
        )
        return 200, out.model_dump(mode="json")

    return await run_in_threadpool(respond_once, svc.engine, who.key_id, request, key, given, work)


@router.post("/tasks/{task_id}:contacted", response_model=TaskMovedOut)
async def task_contacted(
    task_id: TaskId,
    request: Request,
    idempotency_key: RequiredIdempotencyKey,
    body: TaskActIn | None = None,
    who: Principal = Depends(require("tasks:write")),
    svc: Services = Depends(services),
) -> JSONResponse:
    """Log a contact with the member (again, if contacted before), with an optional note."""
    return await _move(CONTACTED, task_id, body, request, idempotency_key, who, svc)


@router.post("/tasks/{task_id}:done", response_model=TaskMovedOut)
async def task_done(
    task_id: TaskId,
    request: Request,
    idempotency_key: RequiredIdempotencyKey,
    body: TaskActIn | None = None,
    who: Principal = Depends(require("tasks:write")),
    svc: Services = Depends(services),
) -> JSONResponse:
    """Close the task as done (final)."""
    return await _move(DONE, task_id, body, request, idempotency_key, who, svc)


@router.post("/tasks/{task_id}:dismiss", response_model=TaskMovedOut)
async def task_dismiss(
    task_id: TaskId,
    request: Request,
    idempotency_key: RequiredIdempotencyKey,
    body: TaskActIn | None = None,
    who: Principal = Depends(require("tasks:write")),
    svc: Services = Depends(services),
) -> JSONResponse:
    """Close the task as dismissed (final): not worth a follow-up."""
    return await _move(DISMISSED, task_id, body, request, idempotency_key, who, svc)
