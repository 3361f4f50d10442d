"""The ledger's batch jobs, each safe to run any time and any number of times (every
posting they make has a key that names what it is for).

- `settle_orders`: orders that have a member and have not earned yet earn by the rules;
  refunds not yet clawed back are (after the earnings, so a refund finds its points).
- `points.expire_due`: lots past their date become breakage.
- `tiers.review`: upgrades, grace periods and downgrades.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text

from siyu.errors import ConflictError
from siyu.ledger import program, tiers
from siyu.ledger.errors import NothingToClawBack
from siyu.ledger.orders import (
    clawback_refund,
    clawback_refunds,
    earn_for_order,
    earn_orders,
)
from siyu.ledger.posting import Result
from siyu.store.times import stored_now

Progress = Callable[[int, int], None]  # (done, total)
BATCH = 500  # postings per transaction: past a few hundred a batch gains little more
TIER_SLICE = 1000  # members per tier evaluation (each reads its metrics in two queries)


@dataclass
class SettleReport:
    orders_earned: int
    points_earned: int
    refunds_clawed_back: int
    points_clawed_back: int
    skipped: int  # refunds of orders that earned nothing
    upgrades: int = 0  # members these orders lifted above the entry tier
    refused: int = 0  # postings the ledger refused (left for the next run)


def settle_orders(
    engine: Engine,
    group_id: str,
    progress: Progress | None = None,
    now: datetime | None = None,
    batch: int = BATCH,
) -> SettleReport:
    """`now` is when the tier window ends (default: now). Orders earn `batch` at a time,
    each batch one transaction (`ledger.batch.post_many`) with the same plan as
    `earn_for_order`; then refunds are clawed back the same way (two refunds of one order
    never share a batch); then the members whose orders counted are upgraded. A posting
    the ledger refuses leaves the rest of its batch alone and is counted in `refused`;
    `batch=1` is the one-by-one path (`earn_for_order`, `clawback_refund`)."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    orders, refunds = _pending(engine, group_id)
    total = len(orders) + len(refunds)
    report = SettleReport(0, 0, 0, 0, 0)
    earners: set[int] = set()
    done = 0
    for chunk in _chunks(orders, batch):
        for earned in _earn(engine, group_id, chunk):
            if isinstance(earned, Result):
                earners.add(earned.member_id)
                report.orders_earned += 1
                report.points_earned += int(earned.detail.get("points", 0))
            else:
                report.refused += 1
        done += len(chunk)
        if progress:
            progress(done, total)
    for refund_chunk in _refund_batches(refunds, batch):
        for clawed in _claw_back(engine, group_id, refund_chunk):
            if isinstance(clawed, Result):
                report.refunds_clawed_back += 1
                report.points_clawed_back += int(clawed.detail.get("points", 0))
            elif isinstance(clawed, NothingToClawBack):
                report.skipped += 1  # the order earned nothing (or has no member yet)
            else:
                report.refused += 1
        done += len(refund_chunk)
        if progress:
            progress(done, total)
    # Upgrades at once for everyone whose orders just counted (downgrades wait for the
    # review), a slice of members at a time: each member's evaluation is its own, and the
    # metrics of a slice are read in two queries.
    entry = program.tier_rules(engine, group_id).tiers[0].code
    members, as_of = sorted(earners), now or stored_now()
    for start in range(0, len(members), TIER_SLICE):
        changes = tiers.evaluate(engine, group_id, members[start : start + TIER_SLICE], as_of)
        report.upgrades += sum(c.reason == "upgrade" and c.to_tier != entry for c in changes)
    return report


def _pending(engine: Engine, group_id: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Orders with a member that have not earned, and refunds (with their order) not
    clawed back, oldest first."""
    with engine.connect() as conn:
        orders = (
            conn.execute(
                text("""SELECT o.order_id FROM orders o WHERE o.group_id = :g
                      AND o.member_id IS NOT NULL AND o.status <> 'cancelled'
                      AND NOT EXISTS (SELECT 1 FROM ledger_postings p WHERE p.group_id = :g
                          AND p.idempotency_key = 'earn:order:' || o.order_id)
                    ORDER BY o.ordered_at, o.order_id"""),
                {"g": group_id},
            )
            .scalars()
            .all()
        )
        refunds = conn.execute(
            text("""SELECT r.refund_id, r.order_id FROM refunds r WHERE r.group_id = :g
                  AND NOT EXISTS (SELECT 1 FROM ledger_postings p WHERE p.group_id = :g
                      AND p.idempotency_key = 'clawback:' || r.refund_id)
                ORDER BY r.refunded_at, r.refund_id"""),
            {"g": group_id},
        ).all()
    return list(orders), [(r.refund_id, r.order_id) for r in refunds]


def _earn(engine: Engine, group_id: str, order_ids: list[str]) -> list[Any]:
    if len(order_ids) > 1:
        return earn_orders(engine, group_id, order_ids)
    try:
        return [earn_for_order(engine, group_id, order_ids[0], evaluate_tier=False)]
    except ConflictError as refusal:
        return [refusal]


def _claw_back(engine: Engine, group_id: str, refund_ids: list[str]) -> list[Any]:
    if len(refund_ids) > 1:
        return clawback_refunds(engine, group_id, refund_ids)
    try:
        return [clawback_refund(engine, group_id, refund_ids[0])]
    except ConflictError as refusal:
        return [refusal]


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _refund_batches(refunds: list[tuple[str, str]], size: int) -> Iterator[list[str]]:
    """Refunds in order, `size` at a time, a batch cut early where a second refund of
    one order would join it (each refund reads what the earlier ones took back)."""
    chunk: list[str] = []
    orders: set[str] = set()
    for refund_id, order_id in refunds:
        if len(chunk) == size or order_id in orders:
            yield chunk
            chunk, orders = [], set()
        chunk.append(refund_id)
        orders.add(order_id)
    if chunk:
        yield chunk
