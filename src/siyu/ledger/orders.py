"""Points from orders, and back from refunds.

Both are dated by the business: an earning happened when the order was placed (its
lot expires by the rule counted from then), a clawback when the refund was made,
whenever the posting is recorded (`Request.business_at`).

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
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, text

from siyu.errors import ConflictError, NotFoundError, SiyuError
from siyu.ledger import program, tiers
from siyu.ledger.batch import Outcome, post_many
from siyu.ledger.errors import NothingToClawBack
from siyu.ledger.models import POINTS, SV_BONUS, SV_PRINCIPAL
from siyu.ledger.points import add_points, default_expiry, spendable, take_points
from siyu.ledger.posting import Item, Plan, Request, Result, post
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
        lines = _lines(conn, group_id, [order_id]).get(order_id, [])
        tier = tiers.current_tier(conn, group_id, int(order.member_id), tier_rules, order.brand_id)
    return post(engine, *earn_item(group_id, order, lines, rules, tier_rules, tier, key_id))


def earn_item(
    group_id: str,
    order: Any,
    lines: Sequence[Any],
    rules: program.EarnRules,
    tier_rules: program.TierRules,
    tier: int,
    key_id: int | None = None,
) -> Item:
    """The earn posting of one order (`order_id, member_id, brand_id, channel, store_id,
    ordered_at, paid_fen`) with its lines (`line_no, amount_fen, category`), by the rules,
    for a member at tier index `tier`: the one plan of `earn_for_order` and of the batch
    (`earn_orders`)."""
    order_id = str(order.order_id)
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
        business_at=ordered_at,
    )

    def plan(work: Plan) -> None:
        # An earning only adds: nothing after its lot is written can refuse it, so in a
        # batch it needs no savepoint of its own (two statements fewer per order).
        work.on_first_write = None
        work.detail.update(lines=per_line, multiplier_percent=multiplier, order_id=order_id)
        if points > 0:
            add_points(work, points, default_expiry(ordered_at))
        else:
            work.detail["points"] = 0

    return request, plan


def earn_orders(
    engine: Engine, group_id: str, order_ids: Sequence[str], key_id: int | None = None
) -> list[Outcome | SiyuError]:
    """`earn_for_order` for many orders in one transaction (`ledger.batch.post_many`),
    without the tier evaluation: a result or the refusal of each, in order. The orders,
    their lines and their members' tiers are read in three queries."""
    if not order_ids:
        return []
    rules = program.earn_rules(engine, group_id)
    tier_rules = program.tier_rules(engine, group_id)
    with engine.connect() as conn:
        orders = _orders(conn, group_id, order_ids)
        lines = _lines(conn, group_id, list(orders))
        held = _tiers(
            conn, group_id, sorted({int(o.member_id) for o in orders.values() if o.member_id})
        )
    outcomes: list[Outcome | SiyuError | None] = []
    items: list[Item] = []
    for order_id in order_ids:
        order = orders.get(order_id)
        if order is None:
            outcomes.append(NotFoundError(f"order_id: no order {order_id!r}"))
        elif order.member_id is None:
            outcomes.append(_no_member(order_id))
        else:
            scope = tiers.scope_key(tier_rules, order.brand_id)
            tier = tier_rules.index(held.get((int(order.member_id), scope)))
            lines_of = lines.get(order_id, [])
            items.append(earn_item(group_id, order, lines_of, rules, tier_rules, tier, key_id))
            outcomes.append(None)
    return _merge(outcomes, post_many(engine, items))


def clawback_refund(
    engine: Engine, group_id: str, refund_id: str, key_id: int | None = None
) -> Result:
    rules = program.earn_rules(engine, group_id)
    with engine.connect() as conn:
        refund = conn.execute(
            text("""SELECT refund_id, order_id, amount_fen, refunded_at FROM refunds
                    WHERE group_id = :g AND refund_id = :r"""),
            {"g": group_id, "r": refund_id},
        ).first()
        if refund is None:
            raise NotFoundError(f"refund_id: no refund {refund_id!r}")
        order = _order(conn, group_id, refund.order_id, NothingToClawBack)
        earned = conn.execute(
            text("""SELECT detail FROM ledger_postings WHERE group_id = :g AND kind = 'earn'
                    AND idempotency_key = :k"""),
            {"g": group_id, "k": f"earn:order:{refund.order_id}"},
        ).scalar()
    if earned is None:
        raise NothingToClawBack(f"refund_id: order {refund.order_id!r} has earned no points")
    return post(engine, *clawback_item(group_id, refund, order, earned, rules, key_id))


def clawback_item(
    group_id: str,
    refund: Any,
    order: Any,
    earned_detail: str,
    rules: program.EarnRules,
    key_id: int | None = None,
) -> Item:
    """The clawback posting of a refund (`refund_id, order_id, amount_fen, refunded_at`)
    of an order that earned (`earned_detail`, its earn posting's detail): the one plan of
    `clawback_refund` and of the batch (`clawback_refunds`). In a batch, two refunds of
    one order must not share a batch: each reads what the earlier ones took back."""
    refund_id = str(refund.refund_id)
    points_earned = int(json.loads(earned_detail).get("points", 0))
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
        business_at=stored_time(refund.refunded_at),
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

    return request, plan


def clawback_refunds(
    engine: Engine, group_id: str, refund_ids: Sequence[str], key_id: int | None = None
) -> list[Outcome | SiyuError]:
    """`clawback_refund` for many refunds in one transaction: a result or the refusal of
    each, in order (`NothingToClawBack` for a refund of an order that earned nothing).
    The refunds, their orders and the earnings are read in one query. Two refunds of one
    order in the same call are refused: the caller puts them in different batches."""
    if not refund_ids:
        return []
    rules = program.earn_rules(engine, group_id)
    with engine.connect() as conn:
        rows = {
            r.refund_id: r
            for r in conn.execute(
                text("""SELECT r.refund_id, r.order_id, r.amount_fen, r.refunded_at,
                          o.member_id, o.paid_fen,
                          o.order_id AS found, p.detail AS earned
                        FROM refunds r
                        LEFT JOIN orders o ON o.group_id = r.group_id AND o.order_id = r.order_id
                        LEFT JOIN ledger_postings p ON p.group_id = r.group_id
                          AND p.kind = 'earn'
                          AND p.idempotency_key = 'earn:order:' || r.order_id
                        WHERE r.group_id = :g AND r.refund_id IN :ids""").bindparams(
                    bindparam("ids", expanding=True)
                ),
                {"g": group_id, "ids": sorted(set(refund_ids))},
            )
        }
    outcomes: list[Outcome | SiyuError | None] = []
    items: list[Item] = []
    orders_seen: set[str] = set()
    for refund_id in refund_ids:
        row = rows.get(refund_id)
        if row is None:
            outcomes.append(NotFoundError(f"refund_id: no refund {refund_id!r}"))
        elif row.found is None:
            outcomes.append(NotFoundError(f"order_id: no order {row.order_id!r}"))
        elif row.member_id is None:
            outcomes.append(_no_member(row.order_id, NothingToClawBack))
        elif row.earned is None:
            outcomes.append(
                NothingToClawBack(f"refund_id: order {row.order_id!r} has earned no points")
            )
        elif row.order_id in orders_seen:
            outcomes.append(
                ConflictError(f"refund_id: another refund of {row.order_id!r} is in this batch")
            )
        else:
            orders_seen.add(row.order_id)
            items.append(clawback_item(group_id, row, row, row.earned, rules, key_id))
            outcomes.append(None)
    return _merge(outcomes, post_many(engine, items))


def _merge(
    outcomes: list[Outcome | SiyuError | None], posted: list[Outcome]
) -> list[Outcome | SiyuError]:
    """Fill the slots left open (None) with the batch's answers, in order."""
    answers = iter(posted)
    return [next(answers) if o is None else o for o in outcomes]


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


def _order(
    conn: Connection,
    group_id: str,
    order_id: str,
    no_member: type[ConflictError] = ConflictError,
) -> Any:
    order = conn.execute(
        text(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE group_id = :g AND order_id = :o"),
        {"g": group_id, "o": order_id},
    ).first()
    if order is None:
        raise NotFoundError(f"order_id: no order {order_id!r}")
    if order.member_id is None:
        raise _no_member(order_id, no_member)
    return order


def _no_member(order_id: str, kind: type[ConflictError] = ConflictError) -> ConflictError:
    return kind(f"order_id: order {order_id!r} has no member yet (run OneID)")


_ORDER_COLUMNS = "order_id, member_id, brand_id, channel, store_id, ordered_at, paid_fen, status"


def _orders(conn: Connection, group_id: str, order_ids: Sequence[str]) -> dict[str, Any]:
    rows = conn.execute(
        text(f"""SELECT {_ORDER_COLUMNS} FROM orders
                 WHERE group_id = :g AND order_id IN :ids""").bindparams(
            bindparam("ids", expanding=True)
        ),
        {"g": group_id, "ids": sorted(set(order_ids))},
    )
    return {r.order_id: r for r in rows}


def _lines(conn: Connection, group_id: str, order_ids: list[str]) -> dict[str, list[Any]]:
    """order -> its lines (`line_no, amount_fen, category`) in line order."""
    found: dict[str, list[Any]] = {}
    if not order_ids:
        return found
    rows = conn.execute(
        text("""SELECT l.order_id, l.line_no, l.amount_fen, p.category FROM order_lines l
                LEFT JOIN products p ON p.group_id = l.group_id AND p.sku = l.sku
                WHERE l.group_id = :g AND l.order_id IN :ids
                ORDER BY l.order_id, l.line_no""").bindparams(bindparam("ids", expanding=True)),
        {"g": group_id, "ids": sorted(set(order_ids))},
    )
    for r in rows:
        found.setdefault(r.order_id, []).append(r)
    return found


def _tiers(conn: Connection, group_id: str, member_ids: list[int]) -> dict[tuple[int, str], str]:
    """(member, scope key) -> tier code held, for the listed members."""
    if not member_ids:
        return {}
    rows = conn.execute(
        text("""SELECT member_id, scope_key, tier_code FROM member_tiers
                WHERE group_id = :g AND member_id IN :ids""").bindparams(
            bindparam("ids", expanding=True)
        ),
        {"g": group_id, "ids": member_ids},
    )
    return {(int(r.member_id), r.scope_key): r.tier_code for r in rows}
