"""Experiments over HTTP: HQ writes a plan (a draft until started), starts and stops it,
logs exposures; analysts read plans, results and the members behind every figure (a page
of the member list, personal data in the role's masks, as every member list)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from siyu.api.deps import Services, require, services
from siyu.api.problems import not_the_path
from siyu.api.schemas import PLAIN, Id, Strict
from siyu.auth.principal import Principal
from siyu.experiments import plan as plans
from siyu.experiments.assign import expose, start
from siyu.experiments.results import members, results
from siyu.segments import lists
from siyu.segments.lists import ListView, MemberCriteria
from siyu.store.times import as_stored, as_utc, stored_now

router = APIRouter(prefix="/v1", tags=["experiments"])
Code = Annotated[str, Path(min_length=1, max_length=64, pattern=PLAIN)]
Anchor = Literal["assignment", "exposure"]
MetricName = Literal["revenue_fen", "repurchase", "next_order", "coupon_redemption", "unsubscribe"]


def stored_out(found: plans.Stored) -> dict[str, Any]:
    return {
        "code": found.plan.code,
        "status": found.status,
        "started_at": None if found.started_at is None else as_utc(found.started_at),
        "stopped_at": None if found.stopped_at is None else as_utc(found.stopped_at),
        "plan": found.plan.model_dump(mode="json"),
    }


class ExposuresIn(Strict):
    member_ids: list[Id] = Field(min_length=1, max_length=10_000)
    at: datetime | None = Field(default=None, description="When shown; now if left out.")


@router.put("/experiments/{code}")
async def put_experiment(
    code: Code,
    body: plans.Plan,
    who: Principal = Depends(require("experiments:write")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Create or replace a draft (409 `experiment_state` once started)."""
    if body.code != code:
        raise not_the_path("code", body.code, code)
    found = await run_in_threadpool(plans.save, svc.engine, who.group_id, body, who.key_id)
    return stored_out(found)


@router.get("/experiments")
async def list_experiments(
    who: Principal = Depends(require("experiments:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    def work() -> list[plans.Stored]:
        with svc.engine.connect() as conn:
            return plans.listed(conn, who.group_id)

    return {"experiments": [stored_out(e) for e in await run_in_threadpool(work)]}


@router.get("/experiments/{code}")
async def get_experiment(
    code: Code,
    who: Principal = Depends(require("experiments:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    def work() -> plans.Stored:
        with svc.engine.connect() as conn:
            return plans.load(conn, who.group_id, code)

    return stored_out(await run_in_threadpool(work))


@router.post("/experiments/{code}:start")
async def start_experiment(
    code: Code,
    who: Principal = Depends(require("experiments:write")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Assign the target's members to variants (the global holdout left out, counted as
    `global_holdout`) and deliver each variant's treatment: a coupon variant's coupons
    (`coupons`), a message variant's send planned (`messages`: its state, whether this
    start planned it, its recipients by status and skip reason), a campaign variant's
    incentive (`campaigns`: enrolled, granted, over budget, coupons, points), a guide task
    variant's HQ task given to its members' guides (`guide_tasks`: tasked, tasked by this
    start, members no guide serves). What a variant names is checked first (404 or 422
    naming `variants[i].ref`) and nothing is written then. Safe to repeat: nothing is
    written or delivered twice, and members who entered the target since are assigned."""
    done = await run_in_threadpool(start, svc.engine, who.group_id, code, key_id=who.key_id)
    return asdict(done)


@router.post("/experiments/{code}:stop")
async def stop_experiment(
    code: Code,
    who: Principal = Depends(require("experiments:write")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Stop a running experiment (409 `experiment_state` otherwise); results stay readable."""
    return stored_out(await run_in_threadpool(plans.stop, svc.engine, who.group_id, code))


@router.post("/experiments/{code}/exposures")
async def expose_members(
    code: Code,
    body: ExposuresIn,
    who: Principal = Depends(require("experiments:write")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Log that these members were shown their variant. The first exposure is kept, so
    sending the same ids again changes nothing (`exposed` counts first logged exposures).
    A treatment's delivery counts as exposure without a log (a coupon issued, a message
    sent, a campaign's incentive granted, a guide task contacted): the results take the
    earlier of the two; the control's members count as exposed only when logged."""
    when = stored_now() if body.at is None else as_stored(body.at)
    exposed = await run_in_threadpool(expose, svc.engine, who.group_id, code, body.member_ids, when)
    return {"exposed": exposed}


@router.get("/experiments/{code}/results")
async def experiment_results(
    code: Code,
    anchor: Anchor = "assignment",
    at: datetime | None = None,
    who: Principal = Depends(require("experiments:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Every variant against the control per metric (lift, 95% interval, p-value, CUPED,
    the always-valid interval), the sample-ratio check, overall and by stage at
    assignment; outcomes over the window from assignment or first exposure, up to `at`.
    `exposed`: each variant's members exposed by `at` (logged or by delivery);
    `exposure_note`: what a reading from exposure compares (per protocol)."""
    when = None if at is None else as_stored(at)
    found = await run_in_threadpool(results, svc.engine, who.group_id, code, anchor, when)
    out = found.as_dict()
    out["until"] = as_utc(found.until)
    return out


@router.get("/experiments/{code}/members")
async def experiment_members(
    code: Code,
    variant: Annotated[str, Query(min_length=1, max_length=64, pattern=PLAIN)],
    metric: MetricName | None = None,
    positive: bool = True,
    stage: Annotated[str | None, Query(max_length=32, pattern=PLAIN)] = None,
    anchor: Anchor = "assignment",
    page: Annotated[int, Query(ge=1, le=10**7)] = 1,
    per: Annotated[int, Query(ge=1, le=200)] = 50,
    who: Principal = Depends(require("experiments:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The members behind a figure: a variant's (of one stage), or those whose `metric`
    was positive (or not), a page of the member list at a time; names masked, phones as
    the role may see them."""
    ids = await run_in_threadpool(
        members, svc.engine, who.group_id, code, variant, metric, positive, stage, anchor
    )
    view = ListView("member_id", False, page, per)
    async with svc.reads.connection() as reader:
        found = await lists.member_page(reader, svc.vault, who, MemberCriteria(), view, ids)
    return {
        "total": found.total,
        "page": found.view.page,
        "per": per,
        "members": [
            {
                **{k: v for k, v in r.__dict__.items() if k != "phone_masked"},
                "last_order_at": None if r.last_order_at is None else as_utc(r.last_order_at),
            }
            for r in found.rows
        ],
    }
