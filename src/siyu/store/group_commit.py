"""Group commit: requests that arrive within a few milliseconds share one transaction.

In a flash sale or a hot campaign every request touches the same rows (a SKU's stock, a
template's counters). Committed one by one they queue on those rows' locks, one commit
each. A `GroupCommit` collects the asks that arrive within `window_ms` (or until a batch
is full), groups them by key (a brand group, a TTL: batches of different keys are never
mixed) and applies each group with one call of `apply` in a worker thread: one
transaction, the hot rows locked once, each ask still answered on its own, with its
result or the error that refused it. Under no load an ask waits at most the window; under
load the window fills at once.

One per worker process, on that worker's event loop. The domains give `apply` (inventory's
`reserve_many`, coupons' `redeem_many`); this holds only the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from anyio import to_thread

Key = TypeVar("Key", bound=Hashable)
Ask = TypeVar("Ask")
Answer = TypeVar("Answer")


@dataclass
class _Pending(Generic[Key, Ask, Answer]):
    key: Key
    ask: Ask
    answer: asyncio.Future[Answer] = field(repr=False)


class GroupCommit(Generic[Key, Ask, Answer]):
    def __init__(
        self,
        apply: Callable[[Key, list[Ask]], Sequence[Answer | Exception]],
        window_ms: float = 2.0,
        max_batch: int = 200,
    ) -> None:
        self.apply, self.window, self.max_batch = apply, window_ms / 1000, max_batch
        self._queue: asyncio.Queue[_Pending[Key, Ask, Answer]] | None = None
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, key: Key, ask: Ask) -> Answer:
        """Wait for `ask`'s own answer; raises the error that refused it."""
        loop = asyncio.get_running_loop()
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._run(self._queue))
        pending: _Pending[Key, Ask, Answer] = _Pending(key, ask, loop.create_future())
        await self._queue.put(pending)
        return await pending.answer

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    async def _run(self, queue: asyncio.Queue[_Pending[Key, Ask, Answer]]) -> None:
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

    async def _apply(self, batch: list[_Pending[Key, Ask, Answer]]) -> None:
        by_key: dict[Key, list[_Pending[Key, Ask, Answer]]] = defaultdict(list)
        for pending in batch:
            by_key[pending.key].append(pending)
        for key, items in by_key.items():
            asks = [p.ask for p in items]
            try:
                outcomes = await to_thread.run_sync(self.apply, key, asks)
            except Exception as exc:  # the whole batch failed (a lost connection): tell each
                for p in items:
                    if not p.answer.done():
                        p.answer.set_exception(exc)
                continue
            for p, outcome in zip(items, outcomes, strict=True):
                if p.answer.done():  # the client went away
                    continue
                if isinstance(outcome, Exception):
                    p.answer.set_exception(outcome)
                else:
                    p.answer.set_result(outcome)
