"""HQ's commission pages (issue #19): a month's statements per store and per guide (accrued,
clawed back, earned, frozen and payable at the month's end, paid), a guide's statement
lines (the ledger's postings: order, kind, amount, the rule it was decided on) beside
their sum, and the members whose orders made the commission. Every figure is read from the
ledger through `guides.commission_statements` and `guides.hq_reads`, never recomputed.

HQ only: the group-wide statement is HQ's (`commission:read` holds for stores and guides
too, but the API answers them only their own stores' and their own statements; their own
pages are the store manager's and the guide's)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import Connection, text

from siyu.console import member_lists
from siyu.console.guide_common import bad_input, csv_answer, guides_of, paged
from siyu.console.web import ConsoleExit, Ctx, authenticated, render
from siyu.errors import ValidationError
from siyu.guides import hq_reads
from siyu.guides.commission_statements import (
    Line,
    Released,
    Statement,
    Totals,
    month_range,
    release_rows,
    statement,
)
from siyu.guides.models import CM_ACCRUE, CM_FROZEN, CM_PAY, CM_PAYABLE, CM_RELEASE
from siyu.store.times import stored_now, stored_time

router = APIRouter()

PAGE = "commission"
_MONTH = re.compile(r"^\d{4}-\d{2}$")
_GUIDE = re.compile(r"^[^\x00-\x1f/]{1,64}$")
# the latest accrual before a month: the last month whose commission was earned
_LATEST = text(
    "SELECT MAX(p.business_at) FROM ledger_postings p JOIN guide_accounts ga "
    "ON ga.group_id = p.group_id AND ga.account_no = -p.member_id "
    f"WHERE p.group_id = :g AND p.member_id < 0 AND p.kind = '{CM_ACCRUE}' "
    "AND p.business_at < :before"
)


def guide_path(guide_id: str, month: str) -> str:
    return f"/console/commission/{quote(guide_id, safe='')}?{urlencode({'month': month})}"


def release_path(guide_id: str, posting_id: int, month: str) -> str:
    """The orders behind a release line (one posting per guide and run)."""
    return f"/console/commission/{quote(guide_id, safe='')}/release/{posting_id}?" + urlencode(
        {"month": month}
    )


def buyers_path(month: str, csv: bool = False, **of: str) -> str:
    """The members behind a buyers count: of a guide, a store, or the whole month (named
    `of_guide`, `of_store`: `guide` and `store` are the member list's own criteria)."""
    query = urlencode({"month": month, **{f"of_{k}": v for k, v in of.items() if v}})
    return f"/console/commission-buyers{'.csv' if csv else ''}?{query}"


def last_full_month(ctx: Ctx) -> str:
    """The latest month before this one in which commission was accrued (a brand's data may
    stop before today; a later month holding only releases of it is not a statement yet);
    none: the calendar's last month."""
    assert ctx.who is not None
    now = stored_now()
    this_month = datetime(now.year, now.month, 1)
    with ctx.svc.engine.connect() as conn:
        latest = conn.execute(_LATEST, {"g": ctx.who.group_id, "before": this_month}).scalar()
    if latest is None:
        prev = datetime(now.year - (now.month == 1), (now.month - 2) % 12 + 1, 1)
        return f"{prev:%Y-%m}"
    return f"{stored_time(latest):%Y-%m}"


def asked_month(ctx: Ctx) -> str:
    """The query's month (YYYY-MM), else the last full month; a ValidationError names it."""
    raw = ctx.request.query_params.get("month")
    if raw is None or raw == "":
        return last_full_month(ctx)
    if not _MONTH.match(raw):
        raise ValidationError("month", "a month as YYYY-MM")
    month_range(raw)  # a month 13 is refused there
    return raw


def step(month: str, by: int) -> str:
    year, mon = int(month[:4]), int(month[5:])
    index = year * 12 + mon - 1 + by
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def figures(t: Totals) -> dict[str, int]:
    """A statement's figures as the pages and the CSV show them."""
    return {
        "accrued_fen": t.accrued_fen,
        "clawed_back_fen": t.clawed_back_fen,
        "commission_fen": t.commission_fen,
        "frozen_fen": t.closing.get(CM_FROZEN, 0),
        "payable_fen": t.closing.get(CM_PAYABLE, 0),
        "paid_fen": t.paid_fen,
    }


FIGURES = tuple(figures(Totals()))


def _month_report(ctx: Ctx, month: str) -> dict[str, Any]:
    assert ctx.who is not None
    group = ctx.who.group_id
    with ctx.svc.engine.connect() as conn:
        whole = statement(conn, group, month, with_lines=False)
        stores = hq_reads.store_totals(conn, group, month)
        buyers = hq_reads.buyers(conn, group, month)
        guides = guides_of(conn, group)
    by_guide = sorted(whole.by_guide.items(), key=lambda kv: (-kv[1].commission_fen, kv[0]))
    guide_rows = [
        {
            "guide_id": g,
            "store_id": guides.get(g, (None, None))[0],
            "alias": guides.get(g, (None, None))[1],
            "buyers": len(buyers.by_guide.get(g, ())),
            **figures(t),
        }
        for g, t in by_guide
    ]
    store_rows = [
        {"store_id": s, "buyers": len(buyers.by_store.get(s, ())), **figures(t)}
        for s, t in sorted(stores.items(), key=lambda kv: kv[0] or "")
    ]
    return {
        "guides": guide_rows,
        "stores": store_rows,
        "total": {"buyers": len(buyers.all), **figures(whole.totals)},
    }


@router.get("/commission")
async def commission(request: Request) -> Response:
    ctx = await authenticated(request, PAGE)
    try:
        month = await run_in_threadpool(asked_month, ctx)
    except ValidationError as exc:
        return bad_input(ctx, str(exc))
    report = await run_in_threadpool(_month_report, ctx, month)
    params = request.query_params
    guides, page_no, pages = paged(report["guides"], params.get("page"))
    stores, spage_no, spages = paged(report["stores"], params.get("spage"))

    def link(**change: Any) -> str:
        asked = {"month": month, "page": page_no, "spage": spage_no, **change}
        return f"/console/commission?{urlencode({k: v for k, v in asked.items() if v != 1})}"

    return render(
        ctx,
        "commission.html",
        month=month,
        prev_month=step(month, -1),
        next_month=step(month, 1),
        guides=guides,
        stores=stores,
        total=report["total"],
        guide_count=len(report["guides"]),
        store_count=len(report["stores"]),
        page_no=page_no,
        pages=pages,
        spage_no=spage_no,
        spages=spages,
        link=link,
        slink=lambda page: link(spage=page),
        guide_path=lambda g: guide_path(g, month),
        buyers_path=lambda **of: buyers_path(month, **of),
        csv_url=lambda of: f"/console/commission.csv?{urlencode({'month': month, 'of': of})}",
    )


@router.get("/commission.csv")
async def commission_csv(request: Request) -> Response:
    """The month's statements per guide (`of=guides`, the default) or per store."""
    ctx = await authenticated(request, PAGE)
    try:
        month = await run_in_threadpool(asked_month, ctx)
    except ValidationError as exc:
        return bad_input(ctx, str(exc))
    of = "stores" if request.query_params.get("of") == "stores" else "guides"
    report = await run_in_threadpool(_month_report, ctx, month)
    keys = ("guide_id", "store_id") if of == "guides" else ("store_id",)
    header = ("month", *keys, *FIGURES, "buyers")
    rows = [
        (month, *(r[k] for k in keys), *(r[f] for f in FIGURES), r["buyers"]) for r in report[of]
    ]
    return csv_answer(f"commission-{month}-{of}.csv", header, rows)


# --- one guide's statement --------------------------------------------------------------------


def _guide_statement(ctx: Ctx, guide_id: str, month: str) -> tuple[Statement, Any, Any]:
    assert ctx.who is not None
    group = ctx.who.group_id
    with ctx.svc.engine.connect() as conn:
        known = _known_guide(conn, group, guide_id)
        found = statement(conn, group, month, guide_id=guide_id)
        orders = [x.reference for x in found.lines if x.reference and x.kind != CM_PAY]
        terms = hq_reads.order_terms(conn, group, guide_id, orders)
    return found, known, terms


def _known_guide(conn: Connection, group_id: str, guide_id: str) -> Any:
    """The guide's (store, alias); a 404 for a guide the brand does not have."""
    known = guides_of(conn, group_id)
    if guide_id not in known:
        raise ConsoleExit(404)
    return known[guide_id]


def _guide_or_404(guide_id: str) -> str:
    if not _GUIDE.match(guide_id):
        raise ConsoleExit(404)
    return guide_id


@router.get("/commission/{guide_id}")
async def guide_commission(guide_id: str, request: Request) -> Response:
    """The guide's statement lines of the month, paged, their sum beside the statement's
    total (they are the same entries, so they agree)."""
    ctx = await authenticated(request, PAGE)
    guide_id = _guide_or_404(guide_id)
    try:
        month = await run_in_threadpool(asked_month, ctx)
    except ValidationError as exc:
        return bad_input(ctx, str(exc))
    found, (store_id, alias), terms = await run_in_threadpool(
        _guide_statement, ctx, guide_id, month
    )
    lines, page_no, pages = paged(found.lines, request.query_params.get("page"))
    sums = {f: sum(getattr(x, f) for x in found.lines) for f in _LINE_FIGURES}
    return render(
        ctx,
        "commission_guide.html",
        month=month,
        prev_month=step(month, -1),
        next_month=step(month, 1),
        guide_id=guide_id,
        alias=alias,
        store_id=store_id,
        totals=figures(found.totals),
        sums=sums,
        line_count=len(found.lines),
        lines=lines,
        terms=terms,
        page_no=page_no,
        pages=pages,
        link=lambda page: f"{guide_path(guide_id, month)}&{urlencode({'page': page})}",
        self_path=lambda m: guide_path(guide_id, m),
        release_url=lambda posting: release_path(guide_id, posting, month),
        buyers_url=buyers_path(month, guide=guide_id),
        buyers=len({t.member_id for t in terms.values() if t.member_id is not None}),
        csv_url=f"/console/commission/{quote(guide_id, safe='')}/lines.csv?"
        + urlencode({"month": month}),
    )


_LINE_FIGURES = ("commission_fen", "frozen_fen", "payable_fen", "paid_fen")


@router.get("/commission/{guide_id}/lines.csv")
async def guide_commission_csv(guide_id: str, request: Request) -> Response:
    ctx = await authenticated(request, PAGE)
    guide_id = _guide_or_404(guide_id)
    try:
        month = await run_in_threadpool(asked_month, ctx)
    except ValidationError as exc:
        return bad_input(ctx, str(exc))
    found, _, terms = await run_in_threadpool(_guide_statement, ctx, guide_id, month)
    header = (
        "posting_id",
        "business_at",
        "kind",
        "order_id",
        "store_id",
        "rule",
        "rules_version",
        "basis",
        "member_id",
        *_LINE_FIGURES,
        "orders",
    )

    def row(x: Line) -> list[Any]:
        term = terms.get(x.reference or "")
        decided = (term.rule, term.rules_version, term.basis, term.member_id) if term else ()
        return [
            x.posting_id,
            x.business_at,
            x.kind,
            x.reference,
            x.store_id,
            *(decided or (None,) * 4),
            *(getattr(x, f) for f in _LINE_FIGURES),
            x.orders if x.kind == CM_RELEASE else None,
        ]

    return csv_answer(f"commission-{month}-{guide_id}.csv", header, [row(x) for x in found.lines])


def _released(ctx: Ctx, guide_id: str, posting_id: int) -> tuple[list[Released], Any]:
    assert ctx.who is not None
    group = ctx.who.group_id
    with ctx.svc.engine.connect() as conn:
        known = _known_guide(conn, group, guide_id)
        rows = release_rows(conn, group, posting_id, guide_id=guide_id)
    if not rows:  # not a release posting of this guide
        raise ConsoleExit(404)
    return rows, known


@router.get("/commission/{guide_id}/release/{posting_id}.csv")
async def guide_release_csv(guide_id: str, posting_id: int, request: Request) -> Response:
    """Every order behind one release line, as the page lists them."""
    ctx = await authenticated(request, PAGE)
    guide_id = _guide_or_404(guide_id)
    rows, _ = await run_in_threadpool(_released, ctx, guide_id, posting_id)
    header = ["order_id", "guide_id", "freeze_until", "released_fen"]
    body = [[r.order_id, r.guide_id, r.freeze_until, r.released_fen] for r in rows]
    return csv_answer(f"commission-release-{guide_id}-{posting_id}.csv", header, body)


# declared after its .csv: a path ending .csv must not reach this page (posting_id: int)
@router.get("/commission/{guide_id}/release/{posting_id}")
async def guide_release(guide_id: str, posting_id: int, request: Request) -> Response:
    """The orders behind one release line (a release is one posting per guide and run):
    what was still frozen of each order, its freeze's end, each opening its attribution;
    their sum is the line's payable."""
    ctx = await authenticated(request, PAGE)
    guide_id = _guide_or_404(guide_id)
    try:
        month = await run_in_threadpool(asked_month, ctx)
    except ValidationError as exc:
        return bad_input(ctx, str(exc))
    rows, (_, alias) = await run_in_threadpool(_released, ctx, guide_id, posting_id)
    shown, page_no, pages = paged(rows, request.query_params.get("page"))
    here = release_path(guide_id, posting_id, month)
    return render(
        ctx,
        "commission_release.html",
        month=month,
        guide_id=guide_id,
        alias=alias,
        posting_id=posting_id,
        rows=shown,
        count=len(rows),
        total=sum(r.released_fen for r in rows),
        page_no=page_no,
        pages=pages,
        link=lambda page: f"{here}&{urlencode({'page': page})}",
        csv_url=here.replace("?", ".csv?", 1),
        back_url=guide_path(guide_id, month),
    )


# --- the members behind a buyers count --------------------------------------------------------


def _buyer_ids(ctx: Ctx, month: str, guide: str | None, store: str | None) -> list[int]:
    assert ctx.who is not None
    with ctx.svc.engine.connect() as conn:
        found = hq_reads.buyers(conn, ctx.who.group_id, month)
    if guide:
        return sorted(found.by_guide.get(guide, ()))
    if store:
        return sorted(found.by_store.get(store, ()))
    return sorted(found.all)


async def _buyers(ctx: Ctx) -> tuple[str, dict[str, str], list[int]]:
    params = ctx.request.query_params
    month = await run_in_threadpool(asked_month, ctx)
    guide, store = params.get("of_guide", "")[:64], params.get("of_store", "")[:64]
    ids = await run_in_threadpool(_buyer_ids, ctx, month, guide or None, store or None)
    keep = {
        "month": month,
        **({"of_guide": guide} if guide else {}),
        **({"of_store": store} if store else {}),
    }
    return month, keep, ids


@router.get("/commission-buyers")
async def commission_buyers(request: Request) -> Response:
    """The members whose orders made (or took back) the month's commission: of a guide,
    of a store, or all."""
    ctx = await authenticated(request, PAGE)
    try:
        month, keep, ids = await _buyers(ctx)
    except ValidationError as exc:
        return bad_input(ctx, str(exc))
    whose = keep.get("of_guide") or keep.get("of_store") or ctx.t("cm.all")
    return await member_lists.show_list(
        ctx,
        "/console/commission-buyers",
        ctx.t("cm.buyers_title", month=month, whose=whose),
        among=ids,
        keep=keep,
        csv_path="/console/commission-buyers.csv",
        back=(f"/console/commission?{urlencode({'month': month})}", ctx.t("nav.commission")),
    )


@router.get("/commission-buyers.csv")
async def commission_buyers_csv(request: Request) -> Response:
    ctx = await authenticated(request, PAGE)
    try:
        month, _, ids = await _buyers(ctx)
    except ValidationError as exc:
        return bad_input(ctx, str(exc))
    return await member_lists.export(ctx, ids, f"commission-buyers-{month}.csv")
