"""OneID's review queue for HQ: the member pairs probabilistic matching was unsure of,
strongest first, and one pair side by side (masked per role, as Member 360 is) with the
match weight of each field. Admins accept (the pair merges, undoable) or reject (never
proposed again) with a CSRF-checked form; analysts read."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from siyu.console.i18n import label
from siyu.console.web import ConsoleExit, Ctx, authenticated, posted_form, redirect, render
from siyu.identity.errors import MergeError, ReviewDecided, ReviewNotFound, StrongConflict
from siyu.identity.matching.review import (
    accept_review,
    actor,
    actor_key,
    get_review,
    list_reviews,
    reject_review,
)
from siyu.identity.models import REVIEW_STATUSES

router = APIRouter()

PAGE = "reviews"
PER_PAGE = 50
_MAX_ID = 2**62


def _id(raw: str | None) -> int | None:
    return int(raw) if raw and raw.isdigit() and 0 < int(raw) < _MAX_ID else None


@router.get("/oneid/reviews")
async def queue(request: Request) -> Response:
    ctx = await authenticated(request, PAGE)
    assert ctx.who is not None
    params = request.query_params
    status = params.get("status") or "pending"
    status = status if status in REVIEW_STATUSES else "pending"
    after = _id(params.get("after"))
    async with ctx.svc.reads.connection() as reader:
        page = await list_reviews(reader, ctx.who.group_id, status, PER_PAGE, after)

    def status_url(code: str, after: int | None = None) -> str:
        query = {"status": code, **({"after": str(after)} if after else {})}
        return f"/console/oneid/reviews?{urlencode(query)}"

    return render(
        ctx,
        "reviews.html",
        page=page,
        shown=status,  # (`status` is the HTTP status's name in render)
        statuses=REVIEW_STATUSES,
        after=after,
        status_url=status_url,
        decider=lambda by: _decider(ctx, by),
    )


@router.get("/oneid/reviews/{review_id}")
async def pair(review_id: int, request: Request) -> Response:
    ctx = await authenticated(request, PAGE)
    assert ctx.who is not None
    if _id(str(review_id)) is None:
        raise ConsoleExit(404)
    async with ctx.svc.reads.connection() as reader:
        try:
            found = await get_review(reader, ctx.svc.vault, ctx.who, review_id)
        except ReviewNotFound:
            raise ConsoleExit(404) from None
    review = found.review
    strongest = max((abs(f.weight) for f in review.fields), default=0.0)
    decided = request.query_params.get("decided")
    notice = None
    if decided == "accepted" and review.status == "accepted":
        notice = ctx.t("reviews.accepted", id=found.sides[0].current_id)
    elif decided == "rejected" and review.status == "rejected":
        notice = ctx.t("reviews.rejected")
    return render(
        ctx,
        "review.html",
        d=found,
        r=review,
        strongest=strongest or 1.0,
        masked=not ctx.who.sees_personal_data,
        may_decide=ctx.who.may("reviews:decide") and review.status == "pending",
        read_only=not ctx.who.may("reviews:decide"),
        notice=notice,
        decider=_decider(ctx, review.decided_by),
    )


@router.post("/oneid/reviews/{review_id}/{action}")
async def decide(review_id: int, action: str, request: Request) -> Response:
    """Accept or reject (a form's POST, CSRF-checked, admins only): 409 naming the rule
    when the pair was decided already or a strong identifier refuses it; then back to
    the pair, which says what happened."""
    ctx = await authenticated(request, PAGE)
    assert ctx.who is not None
    await posted_form(request)
    if action not in ("accept", "reject") or _id(str(review_id)) is None:
        raise ConsoleExit(404)
    if not ctx.who.may("reviews:decide"):
        raise ConsoleExit(403)
    who, svc = ctx.who, ctx.svc
    try:
        if action == "accept":
            strong = svc.settings.strong_identity_types
            done = await run_in_threadpool(
                accept_review, svc.engine, who.group_id, review_id, actor(who), strong
            )
        else:
            done = await run_in_threadpool(
                reject_review, svc.engine, who.group_id, review_id, actor(who)
            )
    except ReviewNotFound:
        raise ConsoleExit(404) from None
    except ReviewDecided as exc:
        status = ctx.t(f"review.{exc.status}")
        return _refused(ctx, ctx.t("reviews.refused.decided", id=review_id, status=status))
    except StrongConflict as exc:
        kind = label("idtype", exc.type, ctx.lang)
        return _refused(ctx, ctx.t("reviews.refused.strong", type=kind))
    except MergeError:
        return _refused(ctx, ctx.t("reviews.refused.changed"))
    return redirect(ctx, f"/console/oneid/reviews/{review_id}?decided={done.status}")


def _refused(ctx: Ctx, text: str) -> Response:
    return render(ctx, "error.html", status=409, title=ctx.t("reviews.refused"), text=text)


def _decider(ctx: Ctx, decided_by: str | None) -> Any:
    """Who decided, as people read it: an API key (a person's), else the matching run."""
    key = actor_key(decided_by)
    return ctx.t("reviews.by_key", key_id=key) if key is not None else ctx.t("reviews.by_run")
