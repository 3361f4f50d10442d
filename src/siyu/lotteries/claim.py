"""Claiming a prize at a store with its code: once, at the store that holds it.

The unit left stock when the draw was won (lotteries/draw.py); the claim is the hand-over,
recorded on the draw row by a conditional UPDATE (`claimed_at IS NULL`): two tills
scanning one code, only one hands the prize over. A retry with the same key answers the
first claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, text

from siyu.errors import NotFoundError, ValidationError
from siyu.lotteries.errors import PrizeNotClaimable
from siyu.store.times import as_stored, stored_now, stored_time

_DRAW = text("""SELECT d.draw_id, d.pool_code, d.member_id, d.prize_code, d.sku,
                       d.location_id, d.claimed_at, d.claimed_store_id, d.claim_key,
                       p.claim_until, l.store_id
                FROM prize_draws d
                JOIN prize_pools p ON p.group_id = d.group_id AND p.code = d.pool_code
                LEFT JOIN stock_locations l
                  ON l.group_id = d.group_id AND l.location_id = d.location_id
                WHERE d.group_id = :g AND d.claim_code = :c""")
_CLAIM = text("""UPDATE prize_draws SET claimed_at = :now, claimed_store_id = :s, claim_key = :k
                 WHERE draw_id = :d AND claimed_at IS NULL""")


@dataclass(frozen=True)
class Claimed:
    draw_id: int
    pool_code: str
    member_id: int
    prize_code: str
    sku: str
    store_id: str
    claimed_at: datetime
    replayed: bool = False


def claim(
    engine: Engine,
    group_id: str,
    claim_code: str,
    store_id: str,
    key: str,
    at: datetime | None = None,
) -> Claimed:
    """Hand the prize of `claim_code` over at `store_id` (see the module docstring)."""
    if not key or len(key) > 200:
        raise ValidationError("Idempotency-Key", "required, at most 200 characters")
    now = as_stored(at) if at is not None else stored_now()
    with engine.begin() as conn:
        row = conn.execute(_DRAW, {"g": group_id, "c": claim_code}).first()
        if row is None:
            raise NotFoundError(f"claim_code: no prize won with code {claim_code!r}")
        if row.claimed_at is None:
            if now >= stored_time(row.claim_until):
                raise PrizeNotClaimable(
                    f"claim_code: claimable until {stored_time(row.claim_until).isoformat()}"
                )
            if row.store_id != store_id:
                raise PrizeNotClaimable(
                    f"store_id: prize {row.prize_code} is held at {row.store_id or 'no store'}"
                    ", claim it there"
                )
            params = {"d": row.draw_id, "now": now, "s": store_id, "k": key}
            if conn.execute(_CLAIM, params).rowcount == 1:
                return _claimed(row, store_id, now, replayed=False)
            row = conn.execute(_DRAW, {"g": group_id, "c": claim_code}).one()
        if row.claim_key == key and row.claimed_store_id == store_id:
            return _claimed(row, store_id, stored_time(row.claimed_at), replayed=True)
        raise PrizeNotClaimable(
            f"claim_code: claimed at {row.claimed_store_id} on "
            f"{stored_time(row.claimed_at).isoformat()}"
        )


def _claimed(row: object, store_id: str, at: datetime, replayed: bool) -> Claimed:
    r = row
    return Claimed(
        int(r.draw_id),  # type: ignore[attr-defined]
        r.pool_code,  # type: ignore[attr-defined]
        int(r.member_id),  # type: ignore[attr-defined]
        r.prize_code,  # type: ignore[attr-defined]
        r.sku,  # type: ignore[attr-defined]
        store_id,
        at,
        replayed,
    )
