"""The ledger's batch jobs, each safe to run any time and any number of times (every
posting they make has a key that names what it is for).

- `settle_orders`: orders that have a member and have not earned yet earn by the rules;
  refunds not yet clawed back are (after the earnings, so a refund finds its points).
- `points.expire_due`: lots past their date become breakage.
- `tiers.review`: upgrades, grace periods and downgrades.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, text

from siyu.errors import ConflictError
from siyu.ledger import program, tiers
from siyu.ledger.orders import clawback_refund, earn_for_order

Progress = Callable[[int, int], None]  # (done, total)


@dataclass
class SettleReport:
    orders_earned: int
    points_earned: int
    refunds_clawed_back: int
    points_clawed_back: int
    skipped: int  # refunds of orders that earned nothing
    upgrades: int = 0  # members these orders lifted above the entry tier


def settle_orders(
    engine: Engine,
    group_id: str,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> SettleReport:
    """`now` is when the tier window ends (default: now)."""
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
        refunds = (
            conn.execute(
                text("""SELECT r.refund_id FROM refunds r WHERE r.group_id = :g
                      AND NOT EXISTS (SELECT 1 FROM ledger_postings p WHERE p.group_id = :g
                          AND p.idempotency_key = 'clawback:' || r.refund_id)
                    ORDER BY r.refunded_at, r.refund_id"""),
                {"g": group_id},
            )
            .scalars()
            .all()
        )
    total = len(orders) + len(refunds)
    report = SettleReport(0, 0, 0, 0, 0)
    earners: set[int] = set()
    for i, order_id in enumerate(orders, start=1):
        result = earn_for_order(engine, group_id, order_id, evaluate_tier=False)
        earners.add(result.member_id)
        report.orders_earned += 1
        report.points_earned += int(result.detail.get("points", 0))
        if progress and (i % 500 == 0 or i == total):
            progress(i, total)
    for j, refund_id in enumerate(refunds, start=len(orders) + 1):
        try:
            result = clawback_refund(engine, group_id, refund_id)
        except ConflictError:
            report.skipped += 1  # the order earned nothing (or has no member yet)
        else:
            report.refunds_clawed_back += 1
            report.points_clawed_back += int(result.detail.get("points", 0))
        if progress and (j % 500 == 0 or j == total):
            progress(j, total)
    # Upgrades at once for everyone whose orders just counted (downgrades wait for the
    # review).
    entry = program.tier_rules(engine, group_id).tiers[0].code
    report.upgrades = sum(
        c.reason == "upgrade" and c.to_tier != entry
        for c in tiers.evaluate(engine, group_id, sorted(earners), now)
    )
    return report
