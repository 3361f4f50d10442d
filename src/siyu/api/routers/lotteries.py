"""Prize pools over HTTP: HQ defines a pool, members draw (or a till or channel draws for
them), a store hands a prize over at its own stores, HQ and analysts audit.

Draws and claims need an `Idempotency-Key`: it becomes the draw's own key (and, for a
pool paid in points, the ledger posting's), so a retry answers the first draw. The seed
is never answered before the pool ends and HQ reveals it; its SHA-256 is answered from
the start (the commitment).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.concurrency import run_in_threadpool
from pydantic import Field
from sqlalchemy import Engine

from siyu.api.deps import RequiredIdempotencyKey, Services, require, services
from siyu.api.problems import Problem, not_the_path
from siyu.api.schemas import MAX_ID, PLAIN, Strict
from siyu.auth.principal import Principal, Role
from siyu.lotteries import pools
from siyu.lotteries.audit import verify
from siyu.lotteries.claim import claim
from siyu.lotteries.draw import DrawAsk, draw
from siyu.store.times import as_utc, stored_now

router = APIRouter(prefix="/v1", tags=["lotteries"])
Code = Annotated[str, Path(min_length=1, max_length=64, pattern=PLAIN)]
ClaimCode = Annotated[str, Path(min_length=1, max_length=16, pattern=PLAIN)]


class DrawIn(Strict):
    member_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="Who draws; a member key draws for itself."
    )
    order_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=PLAIN)
    scene: str | None = Field(default=None, min_length=1, max_length=64, pattern=PLAIN)


class ClaimIn(Strict):
    store_id: str = Field(min_length=1, max_length=64, pattern=PLAIN)


def _pool_out(pool: pools.Pool) -> dict[str, Any]:
    return {
        "code": pool.code,
        "name_zh": pool.name_zh,
        "name_en": pool.name_en,
        "starts_at": as_utc(pool.starts_at),
        "ends_at": as_utc(pool.ends_at),
        "claim_until": as_utc(pool.claim_until),
        "entry": pool.entry,
        "scenes": list(pool.scenes),
        "min_paid_fen": pool.min_paid_fen,
        "points": pool.points,
        "campaign": pool.campaign,
        "per_member": pool.per_member,
        "seed_sha256": pool.seed_sha256,
        "seed": pool.seed.hex() if pool.revealed_at is not None else None,
        "revealed_at": None if pool.revealed_at is None else as_utc(pool.revealed_at),
        "prizes": [
            {
                "code": p.prize_code,
                "name_zh": p.name_zh,
                "name_en": p.name_en,
                "sku": p.sku,
                "location_id": p.location_id,
                "odds_ppm": p.odds_ppm,
                "units": p.units,
                "awarded": p.awarded,
            }
            for p in pool.prizes
        ],
    }


def _load(engine: Engine, group_id: str, code: str) -> pools.Pool:
    with engine.connect() as conn:
        return pools.load(conn, group_id, code)


@router.put("/lottery-pools/{code}")
async def put_pool(
    code: Code,
    body: pools.PoolDef,
    who: Principal = Depends(require("lotteries:define")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Define a pool once (HQ): its prizes are inventory items at a location, its odds
    per million draws. The answer publishes the seed's SHA-256; the same body again is a
    replay, another body under the code is refused (`pool_already_defined`)."""
    if body.code != code:
        raise not_the_path("code", body.code, code)
    pool = await run_in_threadpool(pools.define, svc.engine, who.group_id, body, who.key_id)
    return _pool_out(pool)


@router.get("/lottery-pools/{code}")
async def get_pool(
    code: Code,
    who: Principal = Depends(require("lotteries:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The pool, its odds, prizes awarded so far and its commitment."""
    return _pool_out(await run_in_threadpool(_load, svc.engine, who.group_id, code))


@router.post("/lottery-pools/{code}:draw")
async def draw_from_pool(
    code: Code,
    body: DrawIn,
    idempotency_key: RequiredIdempotencyKey,
    who: Principal = Depends(require("lotteries:draw")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """A draw, exactly once per key: 409 `pool_closed`, `pool_exhausted`,
    `draw_limit_reached`, `entry_not_accepted`, `insufficient_balance` (points). A
    member draws for itself; a till or a channel names the member."""
    if who.role == Role.MEMBER:
        if body.member_id not in (None, who.member_id):
            raise Problem(403, "Forbidden", "member_id: a member draws for itself", "forbidden")
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
    ask = DrawAsk(
        member_id, f"draw:{idempotency_key}", body.order_id, body.scene, key_id=who.key_id
    )
    done = await run_in_threadpool(draw, svc.engine, who.group_id, code, ask)
    return {
        "pool": done.pool_code,
        "member_id": done.member_id,
        "outcome": done.outcome,
        "prize": done.prize_code,
        "claim_code": done.claim_code,
        "roll": done.roll,
        "random_hex": done.random_hex,
        "drawn_at": as_utc(done.drawn_at),
        "replayed": done.replayed,
    }


@router.post("/lottery-prizes/{claim_code}:claim")
async def claim_prize(
    claim_code: ClaimCode,
    body: ClaimIn,
    idempotency_key: RequiredIdempotencyKey,
    who: Principal = Depends(require("lotteries:claim")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Hand a prize over, once, at the store that holds it (409 `prize_not_claimable`);
    a store key claims at its own stores only."""
    if who.role == Role.STORE and body.store_id not in who.stores:
        raise Problem(
            403, "Forbidden", "store_id: this store key claims at its own stores", "forbidden"
        )
    done = await run_in_threadpool(
        claim, svc.engine, who.group_id, claim_code, body.store_id, f"claim:{idempotency_key}"
    )
    return {
        "pool": done.pool_code,
        "member_id": done.member_id,
        "prize": done.prize_code,
        "sku": done.sku,
        "store_id": done.store_id,
        "claimed_at": as_utc(done.claimed_at),
        "replayed": done.replayed,
    }


@router.post("/lottery-pools/{code}:reveal")
async def reveal_seed(
    code: Code,
    who: Principal = Depends(require("lotteries:define")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Publish the seed once the pool has ended (409 `pool_still_open` before)."""
    return _pool_out(await run_in_threadpool(pools.reveal, svc.engine, who.group_id, code))


@router.get("/lottery-pools/{code}/audit")
async def audit_pool(
    code: Code,
    who: Principal = Depends(require("lotteries:audit")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Every logged draw recomputed from the seed, and the counts checked: prizes won =
    awarded <= units, draws per member <= the limit."""
    report = await run_in_threadpool(verify, svc.engine, who.group_id, code)
    return {
        "pool": code,
        "seed_sha256": report.seed_sha256,
        "draws": report.draws,
        "won": report.won,
        "ok": report.ok,
        "problems": report.problems,
        "checked_at": as_utc(stored_now()),
    }
