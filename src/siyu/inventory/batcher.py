"""Group commit for reservations arriving over HTTP (`store.group_commit`).

In a flash sale every buyer's request is one reservation of a few units of the same SKU;
the reservations that arrive within a few milliseconds are applied with `reserve_many`:
one transaction, the row locked once, each order still all-or-nothing and answered on its
own. Batches of different brand groups or TTLs are never mixed.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from siyu.inventory.reservations import Order, Reservation, check_lines, reserve_many
from siyu.store.group_commit import GroupCommit


class ReservationBatcher:
    def __init__(self, engine: Engine, window_ms: float = 2.0, max_batch: int = 200) -> None:
        def apply(key: tuple[str, timedelta], orders: list[Order]) -> list[Reservation | Exception]:
            group_id, ttl = key
            return list(reserve_many(engine, group_id, orders, ttl))

        self._commit: GroupCommit[tuple[str, timedelta], Order, Reservation] = GroupCommit(
            apply, window_ms, max_batch
        )

    async def reserve(self, group_id: str, order: Order, ttl: timedelta) -> Reservation:
        check_lines(order.lines)  # bad lines fail this request alone, never the batch
        return await self._commit.submit((group_id, ttl), order)

    async def close(self) -> None:
        await self._commit.close()
