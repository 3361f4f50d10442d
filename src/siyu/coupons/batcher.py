"""Group commit for redemptions arriving over HTTP (`store.group_commit`).

A hot campaign's redemptions all raise the same counter rows (its redemptions and its
budget); the redemptions that arrive within a few milliseconds are applied with
`redeem_many`: one transaction of set-based statements, the counters locked once, each
redemption answered on its own (its `Redeemed`, or the error that refused it). Batches of
different brand groups are never mixed.
"""

from __future__ import annotations

from sqlalchemy import Engine

from siyu.coupons.redeem import Redeemed, Redemption, check_ask, redeem_many
from siyu.store.group_commit import GroupCommit


class RedemptionBatcher:
    def __init__(self, engine: Engine, window_ms: float = 2.0, max_batch: int = 200) -> None:
        def apply(group_id: str, asks: list[Redemption]) -> list[Redeemed | Exception]:
            return list(redeem_many(engine, group_id, asks))

        self._commit: GroupCommit[str, Redemption, Redeemed] = GroupCommit(
            apply, window_ms, max_batch
        )

    async def redeem(self, group_id: str, ask: Redemption) -> Redeemed:
        check_ask(ask)  # a malformed ask fails this request alone, never the batch
        return await self._commit.submit(group_id, ask)

    async def close(self) -> None:
        await self._commit.close()
