"""A guide's own pages on its phone and a store manager's guides (issue #19, "Faces").

- `/console/my-commission?month=`: the guide's statement of the month (a guide key reads
  only its own: the guide is the key's, never a parameter); its lines page and export.
- `/console/my-class`: its current A/B/C class, the metrics behind it, its playbook and
  the training meant for it, each with a button to mark it done.
- `/console/my-guides?month=`: a store key's guides with the month's figures; each opens
  `/console/my-guides/{guide}` (its statement at the store) and its members in the
  store's scope. Another store's guide is a 403, an unknown one a 404.

The reads are `guide_own_views`; these handlers only scope, page and render."""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from siyu.console import guide_own_views as views
from siyu.console import member_lists
from siyu.console.web import ConsoleExit, Ctx, authenticated, posted_form, redirect, render, secure
from siyu.errors import ValidationError
from siyu.guides.errors import TrainingNotFound
from siyu.guides.training import complete

router = APIRouter()
PER_PAGE = 50
METRICS = (  # what the class page shows, in the order E-Land's stages measure them
    ("sales_fen", "cny"),
    ("orders", "int"),
    ("shares", "int"),
    ("share_opens", "int"),
    ("share_openers", "int"),
    ("carted_openers", "int"),
    ("conversion_bp", "bp"),
    ("refund_rate_bp", "bp"),
    ("members_served", "int"),
    ("task_completion_bp", "bp"),
)


def _month(ctx: Ctx) -> tuple[str, str | None]:
    """The month asked for (this month when none), or this month and the error."""
    try:
        return views.parse_month(ctx.request.query_params.get("month")), None
    except ValidationError as exc:
        return views.parse_month(None), f"{ctx.t('own.bad_month')} {exc}"


def _page_no(ctx: Ctx) -> int:
    raw = ctx.request.query_params.get("page") or "1"
    return int(raw) if raw.isdigit() and 0 < int(raw) <= 10**6 else 1


def _read(ctx: Ctx, fn: Any, *args: Any) -> Any:
    with ctx.svc.engine.connect() as conn:
        return fn(conn, *args)


async def _statement_page(
    ctx: Ctx, path: str, csv_path: str, guide_id: str, store_id: str | None, **values: Any
) -> Response:
    assert ctx.who is not None
    month, error = _month(ctx)
    view = await run_in_threadpool(
        _read, ctx, views.statement_view, ctx.who.group_id, guide_id, month, store_id
    )
    page_no = _page_no(ctx)
    pages = max(1, -(-len(view.lines) // PER_PAGE))
    shown = view.lines[(page_no - 1) * PER_PAGE : page_no * PER_PAGE]

    def month_url(other: str, number: int = 1) -> str:
        query = {"month": other, **({"page": str(number)} if number > 1 else {})}
        return f"{path}?{urlencode(query)}"

    guide_title = values.get("title_guide")
    heading = (
        ctx.t("own.commission.guide_title", guide=guide_title)
        if guide_title
        else ctx.t("own.commission.title")
    )
    return render(
        ctx,
        "my_commission.html",
        heading=heading,
        status=422 if error else 200,
        error=error,
        s=view,
        lines=shown,
        page_no=page_no,
        pages=pages,
        month_url=month_url,
        prev_month=views.shift_month(month, -1),
        next_month=views.shift_month(month, 1),
        csv_url=f"{csv_path}?{urlencode({'month': month})}",
        **values,
    )


async def _statement_csv(ctx: Ctx, guide_id: str, store_id: str | None) -> Response:
    assert ctx.who is not None
    try:
        month = views.parse_month(ctx.request.query_params.get("month"))
    except ValidationError as exc:
        return secure(Response(f"{exc}\n", status_code=422, media_type="text/plain"))
    view = await run_in_threadpool(
        _read, ctx, views.statement_view, ctx.who.group_id, guide_id, month, store_id
    )
    out = io.StringIO()
    writer = csv.writer(out)
    header = ["posting_id", "order_id", "at", "amount_fen", "status", "freeze_until", "orders"]
    writer.writerow(header)
    for x in view.lines:
        until = "" if x.freeze_until is None else x.freeze_until.isoformat()
        orders = x.orders or ""  # a release: one line per guide and run, of this many orders
        row = [x.posting_id, x.order_id or "", x.at.isoformat(), x.amount_fen, x.status, until]
        writer.writerow([*row, orders])
    response = Response(out.getvalue(), media_type="text/csv; charset=utf-8")
    name = f"commission-{guide_id}-{month}.csv"
    response.headers["Content-Disposition"] = f'attachment; filename="{quote(name)}"'
    return secure(response)


# --- the guide's own ---------------------------------------------------------------------


def _own_guide(ctx: Ctx) -> str:
    assert ctx.who is not None
    if ctx.who.guide_id is None:  # a guide key always names its guide; refuse if not
        raise ConsoleExit(403)
    return ctx.who.guide_id


@router.get("/my-commission")
async def my_commission(request: Request) -> Response:
    """The guide's own statement of a month."""
    ctx = await authenticated(request, "my_commission")
    guide = _own_guide(ctx)
    return await _statement_page(
        ctx, "/console/my-commission", "/console/my-commission.csv", guide, None, title_guide=None
    )


@router.get("/my-commission.csv")
async def my_commission_csv(request: Request) -> Response:
    ctx = await authenticated(request, "my_commission")
    return await _statement_csv(ctx, _own_guide(ctx), None)


@router.get("/my-class")
async def my_class(request: Request) -> Response:
    """The guide's class, its metrics and playbook, and its training."""
    ctx = await authenticated(request, "my_class")
    assert ctx.who is not None
    guide = _own_guide(ctx)
    view = await run_in_threadpool(_read, ctx, views.class_view, ctx.who.group_id, guide)
    done = ctx.request.query_params.get("done", "")[:64]
    return render(
        ctx,
        "my_class.html",
        c=view.current,
        training=view.training,
        metrics=METRICS,
        done=done if any(i.code == done for i in view.training) else None,
    )


@router.post("/my-class/training/{code}/complete")
async def my_training_done(code: str, request: Request) -> Response:
    """The guide marks a training item done (a form's POST, CSRF-checked)."""
    ctx = await authenticated(request, "my_class")
    assert ctx.who is not None
    await posted_form(request)
    guide = _own_guide(ctx)
    try:
        await run_in_threadpool(complete, ctx.svc.engine, ctx.who.group_id, guide, code)
    except TrainingNotFound:
        raise ConsoleExit(404) from None
    return redirect(ctx, f"/console/my-class?{urlencode({'done': code})}#training")


# --- a store manager's guides ------------------------------------------------------------


@router.get("/my-guides")
async def my_guides(request: Request) -> Response:
    """The key's stores' guides with the month's figures."""
    ctx = await authenticated(request, "my_guides")
    assert ctx.who is not None
    month, error = _month(ctx)
    rows = await run_in_threadpool(
        _read, ctx, views.store_guides, ctx.who.group_id, ctx.who.stores, month
    )
    return render(
        ctx,
        "my_guides.html",
        status=422 if error else 200,
        error=error,
        rows=rows,
        month=month,
        month_url=lambda m: f"/console/my-guides?{urlencode({'month': m})}",
        prev_month=views.shift_month(month, -1),
        next_month=views.shift_month(month, 1),
        guide_url=_guide_path,
    )


def _guide_path(guide_id: str) -> str:
    return f"/console/my-guides/{quote(guide_id, safe='')}"


async def _store_guide(ctx: Ctx, guide_id: str) -> str:
    """The guide's store when it is one of the key's (404: no such guide; 403: another
    store's)."""
    assert ctx.who is not None
    if not 0 < len(guide_id) <= 64:
        raise ConsoleExit(404)
    home = await run_in_threadpool(_read, ctx, views.guide_home, ctx.who.group_id, guide_id)
    if home is None:
        raise ConsoleExit(404)
    if home not in ctx.who.stores:
        raise ConsoleExit(403)
    return home


@router.get("/my-guides/{guide_id}")
async def my_guide(guide_id: str, request: Request) -> Response:
    """One of the store's guides: its statement at the store, links to its members."""
    ctx = await authenticated(request, "my_guides")
    store = await _store_guide(ctx, guide_id)
    path = _guide_path(guide_id)
    csv_path = f"{path}/commission.csv"
    return await _statement_page(ctx, path, csv_path, guide_id, store, title_guide=guide_id)


@router.get("/my-guides/{guide_id}/commission.csv")
async def my_guide_csv(guide_id: str, request: Request) -> Response:
    ctx = await authenticated(request, "my_guides")
    store = await _store_guide(ctx, guide_id)
    return await _statement_csv(ctx, guide_id, store)


async def _bound(ctx: Ctx, guide_id: str) -> list[int] | None:
    """`?figure=bound`: the members bound to the guide now that the store sees; else None
    (the guide's members, by the list's `guide` criterion)."""
    assert ctx.who is not None
    if ctx.request.query_params.get("figure") != "bound":
        return None
    pairs = await run_in_threadpool(
        _read, ctx, views.bound_members, ctx.who.group_id, ctx.who.stores, guide_id
    )
    return [m for _, m in pairs]


@router.get("/my-guides/{guide_id}/members")
async def my_guide_members(guide_id: str, request: Request) -> Response:
    """The guide's members the store sees; `?figure=bound`: those bound to it now."""
    ctx = await authenticated(request, "my_guides")
    await _store_guide(ctx, guide_id)
    path, back = f"{_guide_path(guide_id)}/members", (_guide_path(guide_id), guide_id)
    among = await _bound(ctx, guide_id)
    if among is not None:
        return await member_lists.show_list(
            ctx,
            path,
            ctx.t("own.bound_members", guide=guide_id),
            among=among,
            keep={"figure": "bound"},
            csv_path=f"{path}.csv",
            back=back,
        )
    return await member_lists.show_list(
        ctx,
        path,
        ctx.t("guides.members", guide=guide_id),
        fixed={"guide": guide_id},
        csv_path=f"{path}.csv",
        back=back,
    )


@router.get("/my-guides/{guide_id}/members.csv")
async def my_guide_members_csv(guide_id: str, request: Request) -> Response:
    ctx = await authenticated(request, "my_guides")
    await _store_guide(ctx, guide_id)
    among = await _bound(ctx, guide_id)
    if among is None and request.query_params.get("guide") != guide_id:
        raise ConsoleExit(404)  # the list's link names its guide; no other guide here
    return await member_lists.export(ctx, among=among, filename=f"{quote(guide_id)}-members.csv")
