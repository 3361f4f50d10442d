"""Coupons over HTTP: templates (HQ), issue, a member's coupons, redemption at a till or a
checkout, return on refund, and liability.

Scopes: HQ defines templates and issues; a store redeems and returns at its own stores
only, a channel redeems for its own channel, a member redeems its own coupons from the
mini-program; a member, a store or a guide reads the coupons of members in its scope.
Redemption and return need an `Idempotency-Key`: it becomes the coupon event's own key
(unique in the brand group, written in the redemption's transaction), so a retry answers
the first result and applies nothing. A coupon code is shown in full only to its holder
and to HQ; anyone else reads its last four characters.
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
from siyu.coupons import catalog
from siyu.coupons.identify import identify
from siyu.coupons.issue import issue
from siyu.coupons.liability import liability
from siyu.coupons.queries import MEMBER_COUPONS, MEMBER_COUPONS_IN, REDEEMED_AT
from siyu.coupons.redeem import Redemption
from siyu.coupons.returns import give_back
from siyu.coupons.templates import Basket, BasketLine, CouponTemplate
from siyu.store.times import as_stored, as_utc, stored_now

router = APIRouter(prefix="/v1", tags=["coupons"])
Code = Annotated[str, Path(min_length=1, max_length=64, pattern=PLAIN)]
MemberId = Annotated[int, Path(ge=1, le=MAX_ID)]
Text64 = Annotated[str, Field(min_length=1, max_length=64, pattern=PLAIN)]


class LineIn(Strict):
    sku: Text64
    qty: int = Field(ge=1, le=100_000)
    amount_fen: int = Field(ge=0, le=10**11, description="What the line costs before coupons.")
    brand_id: Text64 | None = None
    category: Text64 | None = None


class BasketIn(Strict):
    channel: Text64
    store_id: Text64 | None = None
    lines: list[LineIn] = Field(min_length=1, max_length=500)
    shipping_fen: int = Field(default=0, ge=0, le=10**9)

    def basket(self) -> Basket:
        lines = tuple(
            BasketLine(x.sku, x.qty, x.amount_fen, x.brand_id, x.category) for x in self.lines
        )
        return Basket(self.channel, lines, self.store_id, self.shipping_fen)


class PresentedIn(Strict):
    type: Literal["phone", "card", "unionid", "openid"]
    value: str = Field(min_length=1, max_length=128, pattern=PLAIN)


class RedeemIn(Strict):
    order_id: str = Field(min_length=1, max_length=128, pattern=PLAIN)
    basket: BasketIn
    member_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="The holder, when known: checked."
    )
    presented: PresentedIn | None = Field(
        default=None,
        description="An identifier the person showed at the counter: linked to the holder.",
    )


class ReturnIn(Strict):
    order_id: str = Field(min_length=1, max_length=128, pattern=PLAIN)


class IssueIn(Strict):
    member_ids: list[int] = Field(min_length=1, max_length=10_000)
    campaign: Text64 | None = None


@router.put("/coupon-templates/{code}")
async def put_template(
    code: Code,
    body: CouponTemplate,
    who: Principal = Depends(require("coupons:define")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """A new version of the template (HQ). Coupons already issued keep their version's
    terms; limits are read from the newest version."""
    if body.code != code:
        raise not_the_path("code", body.code, code)
    saved = await run_in_threadpool(catalog.save, svc.engine, who.group_id, body, who.key_id)
    return {"code": code, "version": saved.version, "template": body.model_dump(mode="json")}


@router.get("/coupon-templates")
async def list_templates(
    who: Principal = Depends(require("coupons:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    def work() -> list[catalog.Version]:
        with svc.engine.connect() as conn:
            return catalog.newest(conn, who.group_id)

    found = await run_in_threadpool(work)
    return {
        "templates": [
            {"code": v.template.code, "version": v.version, **v.template.model_dump(mode="json")}
            for v in found
        ]
    }


@router.post("/coupon-templates/{code}:issue")
async def issue_coupons(
    code: Code,
    body: IssueIn,
    idempotency_key: RequiredIdempotencyKey,
    who: Principal = Depends(require("coupons:issue")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """One coupon to each member, once per (Idempotency-Key, member); a guide issues to
    its own members only. Members refused (unknown, a limit) are listed with the reason."""
    if who.role == Role.GUIDE:
        for member_id in body.member_ids:
            await scoped_member(svc, who, member_id)
    report = await run_in_threadpool(
        issue,
        svc.engine,
        who.group_id,
        code,
        body.member_ids,
        f"key:{who.key_id}:{idempotency_key}",
        campaign=body.campaign,
        key_id=who.key_id,
    )
    return {
        "template": code,
        "version": report.version,
        **report.counts,
        "coupons": [
            {
                "member_id": c.member_id,
                "code": c.code,
                "valid_from": as_utc(c.valid_from),
                "valid_until": as_utc(c.valid_until),
                "replayed": c.replayed,
            }
            for c in report.issued
        ],
        "refused": [{"member_id": m, "reason": r} for m, r in sorted(report.refused.items())],
    }


@router.get("/members/{member_id}/coupons")
async def member_coupons(
    member_id: MemberId,
    status: Literal["issued", "redeemed", "expired"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    who: Principal = Depends(require("coupons:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The member's coupons, newest first (a merged member's id answers its survivor's)."""
    current = await scoped_member(svc, who, member_id)
    query = MEMBER_COUPONS if status is None else MEMBER_COUPONS_IN
    async with svc.reads.connection() as reader:
        rows = await reader.all(query, {"g": who.group_id, "m": current, "st": status, "n": limit})
    full = who.role in (Role.ADMIN, Role.MEMBER)
    return {
        "member_id": current,
        "coupons": [
            {
                "code": r.code if full else f"••••{r.code[-4:]}",
                "template": r.template_code,
                "campaign": r.campaign,
                "status": r.status,
                "valid_from": as_utc(r.valid_from),
                "valid_until": as_utc(r.valid_until),
                "issued_at": as_utc(r.issued_at),
                "order_id": r.order_id,
                "off_fen": r.off_fen,
                "redeemed_at": None if r.redeemed_at is None else as_utc(r.redeemed_at),
            }
            for r in rows
        ],
    }


@router.post("/coupons/{code}:redeem")
async def redeem_coupon(
    code: Code,
    body: RedeemIn,
    idempotency_key: RequiredIdempotencyKey,
    who: Principal = Depends(require("coupons:redeem")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Redeem at a till or a checkout, exactly once: 409 `coupon_not_redeemable` (used,
    expired, not yet valid, another member's), `coupon_not_applicable` (the basket does
    not qualify), `coupon_limit_reached`. A store redeems at its own stores, a channel on
    its own channel, a member its own coupons."""
    member_id = _redeemer(who, body)
    ask = Redemption(
        code,
        body.order_id,
        body.basket.basket(),
        f"redeem:{idempotency_key}",
        member_id=member_id,
        key_id=who.key_id,
    )
    # through the worker's group commit: a hot campaign's tills share a transaction
    done = await svc.redemptions.redeem(who.group_id, ask)
    answer: dict[str, Any] = {
        "code": done.code,
        "template": done.template_code,
        "member_id": done.member_id,
        "order_id": done.order_id,
        "off_fen": done.off_fen,
        "redeemed_at": as_utc(done.redeemed_at),
        "replayed": done.replayed,
    }
    if body.presented is not None and not done.replayed:
        presented = svc.encoder().encode(body.presented.type, body.presented.value, "presented")
        found = await run_in_threadpool(
            identify,
            svc.engine,
            svc.encoder(),
            who.group_id,
            done.member_id,
            presented,
            body.basket.channel,
            stored_now(),
            svc.settings.strong_identity_types,
        )
        answer["identified"] = {
            "linked": found.linked,
            "merges": found.merges,
            "conflicts": len(found.conflicts),
            "why_not": found.why_not,
        }
    return answer


def _redeemer(who: Principal, body: RedeemIn) -> int | None:
    """The holder the redemption must match, and the scope checks of the basket."""
    if who.role == Role.STORE and body.basket.store_id not in who.stores:
        raise Problem(
            403,
            "Forbidden",
            "basket.store_id: this store key redeems at its own stores only",
            "forbidden",
        )
    if who.role == Role.CHANNEL and body.basket.channel != who.channel:
        raise Problem(
            403,
            "Forbidden",
            f"basket.channel: this key redeems on channel {who.channel!r} only",
            "forbidden",
        )
    if who.role == Role.MEMBER:
        if body.member_id not in (None, who.member_id):
            raise Problem(
                403, "Forbidden", "member_id: a member redeems its own coupons", "forbidden"
            )
        return who.member_id
    return body.member_id


@router.post("/coupons/{code}:return")
async def return_coupon(
    code: Code,
    body: ReturnIn,
    idempotency_key: RequiredIdempotencyKey,
    who: Principal = Depends(require("coupons:return")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The order was refunded: the coupon comes back if its template says so (409
    `coupon_not_returnable` otherwise). A store returns at its own stores only."""
    if who.role == Role.STORE:
        async with svc.reads.connection() as reader:
            row = await reader.first(REDEEMED_AT, {"g": who.group_id, "c": code})
        if row is not None and row.store_id not in who.stores:
            raise Problem(
                403, "Forbidden", "code: redeemed at another store; it returns it", "forbidden"
            )
    out = await run_in_threadpool(
        give_back,
        svc.engine,
        who.group_id,
        code,
        body.order_id,
        f"return:{idempotency_key}",
        who.key_id,
    )
    return {**out, "valid_until": as_utc(out["valid_until"])}  # type: ignore[arg-type]


@router.get("/coupons/liability")
async def coupon_liability(
    at: datetime | None = None,
    who: Principal = Depends(require("coupons:report")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Per template: issued, redeemed, returned, expired and outstanding (count, face
    value, cost), from the append-only events, as of `at` (default now)."""
    rows = await run_in_threadpool(
        liability, svc.engine, who.group_id, None if at is None else as_stored(at)
    )
    return {
        "as_of": as_utc(as_stored(at) if at else stored_now()),
        "templates": [r.as_dict() for r in rows],
    }
