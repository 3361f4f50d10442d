"""The commission jobs: accrue a period's orders (and claw back their refunds), release
what has matured. Both are safe to re-run: every posting has its key
(guides/commission_ledger.py), and orders already accrued are not decided again, so a rule
changed since keeps the commission already accrued (a new version applies to new orders).

Which guide an order is attributed to comes from ONE function, `commission_basis`: the
period's attribution (`guides.attribution`), else the till's guide.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, text

from siyu.guides import commission_ledger as cl
from siyu.guides.attribution import attributed_orders
from siyu.guides.classes import classes_before
from siyu.guides.commission_rules import OrderTerms, stored
from siyu.guides.commission_statements import month_range
from siyu.store.times import as_stored, stored_now, stored_time


@dataclass(frozen=True)
class Basis:
    """An order attributed to a guide: the shape of `guides.attribution.attributed_orders`."""

    order_id: str
    member_id: int | None
    guide_id: str
    basis: str  # why this guide: 'share', 'till' or 'own_guide' (guides.attribution)
    paid_fen: int
    ordered_at: datetime
    # The guide's A/B/C class when the order was made, once the classes land (their
    # helper fills it); None: unknown, and rules naming a class do not match.
    guide_class: str | None = None


def commission_basis(
    conn: Connection, group_id: str, since: datetime, until: datetime
) -> list[Basis]:
    """The orders placed in [since, until) and the guide each is attributed to.

    Attribution decides (`guides.attribution.attributed_orders`: the last share touch in
    its window, else the till's guide, else a protected own guide), as HQ last ran it for
    the period with its rules. An order attribution has not seen (the period was never
    attributed, or the order came after the run) falls back to the till's guide
    (`orders.guide_id`), which is what attribution itself would give it without a share
    touch; so commission never waits on an attribution run, and never overrides one."""
    found = [
        Basis(a.order_id, a.member_id, a.guide_id, a.basis, a.paid_fen, a.ordered_at)
        for a in attributed_orders(conn, group_id, as_stored(since), as_stored(until))
    ]
    rows = conn.execute(
        text("""SELECT o.order_id, o.member_id, o.guide_id, o.paid_fen, o.ordered_at
                FROM orders o
                WHERE o.group_id = :g AND o.guide_id IS NOT NULL AND o.status <> 'cancelled'
                  AND o.ordered_at >= :s AND o.ordered_at < :u
                  AND NOT EXISTS (SELECT 1 FROM order_attributions a
                    WHERE a.group_id = o.group_id AND a.order_id = o.order_id)
                ORDER BY o.ordered_at, o.order_id"""),
        {"g": group_id, "s": as_stored(since), "u": as_stored(until)},
    ).all()
    found += [
        Basis(
            r.order_id,
            None if r.member_id is None else int(r.member_id),
            r.guide_id,
            "till",
            int(r.paid_fen),
            stored_time(r.ordered_at),
        )
        for r in rows
    ]
    return sorted(found, key=lambda b: (b.ordered_at, b.order_id))


@dataclass(frozen=True)
class _Order:
    terms: OrderTerms
    paid_at: datetime
    channel: str


# What a rule matches on, for the orders of the window, in one statement: the category of
# the largest line (ties: the smaller code), the campaign of the coupon redeemed.
_TERMS = text("""SELECT o.order_id, o.brand_id, o.channel, o.paid_fen,
                   COALESCE(o.paid_at, o.ordered_at) AS paid_at, c.campaign,
                   (SELECT p.category FROM order_lines l JOIN products p
                      ON p.group_id = l.group_id AND p.sku = l.sku
                    WHERE l.group_id = o.group_id AND l.order_id = o.order_id
                    ORDER BY l.amount_fen DESC, p.category LIMIT 1) AS category
                 FROM orders o LEFT JOIN coupons c
                   ON c.group_id = o.group_id AND c.code = o.coupon_code
                 WHERE o.group_id = :g AND o.ordered_at >= :s AND o.ordered_at < :u""")


def _terms(conn: Connection, group_id: str, since: datetime, until: datetime) -> dict[str, _Order]:
    found = {}
    for r in conn.execute(_TERMS, {"g": group_id, "s": as_stored(since), "u": as_stored(until)}):
        terms = OrderTerms(r.brand_id, r.channel, r.category, r.campaign, None, int(r.paid_fen))
        found[r.order_id] = _Order(terms, stored_time(r.paid_at), r.channel)
    return found


@dataclass
class AccrualRun:
    accrued: int = 0  # orders accrued by this run
    accrued_fen: int = 0
    already: int = 0  # orders accrued by an earlier run
    no_commission: int = 0  # orders whose rule gives 0 fen
    clawbacks: int = 0
    clawed_back_fen: int = 0


def accrue(
    engine: Engine,
    group_id: str,
    since: datetime,
    until: datetime,
    guide_classes: dict[str, str] | None = None,
) -> AccrualRun:
    """Accrue the commission of the orders placed in [since, until), then claw back every
    refund (up to `until`) of an accrued order not yet clawed back. `guide_classes`: guide
    -> A/B/C for rows whose `guide_class` is unknown; none given: each guide's class from
    the latest period classified (`guides.classes`) that ended by `since`, so a month's
    commission pays by the class the guide earned before it (a guide never classified
    matches no class rule)."""
    run = AccrualRun()
    with engine.connect() as conn:
        classes = (
            guide_classes if guide_classes is not None else classes_before(conn, group_id, since)
        )
        version, rules = stored(conn, group_id)
        basis = commission_basis(conn, group_id, since, until)
        terms = _terms(conn, group_id, since, until)
        done = {
            r.order_id
            for r in conn.execute(
                text("""SELECT a.order_id FROM commission_accruals a JOIN orders o
                          ON o.group_id = a.group_id AND o.order_id = a.order_id
                        WHERE a.group_id = :g AND o.ordered_at >= :s AND o.ordered_at < :u"""),
                {"g": group_id, "s": as_stored(since), "u": as_stored(until)},
            )
        }
        stores = {
            r.guide_id: r.store_id
            for r in conn.execute(
                text("SELECT guide_id, store_id FROM guides WHERE group_id = :g"), {"g": group_id}
            )
        }
    for row in basis:
        if row.order_id in done:
            run.already += 1
            continue
        order = terms[row.order_id]
        decided = rules.decide(
            OrderTerms(
                order.terms.brand_id,
                order.terms.channel,
                order.terms.category,
                order.terms.campaign,
                row.guide_class or classes.get(row.guide_id),
                row.paid_fen,
            )
        )
        if decided.commission_fen <= 0:
            run.no_commission += 1
            continue
        store_id = stores.get(row.guide_id)
        with engine.begin() as conn:
            guide = cl.holder_id(conn, group_id, row.guide_id)
            result = cl.accrue(
                conn,
                group_id,
                guide,
                row.order_id,
                decided.commission_fen,
                order.paid_at,
                store_id,
                order.channel,
                {"rule": decided.rule, "rules_version": version, "basis": row.basis},
            )
            if result.replayed:
                run.already += 1
                continue
            conn.execute(
                text("""INSERT INTO commission_accruals (group_id, order_id, guide_id, store_id,
                          rule, rules_version, basis_fen, attribution, commission_fen,
                          freeze_until, posting_id, created_at)
                        VALUES (:g, :o, :guide, :s, :rule, :v, :b, :why, :c, :f, :p, :now)"""),
                {
                    "g": group_id,
                    "o": row.order_id,
                    "guide": row.guide_id,
                    "s": store_id,
                    "rule": decided.rule,
                    "v": version,
                    "b": row.paid_fen,
                    "why": row.basis,
                    "c": decided.commission_fen,
                    "f": order.paid_at + timedelta(days=decided.freeze_days),
                    "p": result.posting_id,
                    "now": stored_now(),
                },
            )
        run.accrued += 1
        run.accrued_fen += decided.commission_fen
    _claw_back(engine, group_id, until, run)
    return run


# Refunds of accrued orders without their clawback posting yet (its key is known).
_REFUNDS = text("""SELECT r.refund_id, r.order_id, r.amount_fen, r.refunded_at, a.guide_id,
                     a.store_id, a.basis_fen
                   FROM refunds r JOIN commission_accruals a
                     ON a.group_id = r.group_id AND a.order_id = r.order_id
                   WHERE r.group_id = :g AND r.refunded_at < :u
                     AND NOT EXISTS (SELECT 1 FROM ledger_postings p WHERE p.group_id = :g
                       AND p.idempotency_key =
                         'commission:' || r.order_id || :clawback || r.refund_id)
                   ORDER BY r.refunded_at, r.refund_id""")


def _claw_back(engine: Engine, group_id: str, until: datetime, run: AccrualRun) -> None:
    with engine.connect() as conn:
        refunds = conn.execute(
            _REFUNDS, {"g": group_id, "u": as_stored(until), "clawback": ":clawback:"}
        ).all()
    for r in refunds:
        with engine.begin() as conn:
            result = cl.clawback(
                conn,
                group_id,
                cl.holder_id(conn, group_id, r.guide_id),
                r.order_id,
                r.refund_id,
                int(r.amount_fen),
                int(r.basis_fen),
                stored_time(r.refunded_at),
                r.store_id,
            )
        if not result.replayed:
            run.clawbacks += 1
            run.clawed_back_fen += int(result.detail["clawback_fen"])


# Accruals whose freeze has ended and that have no release posting yet.
_MATURED = text("""SELECT a.order_id, a.guide_id, a.store_id, a.freeze_until
                   FROM commission_accruals a
                   WHERE a.group_id = :g AND a.freeze_until <= :at
                     AND NOT EXISTS (SELECT 1 FROM ledger_postings p WHERE p.group_id = :g
                       AND p.idempotency_key = 'commission:' || a.order_id || :release)
                   ORDER BY a.freeze_until, a.order_id""")


@dataclass
class ReleaseRun:
    released: int = 0
    released_fen: int = 0


def release(engine: Engine, group_id: str, at: datetime | None = None) -> ReleaseRun:
    """Move to payable what is still frozen of every accrual whose freeze ended by `at`
    (default now). An accrual still inside its freeze is not touched."""
    when = as_stored(at) if at is not None else stored_now()
    run = ReleaseRun()
    with engine.connect() as conn:
        matured = conn.execute(_MATURED, {"g": group_id, "at": when, "release": ":release"}).all()
    for m in matured:
        with engine.begin() as conn:
            result = cl.release(
                conn,
                group_id,
                cl.holder_id(conn, group_id, m.guide_id),
                m.order_id,
                stored_time(m.freeze_until),
                m.store_id,
            )
        if not result.replayed:
            run.released += 1
            run.released_fen += int(result.detail["released_fen"])
    return run


def pay(engine: Engine, group_id: str, guide_id: str, month: str) -> int:
    """Pay the guide what is payable, settling the statement of `month`; returns the fen
    paid (0 when this month was already paid, or nothing is payable)."""
    month_range(month)  # a ValidationError naming `month` unless YYYY-MM
    with engine.begin() as conn:
        store_id = conn.execute(
            text("SELECT store_id FROM guides WHERE group_id = :g AND guide_id = :i"),
            {"g": group_id, "i": guide_id},
        ).scalar()
        guide = cl.holder_id(conn, group_id, guide_id)
        result = cl.pay(conn, group_id, guide, guide_id, month, store_id)
    return 0 if result.replayed else int(result.detail["paid_fen"])
