"""HQ's A/B/C classes of guides (issue #19): each guide's current class with the metrics
that decided it and the rules version, the counts per class (each opening the guides of
that class) and the guides flagged for spam risk (shares opened, no order), the playbook
of each class under the rules in force, and one guide's class history. The members a
class metric counted (buyers, members bound, served) open as a member list.

HQ only: `guide-classes:read` holds for stores and guides too, but the API answers them
only their own stores' guides and themselves; their pages are the store manager's and the
guide's own."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from siyu.console import member_lists
from siyu.console.guide_common import csv_answer, guides_of, paged
from siyu.console.i18n import fmt_cny, fmt_int, fmt_pct
from siyu.console.web import ConsoleExit, Ctx, authenticated, render
from siyu.guides import classes as cls
from siyu.guides import hq_reads
from siyu.guides.errors import ClassRulesMissing
from siyu.guides.models import CLASSES

router = APIRouter()

PAGE = "guide_classes"
# the metrics a row shows, in the order E-Land watched them; the rest are in the CSV
SHOWN = (
    "orders",
    "sales_fen",
    "shares",
    "share_opens",
    "share_openers",
    "carted_openers",
    "conversion_bp",
    "refund_rate_bp",
    "members_served",
    "task_completion_bp",
)
MEMBER_FIGURES = hq_reads.CLASS_FIGURES


def history_path(guide_id: str) -> str:
    return f"/console/guide-classes/{quote(guide_id, safe='')}"


def members_path(c: cls.GuideClass, figure: str) -> str:
    return f"{history_path(c.guide_id)}/members?{urlencode(period_query(c, figure))}"


def period_query(c: cls.GuideClass, figure: str) -> dict[str, str]:
    """A class period and a figure as the members page's query (not `since`/`until`:
    `until` is the member list's own criterion)."""
    return {"figure": figure, "period": f"{c.period_start.isoformat()}/{c.period_end.isoformat()}"}


def _current(ctx: Ctx) -> tuple[list[cls.GuideClass], cls.RulesVersion | None, dict[str, Any]]:
    assert ctx.who is not None
    with ctx.svc.engine.connect() as conn:
        found = cls.classes(conn, ctx.who.group_id)
        try:
            rules: cls.RulesVersion | None = cls.current_rules(conn, ctx.who.group_id)
        except ClassRulesMissing:
            rules = None
        guides = guides_of(conn, ctx.who.group_id)
    return found, rules, guides


def _filtered(ctx: Ctx, found: list[cls.GuideClass]) -> tuple[dict[str, str], list[Any]]:
    params = ctx.request.query_params
    picked = params.get("class", "")
    spam = params.get("spam") == "1"
    if picked and picked not in CLASSES:
        raise ConsoleExit(404)
    shown = {**({"class": picked} if picked else {}), **({"spam": "1"} if spam else {})}
    rows = [
        c for c in found if (not picked or c.guide_class == picked) and (not spam or c.spam_risk)
    ]
    return shown, rows


def thresholds(ctx: Ctx, rules: cls.ClassRules, name: str) -> list[str]:
    """A class's thresholds in words: "Orders ≥ 6"."""
    if name == "C":
        return [ctx.t("gc.rest")]
    ranked: cls.Ranked = getattr(rules, name)
    return [
        f"{ctx.t('gm.' + metric)} {op} {value_text(metric, bound)}"
        for op, bounds in (("≥", ranked.min), ("≤", ranked.max))
        for metric, bound in bounds.items()
    ]


def value_text(metric: str, value: Any) -> str:
    """A metric as written: money in yuan, ratios in per cent, counts grouped."""
    if value is None:
        return "-"
    if metric.endswith("_fen"):
        return fmt_cny(value)
    if metric.endswith("_bp"):
        return fmt_pct(int(value) / 10_000)
    return fmt_int(value)


@router.get("/guide-classes")
async def guide_classes(request: Request) -> Response:
    ctx = await authenticated(request, PAGE)
    found, rules, guides = await run_in_threadpool(_current, ctx)
    shown, rows = _filtered(ctx, found)
    page, page_no, pages = paged(rows, request.query_params.get("page"))
    counts = {c: sum(1 for x in found if x.guide_class == c) for c in CLASSES}

    def link(**change: Any) -> str:
        asked = {**shown, **{k: str(v) for k, v in change.items()}}
        asked = {k: v for k, v in asked.items() if v and not (k == "page" and v == "1")}
        return f"/console/guide-classes?{urlencode(asked)}" if asked else "/console/guide-classes"

    return render(
        ctx,
        "guide_classes.html",
        rows=page,
        total=len(rows),
        counts=counts,
        flagged=sum(1 for x in found if x.spam_risk),
        guides=guides,
        shown=shown,
        rules=rules,
        classes=CLASSES,
        shown_metrics=SHOWN,
        thresholds=(lambda name: thresholds(ctx, rules.rules, name)) if rules else None,
        value_text=value_text,
        page_no=page_no,
        pages=pages,
        link=link,
        history_path=history_path,
        members_path=members_path,
        csv_url=f"/console/guide-classes.csv?{urlencode(shown)}",
    )


@router.get("/guide-classes.csv")
async def guide_classes_csv(request: Request) -> Response:
    """The guides' current classes as filtered, with every metric of the snapshot."""
    ctx = await authenticated(request, PAGE)
    found, _, _ = await run_in_threadpool(_current, ctx)
    _, rows = _filtered(ctx, found)
    metrics = sorted({k for c in rows for k in c.metrics if k != "spam_risk"})
    header = (
        "guide_id",
        "store_id",
        "class",
        "spam_risk",
        "since",
        "until",
        "rules_version",
        "computed_at",
        *metrics,
    )
    return csv_answer(
        "guide-classes.csv",
        header,
        [
            (
                c.guide_id,
                c.store_id,
                c.guide_class,
                c.spam_risk,
                c.period_start,
                c.period_end,
                c.rules_version,
                c.computed_at,
                *(c.metrics.get(m) for m in metrics),
            )
            for c in rows
        ],
    )


def _history(ctx: Ctx, guide_id: str) -> tuple[list[cls.GuideClass], tuple[Any, Any]]:
    assert ctx.who is not None
    with ctx.svc.engine.connect() as conn:
        guides = guides_of(conn, ctx.who.group_id)
        if guide_id not in guides:
            raise ConsoleExit(404)
        found = cls.classes(conn, ctx.who.group_id, guide_id=guide_id, history=True)
    return found, guides[guide_id]


@router.get("/guide-classes/{guide_id}")
async def guide_class_history(guide_id: str, request: Request) -> Response:
    """One guide's class per period, latest first, with the metrics and rules version each
    was decided on, and the playbook of its current class."""
    ctx = await authenticated(request, PAGE)
    found, (store_id, alias) = await run_in_threadpool(_history, ctx, guide_id[:64])
    page, page_no, pages = paged(found, request.query_params.get("page"))
    path = history_path(guide_id[:64])
    return render(
        ctx,
        "guide_class.html",
        guide_id=guide_id[:64],
        alias=alias,
        store_id=store_id,
        current=found[0] if found else None,
        rows=page,
        total=len(found),
        shown_metrics=SHOWN,
        value_text=value_text,
        page_no=page_no,
        pages=pages,
        link=lambda page: f"{path}?{urlencode({'page': page})}",
        members_path=members_path,
    )


async def _figure(ctx: Ctx, guide_id: str) -> tuple[cls.GuideClass, str, list[int]]:
    """The class period the query names and the members behind its figure; 404 for a
    figure or a period the guide's history has not."""
    params = ctx.request.query_params
    figure = params.get("figure", "")
    if figure not in MEMBER_FIGURES:
        raise ConsoleExit(404)
    try:
        since_raw, until_raw = params.get("period", "").split("/")
        since, until = datetime.fromisoformat(since_raw), datetime.fromisoformat(until_raw)
    except ValueError:
        raise ConsoleExit(404) from None
    found, _ = await run_in_threadpool(_history, ctx, guide_id[:64])
    period = [c for c in found if (c.period_start, c.period_end) == (since, until)]
    if not period:
        raise ConsoleExit(404)
    assert ctx.who is not None
    group = ctx.who.group_id

    def work() -> list[int]:
        with ctx.svc.engine.connect() as conn:
            ids = hq_reads.class_figure_members(conn, group, guide_id[:64], since, until, figure)
        return sorted(ids)

    return period[0], figure, await run_in_threadpool(work)


@router.get("/guide-classes/{guide_id}/members")
async def class_members(guide_id: str, request: Request) -> Response:
    ctx = await authenticated(request, PAGE)
    c, figure, ids = await _figure(ctx, guide_id)
    keep = period_query(c, figure)
    path = f"{history_path(c.guide_id)}/members"
    title = ctx.t(
        "gc.members_title",
        guide=c.guide_id,
        figure=ctx.t("gm." + figure),
        since=f"{c.period_start:%Y-%m-%d}",
        until=f"{c.period_end:%Y-%m-%d}",
    )
    return await member_lists.show_list(
        ctx,
        path,
        title,
        among=ids,
        keep=keep,
        csv_path=f"{path}.csv",
        back=(history_path(c.guide_id), c.guide_id),
    )


@router.get("/guide-classes/{guide_id}/members.csv")
async def class_members_csv(guide_id: str, request: Request) -> Response:
    ctx = await authenticated(request, PAGE)
    _, figure, ids = await _figure(ctx, guide_id)
    return await member_lists.export(ctx, ids, f"guide-{figure}.csv")
