"""Why an order is its guide's (issue #19): the basis attribution decided it on (the last
share touch in its window, the till's guide, or the member's protected own guide) with
the evidence (share code, kind and target; the touch and who opened it; the binding and
its rule), the rules in force (window, protection), and the commission accrued on it.
People are shown masked whatever the role: the page explains a decision, it is not a way
to reach anyone (the member's own page is one click away, in the role's own masks).

HQ only: `attribution:read` is HQ's and a guide's for its own orders; a guide's phone pages
are another face."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import text

from siyu.console.commission_pages import guide_path
from siyu.console.web import Ctx, authenticated, render
from siyu.guides import attribution, hq_reads

router = APIRouter()

PAGE = "attribution"
_ACCRUAL = text(
    "SELECT rule, rules_version, commission_fen, basis_fen, freeze_until FROM "
    "commission_accruals WHERE group_id = :g AND order_id = :o"
)


def attribution_path(order_id: str) -> str:
    return f"/console/attribution/{quote(order_id, safe='')}"


def _read(ctx: Ctx, order_id: str) -> dict[str, Any] | None:
    assert ctx.who is not None
    group = ctx.who.group_id
    with ctx.svc.engine.connect() as conn:
        why = attribution.explain(conn, group, order_id)
        if why is None:
            return None
        opener = None
        if why.touch_id is not None:
            opener = hq_reads.touch_opener(conn, group, why.touch_id)
        return {
            "why": why,
            "buyer": hq_reads.order_buyer(conn, group, order_id),
            "opener": opener,
            "accrual": conn.execute(_ACCRUAL, {"g": group, "o": order_id}).first(),
        }


@router.get("/attribution/{order_id}")
async def order_attribution(order_id: str, request: Request) -> Response:
    ctx = await authenticated(request, PAGE)
    found = await run_in_threadpool(_read, ctx, order_id[:128])
    if found is None:
        return render(
            ctx,
            "error.html",
            status=404,
            title=ctx.t("attr.title", order=order_id[:128]),
            text=ctx.t("attr.none"),
        )
    why = found["why"]
    return render(
        ctx,
        "attribution.html",
        order_id=order_id[:128],
        commission_url=guide_path(why.guide_id, f"{why.ordered_at:%Y-%m}"),
        **found,
    )
