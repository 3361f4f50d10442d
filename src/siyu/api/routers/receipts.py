"""Receipts over HTTP: HQ defines the reward rules, a member uploads its own receipts (or
the mini-program's integration uploads for a member), a store reviews the receipts of its
own stores, HQ reviews any, analysts read.

An upload needs an `Idempotency-Key`: it becomes the receipt's own key (unique in the
brand group), so a retry answers the first upload and records nothing more. A decision
needs none: it is made once (`receipt_decided` for the other decision), and asking for
the one made answers the receipt. The photo's reference is not answered to roles that see
no personal data (a receipt may show a member's card or phone).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from siyu.api.deps import RequiredIdempotencyKey, Services, require, scoped_member, services
from siyu.api.problems import Problem, not_the_path
from siyu.api.schemas import MAX_ID, PLAIN, Strict
from siyu.auth.principal import Principal, Role
from siyu.receipts import records, rewards, rules
from siyu.receipts.records import Receipt
from siyu.receipts.review import decide
from siyu.receipts.upload import ReceiptIn, upload
from siyu.store.times import as_utc

router = APIRouter(prefix="/v1", tags=["receipts"])
Code = Annotated[str, Path(min_length=1, max_length=64, pattern=PLAIN)]
ReceiptId = Annotated[int, Path(ge=1, le=MAX_ID)]
MemberId = Annotated[int, Path(ge=1, le=MAX_ID)]
Text64 = Annotated[str, Field(min_length=1, max_length=64, pattern=PLAIN)]
Status = Literal["pending", "accepted", "rejected", "duplicate"]


class UploadIn(Strict):
    rule: Text64 = Field(description="The reward rule's code.")
    member_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="Whose receipt; a member key uploads its own."
    )
    store_id: Text64
    receipt_no: Text64 = Field(description="As printed; spaces and dashes are dropped.")
    amount_fen: int = Field(description="Paid, in fen: a positive integer.")
    purchased_at: datetime
    image_ref: str = Field(
        min_length=1, max_length=500, description="A URL or object key of the photo."
    )


class DecisionIn(Strict):
    reason: str | None = Field(default=None, max_length=500)


class RejectIn(Strict):
    reason: str = Field(min_length=1, max_length=500, description="Shown to the member.")


def _out(receipt: Receipt, who: Principal) -> dict[str, Any]:
    body = receipt.as_dict(image=who.sees_personal_data)
    for name in ("purchased_at", "reviewed_at", "created_at"):
        if body[name] is not None:
            body[name] = as_utc(body[name])
    if body["reward"]["rewarded_at"] is not None:
        body["reward"]["rewarded_at"] = as_utc(body["reward"]["rewarded_at"])
    return body


def _reviewer(who: Principal) -> str:
    return f"key:{who.key_id}"


@router.put("/receipt-rules/{code}")
async def put_rule(
    code: Code,
    body: rules.RewardRule,
    who: Principal = Depends(require("receipts:define")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """A new version of the reward rule (HQ). Receipts already uploaded keep their
    version's tiers. Every coupon a tier names must be a template of the group."""
    if body.code != code:
        raise not_the_path("code", body.code, code)
    saved = await run_in_threadpool(rules.save, svc.engine, who.group_id, body, who.key_id)
    return {"code": code, "version": saved.version, "rule": body.model_dump(mode="json")}


@router.get("/receipt-rules")
async def list_rules(
    who: Principal = Depends(require("receipts:read-rules")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    def work() -> list[rules.Version]:
        with svc.engine.connect() as conn:
            return rules.newest(conn, who.group_id)

    found = await run_in_threadpool(work)
    return {
        "rules": [
            {"code": v.rule.code, "version": v.version, **v.rule.model_dump(mode="json")}
            for v in found
        ]
    }


@router.post("/receipts")
async def upload_receipt(
    body: UploadIn,
    idempotency_key: RequiredIdempotencyKey,
    who: Principal = Depends(require("receipts:upload")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Upload a receipt, once per key: accepted by the rule (and rewarded) or pending
    review, or `duplicate` when another receipt holds its store and number. 409
    `receipt_not_eligible` (outside the rule's window or scope, below the lowest tier),
    `receipt_limit_reached`; 422 names the field (a future time, an unknown store)."""
    if who.role == Role.MEMBER:
        if body.member_id not in (None, who.member_id):
            raise Problem(
                403, "Forbidden", "member_id: a member uploads its own receipts only", "forbidden"
            )
        member_id = who.member_id
    else:
        member_id = body.member_id
    if member_id is None:
        raise Problem(
            422,
            "Invalid input",
            "member_id: required",
            "validation_failed",
            [{"field": "member_id", "rule": "required"}],
        )
    given = ReceiptIn(
        member_id,
        body.store_id,
        body.receipt_no,
        body.amount_fen,
        body.purchased_at,
        body.image_ref,
    )
    done = await run_in_threadpool(
        upload,
        svc.engine,
        who.group_id,
        body.rule,
        given,
        f"key:{who.key_id}:{idempotency_key}",
        key_id=who.key_id,
    )
    return _out(done, who)


@router.get("/receipts")
async def list_receipts(
    status: Status | None = None,
    store_id: Annotated[str | None, Query(min_length=1, max_length=64, pattern=PLAIN)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    who: Principal = Depends(require("receipts:list")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Receipts newest first (`status=pending`: the review queue); a store key sees its
    own stores' only."""
    stores: tuple[str, ...] | None = None
    if who.role == Role.STORE:
        if store_id is not None and store_id not in who.stores:
            raise Problem(
                403, "Forbidden", "store_id: this store key reads its own stores only", "forbidden"
            )
        stores = who.stores
    if store_id is not None:
        stores = (store_id,)

    def work() -> list[Receipt]:
        with svc.engine.connect() as conn:
            return records.listed(conn, who.group_id, status=status, stores=stores, limit=limit)

    found = await run_in_threadpool(work)
    return {"receipts": [_out(r, who) for r in found]}


@router.get("/members/{member_id}/receipts")
async def member_receipts(
    member_id: MemberId,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    who: Principal = Depends(require("receipts:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The member's receipts, newest first, with what each earned."""
    current = await scoped_member(svc, who, member_id)

    def work() -> list[Receipt]:
        with svc.engine.connect() as conn:
            return records.listed(conn, who.group_id, member_id=current, limit=limit)

    found = await run_in_threadpool(work)
    return {"member_id": current, "receipts": [_out(r, who) for r in found]}


@router.post("/receipts/{receipt_id}:accept")
async def accept_receipt(
    receipt_id: ReceiptId,
    body: DecisionIn | None = None,
    who: Principal = Depends(require("receipts:review")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Accept a pending receipt; its tier's reward is given once (409 `receipt_decided`
    if it was rejected). A store accepts its own stores' receipts."""
    done = await run_in_threadpool(
        decide,
        svc.engine,
        who.group_id,
        receipt_id,
        "accepted",
        _reviewer(who),
        None if body is None else body.reason,
        stores=who.stores if who.role == Role.STORE else None,
    )
    return _out(done, who)


@router.post("/receipts/{receipt_id}:reject")
async def reject_receipt(
    receipt_id: ReceiptId,
    body: RejectIn,
    who: Principal = Depends(require("receipts:review")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Reject a pending receipt with a reason for the member: its number may be uploaded
    again and its places in the member's limits come back (409 `receipt_decided` if it
    was accepted). A store rejects its own stores' receipts."""
    done = await run_in_threadpool(
        decide,
        svc.engine,
        who.group_id,
        receipt_id,
        "rejected",
        _reviewer(who),
        body.reason,
        stores=who.stores if who.role == Role.STORE else None,
    )
    return _out(done, who)


@router.post("/receipts:settle")
async def settle_receipts(
    who: Principal = Depends(require("receipts:settle")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Give every accepted receipt's reward still missing (a process stopped between an
    acceptance and its reward); safe to run any time."""
    done = await run_in_threadpool(rewards.settle, svc.engine, who.group_id)
    return {"settled": len(done), "receipts": [_out(r, who) for r in done]}
