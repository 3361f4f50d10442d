"""Group commit for redemptions arriving over HTTP.

A hot campaign's redemptions all raise the same counter rows (its redemptions and its
budget). Committed one by one they queue on those rows' locks, one commit each. The
batcher collects the redemptions that arrive within a short window (a few milliseconds,
or until a batch is full) and applies them with `redeem_many`: one transaction, the
counters locked once, each redemption in a savepoint of its own and answered on its own
(its `Redeemed`, or the error that refused it). Under no load a request waits at most the
window; under load the window fills at once.

One batcher per worker process, on that worker's event loop; batches of different brand
groups are never mixed. Modelled on `inventory.batcher.ReservationBatcher`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from dataclasses import dataclass, field

from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine

from siyu.coupons.redeem import Redeemed, Redemption, check_ask, redeem_many
from siyu.errors import SiyuError


@dataclass
class _Pending:
    group_id: str
    ask: Redemption
    answer: asyncio.Future[Redeemed] = field(repr=False)


class RedemptionBatcher:
    def __init__(self, engine: Engine, window_ms: float = 2.0, max_batch: int = 200) -> None:
        self.engine, self.window, self.max_batch = engine, window_ms / 1000, max_batch
        self._queue: asyncio.Queue[_Pending] | None = None
        self._worker: asyncio.Task[None] | None = None

    async def redeem(self, group_id: str, ask: Redemption) -> Redeemed:
        check_ask(ask)  # a malformed ask fails this request alone, never the batch
        loop = asyncio.get_running_loop()
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._run(self._queue))
        pending = _Pending(group_id, ask, loop.create_future())
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
        by_group: dict[str, list[_Pending]] = defaultdict(list)
        for pending in batch:
            by_group[pending.group_id].append(pending)
        for group_id, items in by_group.items():
            asks = [p.ask for p in items]
            try:
                outcomes = await run_in_threadpool(redeem_many, self.engine, group_id, asks)
            except Exception as exc:  # the whole batch failed (a lost connection): tell each
                for p in items:
                    if not p.answer.done():
                        p.answer.set_exception(exc)
                continue
            for p, outcome in zip(items, outcomes, strict=True):
                if p.answer.done():  # the client went away
                    continue
                if isinstance(outcome, SiyuError):
                    p.answer.set_exception(outcome)
                else:
                    p.answer.set_result(outcome)
