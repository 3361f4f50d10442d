"""Receipts in the console (issue #17): the review queue (pending first, oldest first;
by status and store; paged and exported as CSV) under the day's figures, and one
receipt with Accept and Reject.

The page opens for the roles the API's `GET /v1/receipts` serves (`receipts:list`); a
decision needs `receipts:review` (HQ admins, stores), so an analyst reads without buttons
and a decision it posts anyway is refused. A store key sees and decides its own stores'
receipts only: the queue is read within its stores, another store's receipt is not found
(404), and `review.decide` is given its stores, so a forged form is refused there too.
The decision is the service's (`receipts.review.decide`): its refusal (a reason missing
or too long, a receipt decided already) is shown in the form. The photo's reference is
shown to the roles that see personal data only, as the API answers it, and as a link
only when it is a web address (the console never fetches it).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from siyu.auth.principal import Role
from siyu.console.campaign_pages import coupon_names
from siyu.console.i18n import fmt_cny
from siyu.console.segment_pages import page_number, read
from siyu.console.web import (
    ConsoleExit,
    Ctx,
    authenticated,
    need,
    posted_form,
    redirect,
    render,
    secure,
)
from siyu.errors import ForbiddenError, NotFoundError, ValidationError
from siyu.receipts import queue, reasons, records, rules
from siyu.receipts.errors import ReceiptDecided
from siyu.receipts.records import Receipt
from siyu.receipts.review import Decision, decide
from siyu.store.times import stored_now

router = APIRouter()

PAGE = "receipts"
PER_PAGE = 50
EXPORT_BATCH = 1000
SHOWN_STATUSES = ("pending", "accepted", "rejected", "duplicate")
FORM_BYTES = 16 * 1024  # a 500-character reason in Chinese, percent-encoded
_MAX_ID = 2**62
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def receipt_path(receipt_id: int) -> str:
    return f"/console/receipts/{receipt_id}"


def scope_of(ctx: Ctx) -> tuple[str, ...] | None:
    """The stores the principal reviews: a store key its own, HQ any (None)."""
    assert ctx.who is not None
    return ctx.who.stores if ctx.who.role == Role.STORE else None


def _asked(ctx: Ctx) -> tuple[dict[str, str], queue.Filter]:
    """The query's filter (status, store, decided today), within the principal's stores;
    a store key asking for another store is refused (403), as the API refuses it."""
    params = ctx.request.query_params
    status = params.get("status", "")
    status = status if status in SHOWN_STATUSES else ""
    store = params.get("store", "").strip()[:64]
    today = params.get("decided") == "today" and status in ("accepted", "rejected")
    stores = scope_of(ctx)
    if store:
        if stores is not None and store not in stores:
            raise ConsoleExit(403)
        stores = (store,)
    shown = {"status": status, "store": store, "decided": "today" if today else ""}
    since = queue.day_start(stored_now()) if today else None
    return {k: v for k, v in shown.items() if v}, queue.Filter(status or None, stores, since)


@router.get("/receipts")
async def receipt_list(request: Request) -> Response:
    ctx = await authenticated(request, PAGE)
    assert ctx.who is not None
    shown, picked = _asked(ctx)
    group, scope = ctx.who.group_id, scope_of(ctx)
    total: int = await read(ctx, queue.count, group, picked)
    pages = max(1, -(-total // PER_PAGE))
    page_no = min(page_number(request.query_params.get("page")), pages)
    rows: list[queue.Row] = await read(
        ctx, queue.page, group, picked, PER_PAGE, (page_no - 1) * PER_PAGE
    )
    figures: queue.Summary = await read(
        ctx, queue.summary, group, scope, queue.day_start(stored_now())
    )

    def link(**change: Any) -> str:
        asked = {**shown, **{k: str(v) for k, v in change.items()}}
        asked = {k: v for k, v in asked.items() if v}
        return f"/console/receipts?{urlencode(asked)}" if asked else "/console/receipts"

    return render(
        ctx,
        "receipts.html",
        rows=rows,
        total=total,
        page_no=page_no,
        pages=pages,
        link=link,
        shown=shown,
        statuses=SHOWN_STATUSES,
        figures=figures,
        stores=scope,
        csv_url=f"/console/receipts.csv?{urlencode(shown)}",
        reason_of=reasons.read,
        reason_text=lambda x: reason_text(ctx, x),
        reviewer=lambda by: reviewer(ctx, by),
        image=lambda ref: image(ctx, ref),
        masked=not ctx.who.sees_personal_data,
    )


@router.get("/receipts.csv")
async def receipt_csv(request: Request) -> Response:
    """The queue as filtered, every receipt in the page's order, streamed; money in
    integer fen, names masked, the photo's reference only for roles that see it."""
    ctx = await authenticated(request, PAGE)
    assert ctx.who is not None
    _, picked = _asked(ctx)
    group, engine, clear = ctx.who.group_id, ctx.svc.engine, ctx.who.sees_personal_data

    def batch(offset: int) -> list[queue.Row]:
        with engine.connect() as conn:
            return queue.page(conn, group, picked, EXPORT_BATCH, offset)

    async def chunks() -> AsyncIterator[bytes]:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        yield ("\ufeff" + out.getvalue()).encode("utf-8")
        offset = 0
        while rows := await run_in_threadpool(batch, offset):
            out.seek(0)
            out.truncate()
            for row in rows:
                writer.writerow([_cell(v) for v in csv_row(ctx, row, clear)])
            yield out.getvalue().encode("utf-8")
            offset += len(rows)

    response = StreamingResponse(chunks(), media_type="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = 'attachment; filename="receipts.csv"'
    return secure(response)


CSV_COLUMNS = (
    "receipt_id",
    "status",
    "store_id",
    "receipt_no",
    "amount_fen",
    "purchased_at",
    "member_id",
    "name",
    "reasons",
    "image_ref",
    "reviewer",
    "reviewed_at",
    "reward_points",
    "reward_coupon",
)


def csv_row(ctx: Ctx, row: queue.Row, clear: bool) -> list[Any]:
    r = row.receipt
    return [
        r.receipt_id,
        r.status,
        r.store_id,
        r.receipt_no,
        r.amount_fen,
        r.purchased_at,
        r.member_id,
        row.name_masked,
        "; ".join(reason_text(ctx, reasons.read(x)) for x in r.reasons),
        r.image_ref if clear else None,
        r.reviewer,
        r.reviewed_at,
        r.reward_points,
        r.reward_coupon,
    ]


def _cell(value: Any) -> str:
    """A CSV cell a spreadsheet will not run as a formula."""
    if value is None:
        return ""
    text = value.isoformat(sep=" ") if isinstance(value, datetime) else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


async def receipt_or_404(ctx: Ctx, receipt_id: int) -> Receipt:
    """The receipt, if the principal may see it: another store's is not found."""
    assert ctx.who is not None
    if not 0 < receipt_id < _MAX_ID:
        raise ConsoleExit(404)
    try:
        found: Receipt = await read(ctx, records.load, ctx.who.group_id, receipt_id)
    except NotFoundError:
        raise ConsoleExit(404) from None
    scope = scope_of(ctx)
    if scope is not None and found.store_id not in scope:
        raise ConsoleExit(404)
    return found


@router.get("/receipts/{receipt_id}")
async def receipt_page(receipt_id: int, request: Request) -> Response:
    ctx = await authenticated(request, PAGE)
    found = await receipt_or_404(ctx, receipt_id)
    notice = None
    if request.query_params.get("decided") == found.status:
        notice = found.status
    return await show(ctx, found, notice=notice)


async def show(
    ctx: Ctx,
    r: Receipt,
    status: int = 200,
    notice: str | None = None,
    error: str | None = None,
    typed: str = "",
) -> Response:
    assert ctx.who is not None
    rule: rules.RewardRule = await read(ctx, rules.by_id, r.rule_id)
    may_review = ctx.who.may("receipts:review")
    return render(
        ctx,
        "receipt.html",
        status=status,
        r=r,
        rule=rule,
        rule_name=rule.name_zh if ctx.lang == "zh" else rule.name_en,
        tier=rule.tier_for(r.amount_fen),
        reasons=[reasons.read(x) for x in r.reasons],
        reason_text=lambda x: reason_text(ctx, x),
        reviewer=reviewer(ctx, r.reviewer),
        image=image(ctx, r.image_ref),
        coupon_name=await coupon_names(ctx),
        may_decide=may_review and r.status == "pending",
        read_only=not may_review and r.status == "pending",
        notice=notice,
        error=error,
        typed=typed,
        masked=not ctx.who.sees_personal_data,
    )


@router.post("/receipts/{receipt_id}/{action}")
async def decide_receipt(receipt_id: int, action: str, request: Request) -> Response:
    """Accept or reject (a form's POST, CSRF-checked, `receipts:review`); the receipt's
    page again with the service's refusal in the form (422, 409), else with its outcome."""
    ctx = await authenticated(request, PAGE)
    assert ctx.who is not None
    fields = await posted_form(request, FORM_BYTES)
    if action not in ("accept", "reject"):
        raise ConsoleExit(404)
    need(ctx, "receipts:review")
    found = await receipt_or_404(ctx, receipt_id)
    typed = fields.get("reason", "")
    decision: Decision = "accepted" if action == "accept" else "rejected"
    try:
        done = await run_in_threadpool(
            decide,
            ctx.svc.engine,
            ctx.who.group_id,
            found.receipt_id,
            decision,
            f"key:{ctx.who.key_id}",
            typed.strip() or None,
            stores=scope_of(ctx),
        )
    except ValidationError as exc:
        return await show(ctx, found, 422, error=str(exc), typed=typed)
    except ReceiptDecided as exc:
        now = await receipt_or_404(ctx, receipt_id)
        return await show(ctx, now, 409, error=str(exc))
    except ForbiddenError:
        raise ConsoleExit(403) from None
    except NotFoundError:
        raise ConsoleExit(404) from None
    return redirect(ctx, f"{receipt_path(done.receipt_id)}?decided={done.status}")


def reviewer(ctx: Ctx, by: str | None) -> str:
    """Who decided, as people read it: the rule, or an API key (a person's)."""
    if by is None:
        return "-"
    if by == "auto":
        return ctx.t("rcpt.by_rule")
    key = by.removeprefix("key:")
    return ctx.t("reviews.by_key", key_id=key) if key.isdigit() else by


def image(ctx: Ctx, ref: str) -> dict[str, Any] | None:
    """The photo's reference for roles that see personal data (a receipt may show a card
    or a phone): a link when it is a web address, else its words. Never fetched."""
    assert ctx.who is not None
    if not ctx.who.sees_personal_data:
        return None
    return {"ref": ref, "url": ref if ref.lower().startswith(("https://", "http://")) else None}


def reason_text(ctx: Ctx, x: reasons.Reason) -> str:
    """A reason in the page's language (a (near-)duplicate's receipts are linked by the
    template, after these words)."""
    values: dict[str, Any] = {}
    if x.kind == "over_auto_amount":
        values = {"amount": fmt_cny(x.amount_fen), "cap": fmt_cny(x.cap_fen)}
    elif x.kind == "not_home_store":
        values = {"store": ctx.t("rcpt.no_home") if x.store == "none" else x.store}
    elif x.kind in ("accepted", "rejected", "coupon_refused", "other"):
        said = ctx.t(f"rcpt.reason.{x.kind}")
        return f"{said}: {x.text}" if x.text else said
    return ctx.t(f"rcpt.reason.{x.kind}", **values)
