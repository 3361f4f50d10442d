"""Guides' A/B/C classes (issue #19): HQ puts the class rules (a new version each time) and
classes a period; the classes with the metrics they were decided on and their playbooks are
read by HQ (every guide), a store key (its stores' guides) and a guide key (only itself)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from siyu.api.deps import Services, require, services
from siyu.api.problems import Problem
from siyu.api.schemas import Strict
from siyu.auth.principal import Principal, Role
from siyu.guides import classes
from siyu.store.times import as_stored, as_utc

router = APIRouter(prefix="/v1", tags=["guides"])


class ClassifyIn(Strict):
    since: datetime = Field(description="First instant of the period.")
    until: datetime = Field(description="End of the period, not included.")


@router.get("/guide-classes/rules")
async def get_class_rules(
    who: Principal = Depends(require("guide-classes:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The class rules in force and their version; 409 `class_rules_missing` when none."""

    def work() -> classes.RulesVersion:
        with svc.engine.connect() as conn:
            return classes.current_rules(conn, who.group_id)

    found = await run_in_threadpool(work)
    return {"version": found.version, "rules": found.rules.model_dump(mode="json")}


@router.put("/guide-classes/rules")
async def put_class_rules(
    body: classes.ClassRules,
    who: Principal = Depends(require("guide-classes:write")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Store the rules as the next version; classifying from now on applies them."""
    saved = await run_in_threadpool(classes.save_rules, svc.engine, who.group_id, body, who.key_id)
    return {"version": saved.version, "rules": body.model_dump(mode="json")}


@router.post("/guide-classes:classify")
async def classify(
    body: ClassifyIn,
    who: Principal = Depends(require("guide-classes:write")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Class every guide for the period by the rules in force, replacing the period's
    earlier classes (attribute the period's orders first). 409 `class_rules_missing`."""
    since, until = as_stored(body.since), as_stored(body.until)
    done = await run_in_threadpool(classes.classify, svc.engine, who.group_id, since, until)
    return {
        "since": as_utc(done.since),
        "until": as_utc(done.until),
        "rules_version": done.rules_version,
        "by_class": done.by_class,
        "spam_risk": done.flagged,
    }


@router.get("/guide-classes")
async def list_classes(
    since: Annotated[datetime | None, Query(description="With until: that period's.")] = None,
    until: Annotated[datetime | None, Query()] = None,
    guide_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    history: Annotated[bool, Query(description="Every period, latest first.")] = False,
    who: Principal = Depends(require("guide-classes:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Guides' classes with their metrics and playbooks: each guide's current class (its
    latest period), a period's, or the history. A store key sees its stores' guides, a
    guide key only itself."""
    if who.role == Role.GUIDE:
        if guide_id not in (None, who.guide_id):
            raise Problem(
                403, "Forbidden", "guide_id: a guide key reads only its own class", "forbidden"
            )
        guide_id = who.guide_id or ""
    stores = who.stores if who.role == Role.STORE else None

    def work() -> list[classes.GuideClass]:
        with svc.engine.connect() as conn:
            return classes.classes(
                conn,
                who.group_id,
                None if since is None else as_stored(since),
                None if until is None else as_stored(until),
                stores=stores,
                guide_id=guide_id,
                history=history,
            )

    found = await run_in_threadpool(work)
    return {"classes": [_row(c) for c in found]}


def _row(c: classes.GuideClass) -> dict[str, Any]:
    return {
        "guide_id": c.guide_id,
        "store_id": c.store_id,
        "class": c.guide_class,
        "spam_risk": c.spam_risk,
        "since": as_utc(c.period_start),
        "until": as_utc(c.period_end),
        "metrics": c.metrics,
        "rules_version": c.rules_version,
        "computed_at": as_utc(c.computed_at),
        "playbook": c.playbook.model_dump(),
    }
