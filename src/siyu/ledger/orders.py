"""Points from orders, and back from refunds.

An order earns by its lines: each line's share of what was paid (discounts spread over
the lines by amount) times the rate of the rules it matches (brand, channel, category,
campaign window), the sum times the member's tier multiplier, rounded down. The posting
key names the order, so an order earns once however often it arrives.

A refund claws back the points of what it refunds, in proportion to the amount. Points
already spent are never silently forgiven: under the `debt` policy the member's points
go below zero and the next earnings repay them first; under `stored_value` their value
is taken from stored value, and whatever that cannot cover becomes debt.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Engine, text

from siyu.errors import ConflictError, NotFoundError
from siyu.ledger import program, tiers
from siyu.ledger.models import POINTS, SV_BONUS, SV_PRINCIPAL
from siyu.ledger.points import add_points, default_expiry, spendable, take_points
from siyu.ledger.posting import Plan, Request, Result, post
from siyu.ledger.stored_value import split
from siyu.store.times import stored_time


def earn_for_order(
    engine: Engine,
    group_id: str,
    order_id: str,
    key_id: int | None = None,
    evaluate_tier: bool = True,
) -> Result:
    """Earn an order's points by the rules, once; then (unless a batch job does it for
    many members at the end) upgrade the member at once if the order made it qualify."""
    result = _earn(engine, group_id, order_id, key_id)
    if evaluate_tier and not result.replayed:
        tiers.evaluate(engine, group_id, [result.member_id])
    return result


def _earn(engine: Engine, group_id: str, order_id: str, key_id: int | None) -> Result:
    rules = program.earn_rules(engine, group_id)
    tier_rules = program.tier_rules(engine, group_id)
    with engine.connect() as conn:
        order = _order(conn, group_id, order_id)
        lines = conn.execute(
            text("""SELECT l.line_no, l.amount_fen, p.category FROM order_lines l
                    LEFT JOIN products p ON p.group_id = l.group_id AND p.sku = l.sku
                    WHERE l.group_id = :g AND l.order_id = :o ORDER BY l.line_no"""),
            {"g": group_id, "o": order_id},
        ).all()
        tier = tiers.current_tier(conn, group_id, int(order.member_id), tier_rules, order.brand_id)
    ordered_at = stored_time(order.ordered_at)
    paid = int(order.paid_fen)
    gross = sum(int(r.amount_fen) for r in lines)
    priced: list[tuple[int, int, str | None]] = []  # (line_no, paid share, category)
    if lines and gross > 0:
        for r in lines:
            priced.append((int(r.line_no), paid * int(r.amount_fen) // gross, r.category))
    else:
        priced.append((0, paid, None))
    base = 0
    per_line = []
    for line_no, share, category in priced:
        rate = rules.rate(order.brand_id, order.channel, category, ordered_at)
        base += share * rate  # points x 100 (share is fen, rate is points per yuan)
        per_line.append([line_no, share, rate])
    multiplier = tier_rules.tiers[tier].multiplier_percent
    points = base * multiplier // 10_000
    request = Request(
        group_id,
        int(order.member_id),
        "earn",
        f"earn:order:{order_id}",
        {"order_id": order_id},
        reference=order_id,
        store_id=order.store_id,
        channel=order.channel,
        reason="order",
        key_id=key_id,
    )

    def plan(work: Plan) -> None:
        work.detail.update(lines=per_line, multiplier_percent=multiplier, order_id=order_id)
        if points > 0:
            add_points(work, points, default_expiry(ordered_at))
        else:
            work.detail["points"] = 0

    return post(engine, request, plan)


def clawback_refund(
    engine: Engine, group_id: str, refund_id: str, key_id: int | None = None
) -> Result:
    rules = program.earn_rules(engine, group_id)
    with engine.connect() as conn:
        refund = conn.execute(
            text("""SELECT refund_id, order_id, amount_fen FROM refunds
                    WHERE group_id = :g AND refund_id = :r"""),
            {"g": group_id, "r": refund_id},
        ).first()
        if refund is None:
            raise NotFoundError(f"refund_id: no refund {refund_id!r}")
        order = _order(conn, group_id, refund.order_id)
        earned = conn.execute(
            text("""SELECT detail FROM ledger_postings WHERE group_id = :g AND kind = 'earn'
                    AND idempotency_key = :k"""),
            {"g": group_id, "k": f"earn:order:{refund.order_id}"},
        ).scalar()
    if earned is None:
        raise ConflictError(f"refund_id: order {refund.order_id!r} has earned no points")
    points_earned = int(json.loads(earned).get("points", 0))
    paid = max(int(order.paid_fen), 1)
    due = min(points_earned, points_earned * int(refund.amount_fen) // paid)
    request = Request(
        group_id,
        int(order.member_id),
        "clawback",
        f"clawback:{refund_id}",
        {"refund_id": refund_id},
        reference=refund.order_id,
        reason="refund",
        key_id=key_id,
    )

    def plan(work: Plan) -> None:
        work.balances()  # lock the member first: two refunds of one order queue here
        already = _clawed(work.conn, group_id, refund.order_id, work.posting_id)
        owed = min(due, points_earned - already)
        taken = min(owed, spendable(work))
        if taken:
            take_points(work, taken, "issuance")
        short = owed - taken
        detail: dict[str, Any] = {"refund_id": refund_id, "points": owed, "from_lots": taken}
        if short and rules.clawback_policy == "stored_value":
            short = _from_stored_value(work, short, rules.points_per_yuan_value, detail)
        if short:
            work.allow_debt.add(POINTS)
            work.move(POINTS, -short, "issuance")
            detail["debt"] = short
        work.detail.update(detail)

    return post(engine, request, plan)


def _from_stored_value(work: Plan, short: int, per_yuan: int, detail: dict[str, Any]) -> int:
    """Take the value of `short` points from stored value; returns the points it could
    not cover."""
    held = work.balances()
    value = -(-short * 100 // per_yuan)  # fen, rounded up: the member owes whole fen
    total = held[SV_PRINCIPAL] + held[SV_BONUS]
    fen = min(value, total)
    if fen == 0:
        return short
    principal, bonus = split(fen, held[SV_PRINCIPAL], held[SV_BONUS])
    work.move(SV_PRINCIPAL, -principal, "redemption")
    work.move(SV_BONUS, -bonus, "redemption")
    covered = short if fen == value else fen * per_yuan // 100
    detail["stored_value_fen"] = fen
    return short - covered


def _clawed(conn: Connection, group_id: str, order_id: str, this_posting: int) -> int:
    """Points already clawed back from the order by earlier refunds."""
    rows = conn.execute(
        text("""SELECT detail FROM ledger_postings WHERE group_id = :g AND kind = 'clawback'
                AND reference = :o AND posting_id <> :p AND detail IS NOT NULL"""),
        {"g": group_id, "o": order_id, "p": this_posting},
    ).scalars()
    return sum(int(json.loads(d).get("points", 0)) for d in rows)


def _order(conn: Connection, group_id: str, order_id: str) -> Any:
    order = conn.execute(
        text("""SELECT order_id, member_id, brand_id, channel, store_id, ordered_at, paid_fen,
                  status FROM orders WHERE group_id = :g AND order_id = :o"""),
        {"g": group_id, "o": order_id},
    ).first()
    if order is None:
        raise NotFoundError(f"order_id: no order {order_id!r}")
    if order.member_id is None:
        raise ConflictError(f"order_id: order {order_id!r} has no member yet (run OneID)")
    return order
