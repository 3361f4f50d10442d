"""A member's own guide and distribution (issue #19): read a member's guide and its history
(in the caller's member scope), HQ rebinds a member and releases a guide who leaves;
guides record what they share (a guide key only its own), integrations record who opened
a share; an order's attribution with the evidence behind it (a guide key only its own).
Writes take an Idempotency-Key: HQ's moves answer a retry once; a touch is keyed by it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import Field

from siyu.api.deps import RequiredIdempotencyKey, Services, require, scoped_member, services
from siyu.api.idempotency import Outcome, respond_once
from siyu.api.problems import Problem
from siyu.api.schemas import MAX_ID, Strict
from siyu.auth.principal import Principal, Role
from siyu.guides import attribution, binding, shares
from siyu.guides.models import REASON_MAX
from siyu.store.times import as_stored, as_utc

router = APIRouter(prefix="/v1", tags=["guides"])
MemberId = Annotated[int, Path(ge=1, le=MAX_ID)]
GuideId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f/]*$")]
ShareCode = Annotated[str, Path(min_length=4, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
OrderId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f/]*$")]


class RebindIn(Strict):
    guide_id: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=REASON_MAX)


class ReleaseIn(Strict):
    reason: str = Field(min_length=1, max_length=REASON_MAX)


class ShareIn(Strict):
    kind: Literal["product", "campaign", "page"]
    target: str = Field(min_length=1, max_length=200, description="sku, campaign code or path")
    share_code: str | None = Field(
        default=None, min_length=4, max_length=64, description="Omitted: a random code."
    )


class TouchIn(Strict):
    member_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    identity_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    touched_at: datetime


def _binding(b: binding.Binding) -> dict[str, Any]:
    return {
        "binding_id": b.binding_id,
        "guide_id": b.guide_id,
        "store_id": b.store_id,
        "rule": b.rule,
        "bound_at": as_utc(b.bound_at),
        "ended_at": None if b.ended_at is None else as_utc(b.ended_at),
        "ended_reason": b.ended_reason,
        "note": b.note,
    }


def _guide_of(svc: Services, group_id: str, member_id: int) -> dict[str, Any]:
    with svc.engine.connect() as conn:
        past = binding.history(conn, group_id, member_id)
    live = next((b for b in past if b.ended_at is None), None)
    return {
        "member_id": member_id,
        "guide": None if live is None else _binding(live),
        "history": [_binding(b) for b in past],
    }


@router.get("/members/{member_id}/guide")
async def member_guide(
    member_id: MemberId,
    who: Principal = Depends(require("bindings:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The member's own guide (null: none) and every binding it had, the latest first; a
    merged member's id answers for its survivor."""
    target = await scoped_member(svc, who, member_id)
    return await run_in_threadpool(_guide_of, svc, who.group_id, target)


@router.post("/members/{member_id}/guide:rebind")
async def rebind_member(
    member_id: MemberId,
    body: RebindIn,
    request: Request,
    idempotency_key: RequiredIdempotencyKey,
    who: Principal = Depends(require("bindings:write")),
    svc: Services = Depends(services),
) -> JSONResponse:
    """HQ binds the member to a guide: the live binding ends (`rebound`) with the reason.
    404 `guide_not_found`, 409 `guide_left`."""

    def work() -> Outcome:
        made = binding.rebind(
            svc.engine, who.group_id, member_id, body.guide_id, body.reason, who.key_id
        )
        return 200, jsonable_encoder(_guide_of(svc, who.group_id, made.member_id))

    return await run_in_threadpool(
        respond_once, svc.engine, who.key_id, request, idempotency_key, body, work
    )


@router.post("/guides/{guide_id}:release")
async def release_guide(
    guide_id: GuideId,
    body: ReleaseIn,
    request: Request,
    idempotency_key: RequiredIdempotencyKey,
    who: Principal = Depends(require("bindings:write")),
    svc: Services = Depends(services),
) -> JSONResponse:
    """The guide leaves: its members' bindings end (`guide_left`) and the rules bind them
    again (another guide of the store) or leave them unbound. 404 `guide_not_found`."""

    def work() -> Outcome:
        done = binding.release_guide(svc.engine, who.group_id, guide_id, body.reason, who.key_id)
        return 200, {"guide_id": guide_id, "released": done.released, "rebound": done.rebound}

    return await run_in_threadpool(
        respond_once, svc.engine, who.key_id, request, idempotency_key, body, work
    )


@router.post("/guides/{guide_id}/shares")
async def create_share(
    guide_id: GuideId,
    body: ShareIn,
    who: Principal = Depends(require("shares:write")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Record a share of the guide's (a guide key: only its own); the same code for the
    same target answers the share, for another 409 `share_code_taken`."""
    if who.role == Role.GUIDE and who.guide_id != guide_id:
        raise Problem(
            403, "Forbidden", "guide_id: a guide key records only its own shares", "forbidden"
        )
    made = await run_in_threadpool(
        shares.record_share,
        svc.engine,
        who.group_id,
        guide_id,
        body.kind,
        body.target,
        body.share_code,
        who.key_id,
    )
    return {**vars(made), "created_at": as_utc(made.created_at)}


@router.get("/guides/{guide_id}/shares")
async def list_shares(
    guide_id: GuideId,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    who: Principal = Depends(require("shares:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The guide's shares, the latest first, each with how often it was opened (a guide
    key: only its own)."""
    if who.role == Role.GUIDE and who.guide_id != guide_id:
        raise Problem(
            403, "Forbidden", "guide_id: a guide key reads only its own shares", "forbidden"
        )

    def read() -> list[tuple[shares.Share, int]]:
        with svc.engine.connect() as conn:
            return shares.shares_of(conn, who.group_id, guide_id, limit)

    found = await run_in_threadpool(read)
    return {
        "shares": [{**vars(s), "created_at": as_utc(s.created_at), "touches": n} for s, n in found]
    }


@router.post("/shares/{share_code}/touches")
async def create_touch(
    share_code: ShareCode,
    body: TouchIn,
    idempotency_key: RequiredIdempotencyKey,
    who: Principal = Depends(require("shares:touch")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Someone opened the share (a member, or an identity the channel saw); once per
    Idempotency-Key of the caller. 404 `share_not_found`."""
    made = await run_in_threadpool(
        lambda: shares.record_touch(
            svc.engine,
            who.group_id,
            share_code,
            f"api:{who.key_id}:{idempotency_key}",
            as_stored(body.touched_at),
            member_id=body.member_id,
            identity_id=body.identity_id,
            key_id=who.key_id,
        )
    )
    return {**vars(made), "touched_at": as_utc(made.touched_at)}


@router.get("/orders/{order_id}/attribution")
async def order_attribution(
    order_id: OrderId,
    who: Principal = Depends(require("attribution:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The guide the order is attributed to and why: the share and the touch, the till, or
    the own guide's binding, under which window and protection (a guide key: only its own
    orders). 404 when no run attributed the order."""

    def read() -> attribution.Explanation | None:
        with svc.engine.connect() as conn:
            return attribution.explain(conn, who.group_id, order_id)

    found = await run_in_threadpool(read)
    if found is None:
        raise Problem(
            404, "Not Found", f"order_id: order {order_id!r} is not attributed", "not_attributed"
        )
    if who.role == Role.GUIDE and who.guide_id != found.guide_id:
        raise Problem(
            403, "Forbidden", "order_id: a guide key reads only its own orders", "forbidden"
        )
    out = dict(vars(found))
    for name in ("ordered_at", "attributed_at", "touched_at"):
        out[name] = None if out[name] is None else as_utc(out[name])
    return out
