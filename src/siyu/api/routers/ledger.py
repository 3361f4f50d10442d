"""The loyalty ledger over HTTP: balances, statement, points and stored value.

Every posting needs an `Idempotency-Key`, which becomes the posting's own key in the
ledger (unique in the brand group, checked in the same transaction as the balance), so a
retry answers the first result and applies nothing. A refused posting (409) applies
nothing and leaves the key unused.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi import Request as HttpRequest
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from siyu.api.deps import RequiredIdempotencyKey, Services, require, services
from siyu.api.idempotency import Outcome, conflict, refuse_if_recorded, respond_once
from siyu.api.problems import Problem
from siyu.api.schemas import (
    MAX_ID,
    AdjustIn,
    BalancesOut,
    EarnIn,
    PayIn,
    PostingOut,
    RefundIn,
    RulesOut,
    SpendIn,
    StatementOut,
    TopUpIn,
    Where,
)
from siyu.auth.principal import Principal, Role
from siyu.auth.scope import Presented, member_at_till, member_in_scope, order_to_earn
from siyu.catalog.models import CHANNELS
from siyu.ledger import points, program, stored_value
from siyu.ledger.models import POINTS, SV_BONUS, SV_PRINCIPAL
from siyu.ledger.orders import earn_for_order
from siyu.ledger.posting import Request, Result
from siyu.ledger.queries import BALANCES, EXPIRING, POSTING_KEY, STATEMENT, STATEMENT_BEFORE
from siyu.store.times import as_stored, as_utc, stored_now

router = APIRouter(prefix="/v1", tags=["ledger"])
MemberId = Annotated[int, Path(ge=1, le=MAX_ID)]
IdemKey = RequiredIdempotencyKey
# A ledger posting's own key (the Idempotency-Key of every posting but an order's earn).


@router.get("/members/{member_id}/balances", response_model=BalancesOut)
async def balances(
    member_id: MemberId,
    who: Principal = Depends(require("ledger:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Points and stored value (principal and bonus apart), and when points expire.
    Points past their date are not counted, even before the expiry job has run."""
    async with svc.reads.connection() as reader:
        member_id = await member_in_scope(reader, who, member_id)
        params = {"g": who.group_id, "m": member_id, "now": stored_now()}
        rows = await reader.all(BALANCES, params)
        lots = await reader.all(EXPIRING, params)
    held = {r.asset: int(r.balance) for r in rows}
    principal, bonus = held.get(SV_PRINCIPAL, 0), held.get(SV_BONUS, 0)
    return {
        "member_id": member_id,
        "points": held.get(POINTS, 0),
        "stored_value_fen": principal + bonus,
        "stored_value_principal_fen": principal,
        "stored_value_bonus_fen": bonus,
        "points_expiring": [
            {"expires_at": as_utc(r.expires_at), "points": int(r.points)} for r in lots
        ],
    }


@router.get("/members/{member_id}/ledger", response_model=StatementOut)
async def statement(
    member_id: MemberId,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    who: Principal = Depends(require("ledger:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The member's statement, newest business time first (when the order or refund
    happened; `created_at` is when the ledger recorded it): every entry with the account's
    balance after it was recorded."""
    async with svc.reads.connection() as reader:
        member_id = await member_in_scope(reader, who, member_id)
        rows = await reader.all(
            STATEMENT if before is None else STATEMENT_BEFORE,
            {"g": who.group_id, "m": member_id, "before": before, "n": limit},
        )
    entries = [
        {
            "entry_id": r.entry_id,
            "posting_id": r.posting_id,
            "kind": r.kind,
            "asset": r.asset,
            "amount": r.amount,
            "balance_after": r.balance_after,
            "business_at": as_utc(r.business_at),
            "created_at": as_utc(r.created_at),
            "reference": r.reference,
            "store_id": r.store_id,
            "channel": r.channel,
        }
        for r in rows
    ]
    more = len(entries) == limit
    return {
        "member_id": member_id,
        "entries": entries,
        "next_before": entries[-1]["entry_id"] if more else None,
    }


@router.post("/members/{member_id}/points:earn", response_model=PostingOut)
async def earn_points(
    member_id: MemberId,
    body: EarnIn,
    request: HttpRequest,
    idempotency_key: IdemKey,
    who: Principal = Depends(require("points:earn")),
    svc: Services = Depends(services),
) -> JSONResponse:
    """Points into a new lot that expires at `expires_at` (default: end of next year).
    Without `points`, the order `order_id` earns by the group's earn rules and the
    member's tier, once (the posting key is the order's; the Idempotency-Key is kept
    apart for the request). A store key earns only that way, for an order at its stores."""
    if body.points is not None:
        if who.role == Role.STORE:
            raise Problem(
                403,
                "Forbidden",
                "points: a store earns points only by the rules, for an order at its stores "
                "(give order_id alone); points named by hand are HQ's",
                "forbidden",
            )
        ask, may_read = await _request(
            svc, who, member_id, "earn", idempotency_key, body, body.order_id
        )
        amount, expires = body.points, _naive(body.expires_at)
        return await _post(lambda: points.earn(svc.engine, ask, amount, expires), may_read)
    if body.order_id is None:
        raise Problem(
            422,
            "Invalid input",
            "points: give the points, or an order_id to earn by the rules",
            "validation_failed",
            [{"field": "points", "rule": "points or order_id"}],
        )
    order_id = body.order_id
    ask, may_read = await _request(
        svc, who, member_id, "earn", idempotency_key, body, order_id, recorded=True
    )
    async with svc.reads.connection() as reader:
        await order_to_earn(reader, who, ask.member_id, order_id)
        if await reader.first(POSTING_KEY, {"g": who.group_id, "k": idempotency_key}):
            raise conflict()  # the key of a posting: it cannot also earn an order
    replayed = []

    def work() -> Outcome:
        result = earn_for_order(svc.engine, who.group_id, order_id, who.key_id)
        replayed.append(result.replayed)
        return 200, _payload(result, may_read)

    # The posting's key is the order's, so the Idempotency-Key is recorded for the
    # request (api/idempotency.py): reused for another order, it is a 409.
    unproven = body.model_copy(update={"presented": None})
    answer = await run_in_threadpool(
        respond_once, svc.engine, who.key_id, request, idempotency_key, unproven, work
    )
    if any(replayed):
        answer.headers["Idempotent-Replayed"] = "true"
    return answer


@router.get("/points/rules", response_model=RulesOut)
async def get_earn_rules(
    who: Principal = Depends(require("loyalty:read-rules")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The group's earn rules (base rate, rules by brand / channel / category, campaign
    bonuses with a validity window, the clawback policy)."""
    return await run_in_threadpool(_rules, svc, who.group_id, "earn")


@router.put("/points/rules", response_model=RulesOut)
async def put_earn_rules(
    body: program.EarnRules,
    who: Principal = Depends(require("loyalty:write-rules")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Replace the earn rules (HQ). Every version is kept."""
    await run_in_threadpool(program.save, svc.engine, who.group_id, body, who.key_id)
    return await run_in_threadpool(_rules, svc, who.group_id, "earn")


@router.get("/tiers/rules", response_model=RulesOut)
async def get_tier_rules(
    who: Principal = Depends(require("loyalty:read-rules")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The tiers, their thresholds in the rolling window, grace period and benefits."""
    return await run_in_threadpool(_rules, svc, who.group_id, "tiers")


@router.put("/tiers/rules", response_model=RulesOut)
async def put_tier_rules(
    body: program.TierRules,
    who: Principal = Depends(require("loyalty:write-rules")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Replace the tier rules (HQ). Members move at the next evaluation or review."""
    await run_in_threadpool(program.save, svc.engine, who.group_id, body, who.key_id)
    return await run_in_threadpool(_rules, svc, who.group_id, "tiers")


def _rules(svc: Services, group_id: str, kind: Literal["earn", "tiers"]) -> dict[str, Any]:
    doc = program.load(svc.engine, group_id, kind)
    version = program.version(svc.engine, group_id, kind)
    return {"version": version, "rules": doc.model_dump(mode="json")}


@router.post("/members/{member_id}/points:spend", response_model=PostingOut)
async def spend_points(
    member_id: MemberId,
    body: SpendIn,
    idempotency_key: IdemKey,
    who: Principal = Depends(require("points:spend")),
    svc: Services = Depends(services),
) -> JSONResponse:
    """Spend points, first-expiring lots first; 409 when the balance is too low."""
    ask, may_read = await _request(
        svc, who, member_id, "spend", idempotency_key, body, body.order_id
    )
    return await _post(lambda: points.spend(svc.engine, ask, body.points), may_read)


@router.post("/members/{member_id}/points:adjust", response_model=PostingOut)
async def adjust_points(
    member_id: MemberId,
    body: AdjustIn,
    idempotency_key: IdemKey,
    who: Principal = Depends(require("points:adjust")),
    svc: Services = Depends(services),
) -> JSONResponse:
    """A correction by HQ, with a reason: positive adds a lot, negative takes points."""
    ask, may_read = await _request(svc, who, member_id, "adjust", idempotency_key, body, None)
    expires = _naive(body.expires_at)
    return await _post(lambda: points.adjust(svc.engine, ask, body.points, expires), may_read)


@router.post("/members/{member_id}/stored-value:top-up", response_model=PostingOut)
async def top_up(
    member_id: MemberId,
    body: TopUpIn,
    idempotency_key: IdemKey,
    who: Principal = Depends(require("stored-value:top-up")),
    svc: Services = Depends(services),
) -> JSONResponse:
    """Money paid in (at a till or online) plus a bonus, kept apart."""
    ask, may_read = await _request(
        svc, who, member_id, "top_up", idempotency_key, body, body.payment_ref
    )
    return await _post(
        lambda: stored_value.top_up(svc.engine, ask, body.paid_fen, body.bonus_fen), may_read
    )


@router.post("/members/{member_id}/stored-value:pay", response_model=PostingOut)
async def pay(
    member_id: MemberId,
    body: PayIn,
    idempotency_key: IdemKey,
    who: Principal = Depends(require("stored-value:pay")),
    svc: Services = Depends(services),
) -> JSONResponse:
    """Pay from stored value, principal and bonus in proportion; 409 when too low."""
    ask, may_read = await _request(svc, who, member_id, "pay", idempotency_key, body, body.order_id)
    return await _post(lambda: stored_value.pay(svc.engine, ask, body.amount_fen), may_read)


@router.post("/members/{member_id}/stored-value:refund", response_model=PostingOut)
async def refund(
    member_id: MemberId,
    body: RefundIn,
    idempotency_key: IdemKey,
    who: Principal = Depends(require("stored-value:refund")),
    svc: Services = Depends(services),
) -> JSONResponse:
    """Refund a top-up: its unspent principal goes back, its bonus in proportion."""
    ask, may_read = await _request(
        svc, who, member_id, "refund_top_up", idempotency_key, body, None
    )
    return await _post(
        lambda: stored_value.refund_top_up(svc.engine, ask, body.top_up_posting_id), may_read
    )


async def _request(
    svc: Services,
    who: Principal,
    member_id: int,
    kind: str,
    idempotency_key: str,
    body: Where,
    reference: str | None,
    recorded: bool = False,
) -> tuple[Request, bool]:
    """The posting request after the scope rules, and whether the answer may show the
    member's balances. A store posts only at its stores, for its own members or for one
    present at its till (`auth.scope.member_at_till`); a channel only for its channel
    (for any member: people shop where they like); a member only for itself; HQ anywhere
    in its group. `recorded`: the route keeps its Idempotency-Key in the request records
    itself; otherwise a key recorded there (used on another endpoint) is a 409."""
    channel = body.channel
    if channel is not None and channel not in CHANNELS:
        raise Problem(
            422,
            "Invalid input",
            f"channel: unknown channel {channel!r}",
            "validation_failed",
            [{"field": "channel", "rule": "known channel"}],
        )
    if who.role == Role.STORE and (body.store_id is None or body.store_id not in who.stores):
        raise Problem(
            403, "Forbidden", "store_id: this key posts at its own stores only", "forbidden"
        )
    if who.role == Role.CHANNEL:
        if channel not in (None, who.channel):
            raise Problem(
                403,
                "Forbidden",
                f"channel: this key posts for {who.channel!r} only",
                "forbidden",
            )
        channel = who.channel
    shown = None
    if body.presented is not None:
        shown = svc.encoder().encode(body.presented.type, body.presented.value, "presented.value")
    async with svc.reads.connection() as reader:
        if not recorded:
            await refuse_if_recorded(reader, who.key_id, idempotency_key)
        presented = None if shown is None else Presented(shown.type, shown.key)
        target = await member_at_till(reader, who, member_id, presented)
    ask = Request(
        group_id=who.group_id,
        member_id=target.member_id,
        kind=kind,
        idempotency_key=idempotency_key,
        # what was asked, less the proof: a phone is not kept, even as part of a digest
        fields=body.model_dump(mode="json", exclude={"presented"}),
        reference=reference,
        store_id=body.store_id,
        channel=channel,
        reason=body.reason,
        key_id=who.key_id,
    )
    return ask, target.may_read


async def _post(work: Callable[[], Result], may_read: bool) -> JSONResponse:
    """Run the posting in the thread pool (it is a write transaction) and answer it."""
    result = await run_in_threadpool(work)
    headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
    return JSONResponse(_payload(result, may_read), headers=headers)


def _payload(result: Result, may_read: bool) -> dict[str, Any]:
    """The answer to a posting; the balances only for a caller who may read them."""
    return PostingOut(
        posting_id=result.posting_id,
        kind=result.kind,
        member_id=result.member_id,
        created_at=result.created_at.replace(tzinfo=UTC),
        business_at=(result.business_at or result.created_at).replace(tzinfo=UTC),
        balances=result.balances if may_read else None,
        detail=result.detail,
    ).model_dump(mode="json")


def _naive(value: datetime | None) -> datetime | None:
    """A time as the store keeps it (naive UTC), or none."""
    return None if value is None else as_stored(value)
