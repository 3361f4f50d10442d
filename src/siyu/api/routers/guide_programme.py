"""HQ's programme for guides by stage (issue #19): HQ puts the stages (a new version each
time); the report of a period (each guide's focus metrics of the stage in force, met or
not, and their totals) is read by HQ (every guide), a store key (its stores' guides) and a
guide key (only itself), as the classes are. HQ reads the training completion per
audience and per class."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool

from siyu.api.deps import Services, require, services
from siyu.api.problems import Problem
from siyu.auth.principal import Principal, Role
from siyu.guides import programme
from siyu.guides.training import ItemProgress, training_progress
from siyu.store.times import as_stored, as_utc

router = APIRouter(prefix="/v1", tags=["guides"])
At = Annotated[datetime | None, Query(description="As of (default now); for replays.")]


def _document(found: programme.ProgrammeVersion) -> dict[str, Any]:
    return {"version": found.version, "programme": found.programme.model_dump(mode="json")}


@router.get("/guide-programme")
async def get_programme(
    who: Principal = Depends(require("guide-programme:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The current programme (its newest version) and its version; 409
    `programme_missing` when none."""

    def work() -> programme.ProgrammeVersion:
        with svc.engine.connect() as conn:
            return programme.current_programme(conn, who.group_id)

    return _document(await run_in_threadpool(work))


@router.put("/guide-programme")
async def put_programme(
    body: programme.Programme,
    who: Principal = Depends(require("guide-programme:write")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Store the stages as the next version (422 naming the field: an unknown metric, an
    empty focus, stages out of date order or starting the same day)."""
    saved = await run_in_threadpool(
        programme.save_programme, svc.engine, who.group_id, body, who.key_id
    )
    return _document(saved)


@router.get("/guide-programme/report")
async def programme_report(
    since: Annotated[datetime, Query(description="First instant of the period.")],
    until: Annotated[datetime, Query(description="End of the period, not included.")],
    guide_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    at: At = None,
    who: Principal = Depends(require("guide-programme:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Each guide's focus metrics of the stage in force for the period, their targets, met
    or not, and the totals of the guides reported, by the programme version in force at the
    period's end (`version`: the newest saved before `until`, the current one when none
    was). 409 `programme_missing`,
    `programme_not_started` (the period starts before the first stage)."""
    if who.role == Role.GUIDE:
        if guide_id not in (None, who.guide_id):
            raise Problem(
                403, "Forbidden", "guide_id: a guide key reads only its own report", "forbidden"
            )
        guide_id = who.guide_id or ""
    stores = who.stores if who.role == Role.STORE else None

    def work() -> programme.ProgrammeReport:
        with svc.engine.connect() as conn:
            return programme.programme_report(
                conn,
                who.group_id,
                as_stored(since),
                as_stored(until),
                None if at is None else as_stored(at),
                stores=stores,
                guide_id=guide_id,
            )

    report = await run_in_threadpool(work)
    return {
        "since": as_utc(report.since),
        "until": as_utc(report.until),
        "version": report.version,
        "stage": report.stage.model_dump(mode="json"),
        "guides": [
            {
                "guide_id": g.guide_id,
                "store_id": g.store_id,
                "spam_risk": g.spam_risk,
                "met_all": g.met_all,
                "metrics": [vars(m) for m in g.measured],
            }
            for g in report.guides
        ],
        "totals": [vars(t) for t in report.totals],
    }


@router.get("/training")
async def training_report(
    at: At = None,
    who: Principal = Depends(require("guide-tasks:report")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Each training item's completion over its audience (the guides of its class, or
    assigned its task), the guides outside the audience who completed it, and per class."""

    def work() -> list[ItemProgress]:
        with svc.engine.connect() as conn:
            return training_progress(conn, who.group_id, at=None if at is None else as_stored(at))

    return {"items": [training_row(i) for i in await run_in_threadpool(work)]}


def training_row(i: ItemProgress) -> dict[str, Any]:
    """An item as HQ reads it: the rate's audience, the guides outside it, per class."""
    row: dict[str, Any] = {
        k: getattr(i, k)
        for k in ("code", "title_zh", "title_en", "url", "body", "for_class", "for_task")
    }
    row.update(completed=i.completed, guides=i.guides, outside=i.outside)
    row["by_class"] = {c: {"completed": n, "guides": of} for c, (n, of) in i.by_class.items()}
    row["done_at"] = None if i.done_at is None else as_utc(i.done_at)
    return row
