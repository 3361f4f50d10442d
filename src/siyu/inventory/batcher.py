"""Group commit for reservations arriving over HTTP.

In a flash sale every buyer's request is one reservation of a few units of the same SKU.
Committed one by one they queue on that SKU's row lock, one commit each. The batcher
collects the reservations that arrive within a short window (a few milliseconds, or
until a batch is full) and applies them with `reserve_many`: one transaction, the row
locked once, each order still all-or-nothing and answered on its own. Under no load a
request waits at most the window; under load the window fills at once.

One batcher per worker process, on that worker's event loop; batches of different brand
groups or TTLs are never mixed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine

from siyu.errors import ConflictError
from siyu.inventory.reservations import Order, Reservation, check_lines, reserve_many


@dataclass
class _Pending:
    group_id: str
    ttl: timedelta
    order: Order
    answer: asyncio.Future[Reservation] = field(repr=False)


class ReservationBatcher:
    def __init__(self, engine: Engine, window_ms: float = 2.0, max_batch: int = 200) -> None:
        self.engine, self.window, self.max_batch = engine, window_ms / 1000, max_batch
        self._queue: asyncio.Queue[_Pending] | None = None
        self._worker: asyncio.Task[None] | None = None

    async def reserve(self, group_id: str, order: Order, ttl: timedelta) -> Reservation:
        check_lines(order.lines)  # bad lines fail this request alone, never the batch
        loop = asyncio.get_running_loop()
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._run(self._queue))
        pending = _Pending(group_id, ttl, order, loop.create_future())
        await self._queue.put(pending)
        return await pending.answer

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    async def _run(self, queue: asyncio.Queue[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + self.window
            while len(batch) < self.max_batch:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), left))
                except TimeoutError:
                    break
            await self._apply(batch)

    async def _apply(self, batch: list[_Pending]) -> None:
        by_kind: dict[tuple[str, timedelta], list[_Pending]] = defaultdict(list)
        for pending in batch:
            by_kind[pending.group_id, pending.ttl].append(pending)
        for (group_id, ttl), items in by_kind.items():
            orders = [p.order for p in items]
            try:
                outcomes = await run_in_threadpool(reserve_many, self.engine, group_id, orders, ttl)
            except Exception as exc:  # the whole batch failed (a lost connection): tell each
                for p in items:
                    if not p.answer.done():
                        p.answer.set_exception(exc)
                continue
            for p, outcome in zip(items, outcomes, strict=True):
                if p.answer.done():  # the client went away
                    continue
                if isinstance(outcome, ConflictError):
                    p.answer.set_exception(outcome)
                else:
                    p.answer.set_result(outcome)
