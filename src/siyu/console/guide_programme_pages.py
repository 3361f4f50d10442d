"""HQ's programme report for guides (issue #19, "metrics per stage of the programme", as
E-Land ran it): `/console/guide-programme?since=&until=` shows the stage in force for the
period, each guide's focus metrics against their targets, met or not, and the totals;
the guides page and export (`.csv`, every guide). Each guide opens its members.

HQ only: the API's report also serves store and guide keys scoped to theirs, but their
own pages (my-class, my-guides) already show them their figures. The period defaults to
the month of the newest attributed order, the month the programme last measured.

Every count of guides clicks through to them: `?met=all` lists the guides who met every
target, `?met=<metric>` those who met that metric's (the totals' "guides who met it");
the pager and the export keep the filter."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import text

from siyu.console.web import Ctx, authenticated, render, secure
from siyu.errors import ConflictError, ValidationError
from siyu.guides.programme import GuideFocus, ProgrammeReport, programme_report
from siyu.store.times import stored_now, stored_time

router = APIRouter()
PER_PAGE = 50
PATH = "/console/guide-programme"
_NEWEST = text("SELECT MAX(ordered_at) FROM order_attributions WHERE group_id = :g")


def _day(raw: str | None, name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        raise ValidationError(name, "must be a date, YYYY-MM-DD") from None


def _period(ctx: Ctx) -> tuple[date, date]:
    """The period asked for; a side left out is the default month's."""
    assert ctx.who is not None
    query = ctx.request.query_params
    since, until = _day(query.get("since"), "since"), _day(query.get("until"), "until")
    if since is None or until is None:
        with ctx.svc.engine.connect() as conn:
            newest = conn.execute(_NEWEST, {"g": ctx.who.group_id}).scalar()
        first = (stored_time(newest) if newest is not None else stored_now()).date()
        month = first.replace(day=1)
        since = since or month
        until = until or (month + timedelta(days=32)).replace(day=1)
    if until <= since:
        raise ValidationError("until", "must be after since")
    return since, until


def _report(ctx: Ctx) -> tuple[date, date, ProgrammeReport]:
    assert ctx.who is not None
    since, until = _period(ctx)
    with ctx.svc.engine.connect() as conn:
        found = programme_report(
            conn, ctx.who.group_id, datetime.combine(since, time()), datetime.combine(until, time())
        )
    return since, until, found


def _met(ctx: Ctx, report: ProgrammeReport) -> str | None:
    """The `met` filter asked for: "all", a focus metric with a target, or none."""
    raw = ctx.request.query_params.get("met") or None
    targeted = [f.metric for f in report.stage.focus if f.min is not None or f.max is not None]
    if raw is not None and raw != "all" and raw not in targeted:
        allowed = ", ".join(["all", *targeted])
        raise ValidationError("met", f"must be one of {allowed} (a focus metric with a target)")
    return raw


def who_met(report: ProgrammeReport, met: str | None) -> list[GuideFocus]:
    """The report's guides who met every target (`met` "all") or one metric's, in order;
    every guide when `met` is None."""
    if met is None:
        return list(report.guides)
    if met == "all":
        return [g for g in report.guides if g.met_all]
    return [g for g in report.guides if any(m.metric == met and m.met for m in g.measured)]


def _page_no(ctx: Ctx) -> int:
    raw = ctx.request.query_params.get("page") or "1"
    return int(raw) if raw.isdigit() and 0 < int(raw) <= 10**6 else 1


@router.get("/guide-programme")
async def guide_programme(request: Request) -> Response:
    ctx = await authenticated(request, "guide_programme")
    try:
        since, until, report = await run_in_threadpool(_report, ctx)
    except ValidationError as exc:
        error = f"{ctx.t('gp.bad_period')} {exc}"
        return render(ctx, "guide_programme.html", status=422, error=error, report=None)
    except ConflictError as exc:  # no programme, or the period starts before its first stage
        error = f"{ctx.t('gp.' + exc.code)} {exc}"
        return render(ctx, "guide_programme.html", status=409, error=error, report=None)
    try:
        met = _met(ctx, report)
    except ValidationError as exc:
        error = f"{ctx.t('gp.bad_filter')} {exc}"
        return render(ctx, "guide_programme.html", status=422, error=error, report=None)
    period = {"since": since.isoformat(), "until": until.isoformat()}
    kept = {**period, **({"met": met} if met else {})}
    shown = who_met(report, met)
    page_no = _page_no(ctx)
    pages = max(1, -(-len(shown) // PER_PAGE))
    return render(
        ctx,
        "guide_programme.html",
        error=None,
        report=report,
        since=period["since"],
        until=period["until"],
        met=sum(1 for g in report.guides if g.met_all),
        met_filter=met,
        shown_count=len(shown),
        on_page=shown[(page_no - 1) * PER_PAGE : page_no * PER_PAGE],
        page_no=page_no,
        pages=pages,
        page_url=lambda n: f"{PATH}?{urlencode({**kept, 'page': str(n)})}",
        csv_url=f"{PATH}.csv?{urlencode(kept)}",
        met_url=lambda m: f"{PATH}?{urlencode({**period, 'met': m})}#programme-guides",
        all_url=f"{PATH}?{urlencode(period)}#programme-guides",
        members_url=lambda g: f"/console/guides/{quote(g, safe='')}",
    )


@router.get("/guide-programme.csv")
async def guide_programme_csv(request: Request) -> Response:
    ctx = await authenticated(request, "guide_programme")
    try:
        since, until, report = await run_in_threadpool(_report, ctx)
    except ValidationError as exc:
        return secure(Response(f"{exc}\n", status_code=422, media_type="text/plain"))
    except ConflictError as exc:
        return secure(Response(f"{exc}\n", status_code=409, media_type="text/plain"))
    try:
        met = _met(ctx, report)
    except ValidationError as exc:
        return secure(Response(f"{exc}\n", status_code=422, media_type="text/plain"))
    body = programme_csv(report, who_met(report, met))
    response = Response(body, media_type="text/csv; charset=utf-8")
    name = f"guide-programme-{report.stage.code}-{since}-{until}{'-met-' + met if met else ''}.csv"
    response.headers["Content-Disposition"] = f'attachment; filename="{quote(name)}"'
    return secure(response)


def programme_csv(report: ProgrammeReport, guides: list[GuideFocus] | None = None) -> str:
    """One row per guide (`guides`: those of a filter; default every guide): the stage,
    then per focus metric its value, bounds and met; an empty cell is no value (a ratio
    over zero) or no target."""

    def cell(value: object) -> object:
        return "" if value is None else int(value) if isinstance(value, bool) else value

    out = io.StringIO()
    writer = csv.writer(out)
    head = ["stage", "guide_id", "store_id", "spam_risk", "met_all"]
    for f in report.stage.focus:
        head += [f.metric, f"{f.metric}_min", f"{f.metric}_max", f"{f.metric}_met"]
    writer.writerow(head)
    for g in report.guides if guides is None else guides:
        row = [report.stage.code, g.guide_id, g.store_id, int(g.spam_risk), cell(g.met_all)]
        for m in g.measured:
            row += [cell(m.value), cell(m.min), cell(m.max), cell(m.met)]
        writer.writerow(row)
    return out.getvalue()
