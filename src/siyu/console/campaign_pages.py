"""Coupons and campaigns in the console: the coupon templates with their liability (each
count opening the members holding those coupons), the campaigns, and a campaign's report
(treatment beside holdout, incremental revenue with its 95% interval and p-value, cost,
ROI, and its lottery's draws and winners), each of its member figures opening those
members.

The figures are the domain services' (`coupons.catalog`, `coupons.liability`,
`campaigns.plan`, `campaigns.report`), called on the store's engine in the thread pool as
the API calls them; a figure's members are `campaigns.report.members`, shown by the
member list (`member_lists.show_list` among those ids), so paging, sorting, masks and
the CSV are the member list's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast, get_args
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from siyu.campaigns import global_holdout
from siyu.campaigns import plan as plans
from siyu.campaigns import report as reports
from siyu.console import member_lists
from siyu.console.segment_pages import coded_or_404, page_number, read
from siyu.console.web import (
    ConsoleExit,
    Ctx,
    authenticated,
    need,
    posted_form,
    redirect,
    render,
)
from siyu.coupons import catalog, liability
from siyu.coupons.templates import CouponTemplate
from siyu.errors import NotFoundError, ValidationError
from siyu.lotteries import pools

router = APIRouter()

PER_PAGE = 50
ARMS: tuple[str, ...] = get_args(reports.Arm)
WHO: tuple[str, ...] = get_args(reports.Who)
# the report's notes (campaigns.report), by the label the console writes them with
NOTES = {
    "no holdout: incremental revenue cannot be measured": "camp.note.no_holdout",
    "too few members in an arm to compare": "camp.note.too_few",
    "no spend varies in either arm: no test": "camp.note.no_variance",
}


def paged(rows: list[Any], raw_page: str | None, per: int = PER_PAGE) -> tuple[list[Any], int, int]:
    """One page of an in-memory list: its rows, the page shown and how many pages."""
    pages = max(1, -(-len(rows) // per))
    page_no = min(page_number(raw_page), pages)
    return rows[(page_no - 1) * per : page_no * per], page_no, pages


async def coupon_names(ctx: Ctx) -> Any:
    """A template's name in the page's language, by its code (the code for one not found)."""
    assert ctx.who is not None
    versions: list[catalog.Version] = await read(ctx, catalog.newest, ctx.who.group_id)
    names = {
        v.template.code: v.template.name_zh if ctx.lang == "zh" else v.template.name_en
        for v in versions
    }
    return lambda code: names.get(code, code)


def campaign_path(code: str) -> str:
    return f"/console/campaigns/{quote(code, safe='')}"


# --- coupon templates and liability ---------------------------------------------------------


@dataclass(frozen=True)
class TemplateRow:
    template: CouponTemplate
    version: int
    owed: liability.Liability


@router.get("/coupons")
async def coupon_list(request: Request) -> Response:
    ctx = await authenticated(request, "coupons")
    assert ctx.who is not None
    group, engine = ctx.who.group_id, ctx.svc.engine
    versions: list[catalog.Version] = await read(ctx, catalog.newest, group)
    owed = {x.template_code: x for x in await run_in_threadpool(liability.liability, engine, group)}
    rows = [
        TemplateRow(
            v.template, v.version, owed.get(v.template.code, liability.Liability(v.template.code))
        )
        for v in versions
    ]
    shown, page_no, pages = paged(rows, request.query_params.get("page"))
    totals = liability.Liability("")
    for row in rows:
        for name in ("outstanding", "outstanding_face_fen", "outstanding_cost_fen"):
            setattr(totals, name, getattr(totals, name) + getattr(row.owed, name))
    return render(
        ctx,
        "coupons.html",
        rows=shown,
        total=len(rows),
        totals=totals,
        page_no=page_no,
        pages=pages,
        link=lambda page: f"/console/coupons?{urlencode({'page': page})}",
        name_of=lambda t: t.name_zh if ctx.lang == "zh" else t.name_en,
        validity=lambda t: validity(ctx, t),
        holders_link=holders_link,
    )


def holders_link(state: str, template: str | None = None) -> str:
    """The members behind a liability count: one template's, or all templates' (None)."""
    query = {"state": state, **({"template": template} if template is not None else {})}
    return f"/console/coupons/members?{urlencode(query)}"


async def liability_holders(ctx: Ctx) -> tuple[liability.State, str | None, str, list[int]]:
    """The count the query names (`state`, and `template` unless all), its title's name,
    and the members now holding those coupons; a 404 for a state or template not shown."""
    assert ctx.who is not None
    params = ctx.request.query_params
    state, template = params.get("state", ""), params.get("template")
    if state not in liability.STATES:
        raise ConsoleExit(404)
    name = ctx.t("coupon.all_templates")
    if template is not None:
        versions: list[catalog.Version] = await read(ctx, catalog.newest, ctx.who.group_id)
        found = [v.template for v in versions if v.template.code == template]
        if not found:
            raise ConsoleExit(404)
        name = found[0].name_zh if ctx.lang == "zh" else found[0].name_en
    picked = cast(liability.State, state)
    ids = await run_in_threadpool(
        liability.holders, ctx.svc.engine, ctx.who.group_id, picked, template
    )
    return picked, template, name, ids


@router.get("/coupons/members.csv")
async def coupon_holders_csv(request: Request) -> Response:
    ctx = await authenticated(request, "coupons")
    state, template, _, ids = await liability_holders(ctx)
    return await member_lists.export(ctx, ids, f"coupon-{template or 'all'}-{state}.csv")


@router.get("/coupons/members")
async def coupon_holders(request: Request) -> Response:
    """The members behind one liability count: holders of a template's issued, redeemed,
    returned, expired or outstanding coupons (or of all templates')."""
    ctx = await authenticated(request, "coupons")
    state, template, name, ids = await liability_holders(ctx)
    title = ctx.t("coupon.holders_title", name=name, state=ctx.t(f"coupon.{state}"))
    keep = {"state": state, **({"template": template} if template is not None else {})}
    return await member_lists.show_list(
        ctx,
        "/console/coupons/members",
        title,
        among=ids,
        keep=keep,
        csv_path="/console/coupons/members.csv",
        back=("/console/coupons", ctx.t("coupon.title")),
    )


def validity(ctx: Ctx, template: CouponTemplate) -> str:
    v = template.validity
    if v.days_from_issue is not None:
        return ctx.t("coupon.days_from_issue", days=v.days_from_issue)
    return f"{v.starts_at:%Y-%m-%d} – {v.ends_at:%Y-%m-%d}"


# --- campaigns ---------------------------------------------------------------------------------


@router.get("/campaigns")
async def campaign_list(request: Request) -> Response:
    ctx = await authenticated(request, "campaigns")
    return await _campaign_list(ctx)


async def _campaign_list(
    ctx: Ctx, typed: str | None = None, error: str | None = None, status: int = 200
) -> Response:
    assert ctx.who is not None
    request = ctx.request
    found: list[plans.Stored] = await read(ctx, plans.listed, ctx.who.group_id)
    shown, page_no, pages = paged(found, request.query_params.get("page"))
    holdout = await read(ctx, global_holdout.current, ctx.who.group_id)
    return render(
        ctx,
        "campaigns.html",
        status=status,
        holdout=holdout,
        holdout_typed=f"{holdout.share_bp / 100:g}" if typed is None else typed,
        holdout_error=error,
        may_write=ctx.who.may("campaigns:write"),
        done=request.query_params.get("done", ""),
        campaigns=shown,
        total=len(found),
        page_no=page_no,
        pages=pages,
        link=lambda page: f"/console/campaigns?{urlencode({'page': page})}",
        name_of=lambda p: p.name_zh if ctx.lang == "zh" else p.name_en,
        path_of=campaign_path,
        coupon_name=await coupon_names(ctx),
    )


@router.post("/campaigns/global-holdout")
async def set_global_holdout(request: Request) -> Response:
    """Set the global holdout's share, typed in percent (two decimals: basis points); a
    refusal shows the page again with what was typed and the rule, nothing set."""
    ctx = await authenticated(request, "campaigns")
    assert ctx.who is not None
    fields = await posted_form(request)
    need(ctx, "campaigns:write")
    typed = fields.get("share_pct", "").strip()
    try:
        await run_in_threadpool(
            global_holdout.set_share,
            ctx.svc.engine,
            ctx.who.group_id,
            _basis_points(typed),
            ctx.who.key_id,
        )
    except ValidationError as exc:
        return await _campaign_list(ctx, typed, str(exc), 422)
    return redirect(ctx, "/console/campaigns?done=holdout")


def _basis_points(typed: str) -> int:
    """A percentage as typed ("5", "2.5", "0.25") in basis points; the range is the
    holdout's own rule (`global_holdout.set_share`)."""
    try:
        hundredths = float(typed) * 100
        bp = round(hundredths)
    except (ValueError, OverflowError):
        raise ValidationError("share_bp", "a percentage such as 5 or 2.5", typed) from None
    if abs(bp - hundredths) > 1e-6:
        raise ValidationError("share_bp", "at most two decimals of a percent", typed)
    return bp


async def figure_members(
    ctx: Ctx, code: str
) -> tuple[plans.Stored, reports.Arm, reports.Who, list[int]]:
    """The campaign, and the members behind the figure the query names (`arm`, and `who`:
    all, buyers, redeemers or winners); a 404 for a figure the report has not."""
    assert ctx.who is not None
    stored = await coded_or_404(ctx, plans.load, code)
    params = ctx.request.query_params
    arm, who = params.get("arm", ""), params.get("who", "all")
    if arm not in ARMS or who not in WHO:
        raise ConsoleExit(404)
    picked_arm, picked = cast(reports.Arm, arm), cast(reports.Who, who)
    ids = await run_in_threadpool(
        reports.members, ctx.svc.engine, ctx.who.group_id, stored.plan.code, picked_arm, picked
    )
    return stored, picked_arm, picked, ids


@router.get("/campaigns/{code:path}/members.csv")
async def campaign_members_csv(code: str, request: Request) -> Response:
    ctx = await authenticated(request, "campaigns")
    _, arm, who, ids = await figure_members(ctx, code)
    return await member_lists.export(ctx, ids, f"campaign-{arm}-{who}.csv")


@router.get("/campaigns/{code:path}/members")
async def campaign_members(code: str, request: Request) -> Response:
    """The members behind one figure of the report: an arm's reach, buyers, redeemers or
    the lottery's winners."""
    ctx = await authenticated(request, "campaigns")
    stored, arm, who, ids = await figure_members(ctx, code)
    name = stored.plan.name_zh if ctx.lang == "zh" else stored.plan.name_en
    path = campaign_path(stored.plan.code)
    title = ctx.t(
        "camp.members_title", name=name, arm=ctx.t(f"arm.{arm}"), who=ctx.t(f"camp.who.{who}")
    )
    return await member_lists.show_list(
        ctx,
        f"{path}/members",
        title,
        among=ids,
        keep={"arm": arm, "who": who},
        csv_path=f"{path}/members.csv",
        back=(path, name),
    )


@router.get("/campaigns/{code:path}")
async def campaign_page(code: str, request: Request) -> Response:
    ctx = await authenticated(request, "campaigns")
    assert ctx.who is not None
    stored = await coded_or_404(ctx, plans.load, code)
    out = await run_in_threadpool(
        reports.report, ctx.svc.engine, ctx.who.group_id, stored.plan.code
    )
    path = campaign_path(stored.plan.code)

    def members_link(arm: str, who: str = "all") -> str:
        return f"{path}/members?{urlencode({'arm': arm, 'who': who})}"

    plan = stored.plan
    pool_name = plan.lottery or ""
    if plan.lottery is not None:
        try:
            pool: pools.Pool = await read(ctx, pools.load, ctx.who.group_id, plan.lottery)
            pool_name = pool.name_zh if ctx.lang == "zh" else pool.name_en
        except NotFoundError:
            pass  # checked when the plan was saved; a name is all this page wants of it
    return render(
        ctx,
        "campaign.html",
        c=stored,
        plan=plan,
        name=plan.name_zh if ctx.lang == "zh" else plan.name_en,
        r=out,
        members_link=members_link,
        note=ctx.t(NOTES[out.note]) if out.note in NOTES else out.note,
        fen=lambda value: None if value is None else round(value),
        coupon_name=await coupon_names(ctx),
        pool_name=pool_name,
        pool_url=f"/console/lotteries/{quote(plan.lottery or '', safe='')}",
    )
