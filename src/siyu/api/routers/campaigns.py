"""Campaigns over HTTP: HQ writes a plan (a draft until launched), launches it, and reads
its report; analysts read plans and reports. Every figure of the report has its members
(`/members?arm=&who=`: all, buyers, redeemers, winners of its lottery), for the console
to click through; member ids only, no personal data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from siyu.api.deps import Services, require, services
from siyu.api.problems import not_the_path
from siyu.api.schemas import PLAIN
from siyu.auth.principal import Principal
from siyu.campaigns import global_holdout
from siyu.campaigns import plan as plans
from siyu.campaigns.launch import launch
from siyu.campaigns.report import members, report
from siyu.errors import NotFoundError
from siyu.experiments import holdout_effect
from siyu.store.times import as_stored, as_utc

router = APIRouter(prefix="/v1", tags=["campaigns"])
Code = Annotated[str, Path(min_length=1, max_length=64, pattern=PLAIN)]


def _stored(found: plans.Stored) -> dict[str, Any]:
    return {
        "code": found.plan.code,
        "status": found.status,
        "launched_at": None if found.launched_at is None else as_utc(found.launched_at),
        "plan": found.plan.model_dump(mode="json"),
    }


@router.put("/campaigns/{code}")
async def put_campaign(
    code: Code,
    body: plans.Plan,
    who: Principal = Depends(require("campaigns:write")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Create or replace a draft (409 `campaign_state` once launched)."""
    if body.code != code:
        raise not_the_path("code", body.code, code)
    found = await run_in_threadpool(plans.save, svc.engine, who.group_id, body, who.key_id)
    return _stored(found)


@router.get("/campaigns")
async def list_campaigns(
    who: Principal = Depends(require("campaigns:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    def work() -> list[plans.Stored]:
        with svc.engine.connect() as conn:
            return plans.listed(conn, who.group_id)

    return {"campaigns": [_stored(c) for c in await run_in_threadpool(work)]}


@router.post("/campaigns/{code}:launch")
async def launch_campaign(
    code: Code,
    who: Principal = Depends(require("campaigns:write")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Assign the target's members to arms and give the treatment its incentives. Safe to
    repeat: a second launch gives nothing twice, and assigns members who entered since."""
    done = await run_in_threadpool(launch, svc.engine, who.group_id, code, key_id=who.key_id)
    return vars(done)


@router.get("/campaigns/{code}/report")
async def campaign_report(
    code: Code,
    at: datetime | None = None,
    who: Principal = Depends(require("campaigns:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Reach, redemptions, revenue per arm, incremental revenue against the holdout (with
    Welch's test and its 95% interval), cost and ROI, and the lottery's draws and winners,
    over the period up to `at`."""
    when = None if at is None else as_stored(at)
    return (await run_in_threadpool(report, svc.engine, who.group_id, code, when)).as_dict()


@router.get("/campaigns/{code}/members")
async def campaign_members(
    code: Code,
    arm: Literal["treatment", "holdout"] = "treatment",
    who_: Annotated[Literal["all", "buyers", "redeemers", "winners"], Query(alias="who")] = "all",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
    who: Principal = Depends(require("campaigns:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The member ids behind a figure of the report, a page at a time."""
    found = await run_in_threadpool(members, svc.engine, who.group_id, code, arm, who_)
    return {
        "total": len(found),
        "member_ids": found[offset : offset + limit],
        "next_offset": offset + limit if offset + limit < len(found) else None,
    }


class HoldoutShare(BaseModel):
    model_config = ConfigDict(extra="forbid")
    share_bp: int = Field(
        ge=0,
        le=global_holdout.MAX_SHARE_BP,
        description="The share of members held out of every treatment, in basis points "
        "(500 = 5%); 0 holds out nobody.",
    )


def _holdout(found: global_holdout.GlobalHoldout) -> dict[str, Any]:
    # the salt is not answered: with it, anyone could tell who is held out
    return {
        "share_bp": found.share_bp,
        "updated_at": None if found.updated_at is None else as_utc(found.updated_at),
        "started_at": None if found.started_at is None else as_utc(found.started_at),
    }


@router.get("/global-holdout")
async def get_global_holdout(
    who: Principal = Depends(require("campaigns:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The group's global holdout: members kept out of every campaign's and experiment's
    treatment and every marketing send, for measuring all of them together."""

    def work() -> global_holdout.GlobalHoldout:
        with svc.engine.connect() as conn:
            return global_holdout.current(conn, who.group_id)

    return _holdout(await run_in_threadpool(work))


@router.put("/global-holdout")
async def put_global_holdout(
    body: HoldoutShare,
    who: Principal = Depends(require("campaigns:write")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Set the share held out. The salt is drawn the first time and kept, so raising the
    share adds members and lowering it releases some; members already in a campaign's or
    experiment's arm keep it."""
    found = await run_in_threadpool(
        global_holdout.set_share, svc.engine, who.group_id, body.share_bp, who.key_id
    )
    return _holdout(found)


@router.get("/global-holdout/report")
async def get_global_holdout_report(
    who: Principal = Depends(require("campaigns:read")),
    svc: Services = Depends(services),
    months: Annotated[int, Query(ge=1, le=holdout_effect.MAX_MONTHS)] = 6,
    at: datetime | None = None,
) -> dict[str, Any]:
    """What all marketing together is worth: the held-out members against every other
    member, month by month (the brand's months) and since the holdout began: each side's
    members, buyers, orders and net revenue, and the differences (others minus held out)
    with their 95% intervals. The months before the start are the split's check."""
    found = await run_in_threadpool(
        holdout_effect.holdout_effect,
        svc.engine,
        who.group_id,
        months,
        None if at is None else as_stored(at),
    )
    if found is None:
        raise NotFoundError("global holdout: nothing is held out (PUT /v1/global-holdout)")
    return found.as_dict()


@router.get("/global-holdout/members")
async def get_global_holdout_members(
    who: Principal = Depends(require("campaigns:read")),
    svc: Services = Depends(services),
    period: Annotated[str, Query(max_length=7, description="YYYY-MM, or since")] = "since",
    side: Literal["held_out", "others"] = "held_out",
    figure: Literal["members", "buyers"] = "members",
    at: datetime | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1_000,
) -> dict[str, Any]:
    """The member ids behind a figure of the report, a page at a time."""
    found = await run_in_threadpool(
        holdout_effect.member_ids,
        svc.engine,
        who.group_id,
        period,
        side,
        figure,
        None if at is None else as_stored(at),
    )
    return {
        "total": len(found),
        "member_ids": found[offset : offset + limit],
        "next_offset": offset + limit if offset + limit < len(found) else None,
    }
