"""The global holdout's long-run report in the console: the held-out members against every
other member, month by month and since the holdout began (`experiments.holdout_effect`),
each count opening its members in the member list (paging, masks and the CSV are the
list's). HQ and analysts read it, as they read campaigns; the share is set on the
campaigns page."""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from siyu.console import member_lists
from siyu.console.web import ConsoleExit, Ctx, authenticated, render
from siyu.errors import NotFoundError, ValidationError
from siyu.experiments import holdout_effect as effects

router = APIRouter()

PATH = "/console/global-holdout"
MONTH_CHOICES = (3, 6, 12, 24)
DEFAULT_MONTHS = 6


@router.get("/global-holdout")
async def holdout_report(request: Request) -> Response:
    ctx = await authenticated(request, "campaigns")
    assert ctx.who is not None
    raw = request.query_params.get("months", "")
    months = int(raw) if raw.isdigit() and int(raw) in MONTH_CHOICES else DEFAULT_MONTHS
    found = await run_in_threadpool(
        effects.holdout_effect, ctx.svc.engine, ctx.who.group_id, months
    )
    periods = [] if found is None else [*found.months, *filter(None, [found.since_start])]
    return render(
        ctx,
        "global_holdout.html",
        report=found,
        periods=periods,
        months=months,
        month_choices=MONTH_CHOICES,
        months_link=lambda n: f"{PATH}?{urlencode({'months': n})}",
        members_link=_members_link,
    )


def _members_link(period: str, side: str, figure: str) -> str:
    return f"{PATH}/members?{urlencode({'period': period, 'side': side, 'figure': figure})}"


async def _figure(ctx: Ctx) -> tuple[dict[str, str], list[int]]:
    assert ctx.who is not None
    params = ctx.request.query_params
    asked = {k: params.get(k, "") for k in ("period", "side", "figure")}
    try:
        ids = await run_in_threadpool(
            effects.member_ids,
            ctx.svc.engine,
            ctx.who.group_id,
            asked["period"],
            cast(Any, asked["side"]),  # checked by member_ids: a refusal is the 404
            cast(Any, asked["figure"]),
        )
    except (ValidationError, NotFoundError):
        raise ConsoleExit(404) from None
    return asked, ids


@router.get("/global-holdout/members.csv")
async def holdout_members_csv(request: Request) -> Response:
    ctx = await authenticated(request, "campaigns")
    asked, ids = await _figure(ctx)
    name = f"global-holdout-{asked['period']}-{asked['side']}-{asked['figure']}.csv"
    return await member_lists.export(ctx, ids, name)


@router.get("/global-holdout/members")
async def holdout_members(request: Request) -> Response:
    """The members behind one count of the report."""
    ctx = await authenticated(request, "campaigns")
    asked, ids = await _figure(ctx)
    period = ctx.t("gh.since") if asked["period"] == effects.SINCE else asked["period"]
    title = ctx.t(
        "gh.members_title",
        period=period,
        side=ctx.t(f"gh.side.{asked['side']}"),
        figure=ctx.t(f"gh.fig.{asked['figure']}"),
    )
    keep: dict[str, Any] = dict(asked)
    return await member_lists.show_list(
        ctx,
        f"{PATH}/members",
        title,
        among=ids,
        keep=keep,
        csv_path=f"{PATH}/members.csv",
        back=(PATH, ctx.t("gh.title")),
    )
