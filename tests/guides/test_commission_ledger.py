"""Commission on the ledger (issue #19): the state machine on SQLite and PostgreSQL.

Given a brand with guides G1 (store S1) and G2 (store S2) and orders keyed in at the till,
when the commission jobs run, then every fen is a ledger entry of a balanced posting, the
statement equals its entries, clawbacks never exceed the accrual, frozen commission is
never payable before its freeze ends, and re-running posts nothing twice."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
from sqlalchemy import Engine, text
from tests.conftest import Store

from siyu.errors import ValidationError, parse_document
from siyu.guides import commission_accrual as jobs
from siyu.guides.attribution import attribute
from siyu.guides.commission_rules import CommissionRules, save
from siyu.guides.commission_statements import (
    release_rows,
    statement,
    unbalanced_accruals,
    unbalanced_releases,
)
from siyu.guides.models import guide_classes
from siyu.guides.shares import record_share, record_touch
from siyu.importer.service import ensure_group

FEB, MAR, APR = datetime(2025, 2, 1), datetime(2025, 3, 1), datetime(2025, 4, 1)
RULES = {
    "default_rate_bp": 100,  # 1 %
    "freeze_days": 7,
    "rules": [
        {"name": "shoes", "category": "shoes", "rate_bp": 500},  # 5 %
        {"name": "shoes-tmall", "category": "shoes", "channel": "tmall", "rate_bp": 800},
        {"name": "spring", "campaign": "spring", "fixed_fen": 1_000},
        {"name": "spring-B1", "campaign": "spring", "brand_id": "B1", "fixed_fen": 1_500},
    ],
}


def _setup(store: Store) -> None:
    g = store.group_id
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO brands VALUES (:g, 'B1', 'Brand 1')"), {"g": g})
        for s in ("S1", "S2"):
            conn.execute(
                text(
                    "INSERT INTO stores (group_id, store_id, brand_id, name, city) "
                    "VALUES (:g, :s, 'B1', :s, 'SH')"
                ),
                {"g": g, "s": s},
            )
        for guide, s in (("G1", "S1"), ("G2", "S2")):
            conn.execute(
                text(
                    "INSERT INTO guides (group_id, guide_id, store_id, alias) "
                    "VALUES (:g, :id, :s, :id)"
                ),
                {"g": g, "id": guide, "s": s},
            )
        for sku, cat in (("K1", "shoes"), ("K2", "bags")):
            conn.execute(
                text("INSERT INTO products VALUES (:g, :sku, 'B1', :sku, :c, 100)"),
                {"g": g, "sku": sku, "c": cat},
            )


def _order(
    store: Store,
    order_id: str,
    guide: str | None,
    at: datetime,
    paid: int,
    lines: list[tuple[str, int]],
    channel: str = "pos",
    coupon: str | None = None,
) -> None:
    g = store.group_id
    with store.engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO orders (group_id, order_id, brand_id, channel, store_id,
                      guide_id, coupon_code, buyer_identity_id, member_id, status, ordered_at,
                      paid_at, total_fen, discount_fen, paid_fen)
                    VALUES (:g, :o, 'B1', :c, 'S1', :guide, :coupon, 1, 1, 'paid', :at, :at,
                      :p, 0, :p)"""),
            {
                "g": g,
                "o": order_id,
                "c": channel,
                "guide": guide,
                "coupon": coupon,
                "at": at,
                "p": paid,
            },
        )
        for n, (sku, amount) in enumerate(lines, start=1):
            conn.execute(
                text("INSERT INTO order_lines VALUES (:g, :o, :n, :sku, 1, :a, :a)"),
                {"g": g, "o": order_id, "n": n, "sku": sku, "a": amount},
            )


def _refund(store: Store, refund_id: str, order_id: str, at: datetime, amount: int) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO refunds (group_id, refund_id, order_id, refunded_at, amount_fen)
                    VALUES (:g, :r, :o, :at, :a)"""),
            {"g": store.group_id, "r": refund_id, "o": order_id, "at": at, "a": amount},
        )


def _balances(store: Store, guide: str) -> dict[str, int]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            text("""SELECT a.asset, a.balance FROM ledger_accounts a JOIN guide_accounts ga
                      ON ga.group_id = a.group_id AND a.member_id = -ga.account_no
                    WHERE a.group_id = :g AND ga.guide_id = :guide AND a.owner = 'guide'"""),
            {"g": store.group_id, "guide": guide},
        ).all()
    return {r.asset: int(r.balance) for r in rows}


def _ledger_is_sound(store: Store) -> None:
    """Every commission posting sums to zero; every guide account's balance is the sum of
    its entries; a guide's four accounts sum to zero; every release and accrual posting
    moved the sum of its orders' sub-ledger rows."""
    with store.engine.connect() as conn:
        unbalanced = conn.execute(
            text("""SELECT p.posting_id FROM ledger_postings p JOIN ledger_entries e
                      ON e.posting_id = p.posting_id
                    WHERE p.group_id = :g AND p.kind LIKE 'cm_%'
                    GROUP BY p.posting_id HAVING SUM(e.amount) <> 0"""),
            {"g": store.group_id},
        ).all()
        drift = conn.execute(
            text("""SELECT a.account_id FROM ledger_accounts a
                    WHERE a.group_id = :g AND a.owner = 'guide' AND a.balance <>
                      (SELECT COALESCE(SUM(e.amount), 0) FROM ledger_entries e
                       WHERE e.account_id = a.account_id)"""),
            {"g": store.group_id},
        ).all()
        per_guide = conn.execute(
            text("""SELECT member_id, SUM(balance) AS s FROM ledger_accounts
                    WHERE group_id = :g AND owner = 'guide' GROUP BY member_id"""),
            {"g": store.group_id},
        ).all()
        releases = unbalanced_releases(conn, store.group_id)
        accruals = unbalanced_accruals(conn, store.group_id)
    assert unbalanced == [] and drift == [] and releases == [] and accruals == []
    assert all(int(r.s) == 0 for r in per_guide)


@pytest.fixture
def brand(store: Store) -> Store:
    _setup(store)
    save(store.engine, store.group_id, CommissionRules.model_validate(RULES), None)
    return store


def test_the_most_specific_rule_wins_and_accrual_is_frozen(brand: Store) -> None:
    _order(brand, "O-shoes", "G1", datetime(2025, 2, 3), 10_000, [("K1", 7_000), ("K2", 3_000)])
    _order(brand, "O-tmall", "G1", datetime(2025, 2, 4), 10_000, [("K1", 10_000)], "tmall")
    _order(brand, "O-bags", "G2", datetime(2025, 2, 5), 10_000, [("K2", 9_000), ("K1", 1_000)])
    _order(brand, "O-none", None, datetime(2025, 2, 5), 10_000, [("K1", 10_000)])
    run = jobs.accrue(brand.engine, brand.group_id, FEB, MAR)
    assert (run.accrued, run.accrued_fen) == (3, 500 + 800 + 100)
    with brand.engine.connect() as conn:
        rules = dict(
            conn.execute(
                text("SELECT order_id, rule FROM commission_accruals WHERE group_id = :g"),
                {"g": brand.group_id},
            ).all()
        )
    assert rules == {"O-shoes": "shoes", "O-tmall": "shoes-tmall", "O-bags": None}
    assert _balances(brand, "G1") == {
        "cm_accrued": -1_300,
        "cm_frozen": 1_300,
        "cm_payable": 0,
        "cm_paid": 0,
    }
    _ledger_is_sound(brand)


def test_commission_follows_attribution_and_falls_back_to_the_till(brand: Store) -> None:
    # given a member opened G1's share the day before buying at G2's till, attributed
    with brand.engine.begin() as conn:
        member = conn.execute(
            text("""INSERT INTO members (group_id, status, registered_at, created_at,
                      updated_at) VALUES (:g, 'active', :t, :t, :t) RETURNING member_id"""),
            {"g": brand.group_id, "t": datetime(2025, 1, 1)},
        ).scalar_one()
    share = record_share(brand.engine, brand.group_id, "G1", "product", "K2", "g1-bags")
    record_touch(
        brand.engine, brand.group_id, share.share_code, "t1", datetime(2025, 2, 4), member_id=member
    )
    _order(brand, "O-shared", "G2", datetime(2025, 2, 5), 10_000, [("K2", 10_000)])
    with brand.engine.begin() as conn:
        conn.execute(
            text("UPDATE orders SET member_id = :m WHERE group_id = :g AND order_id = 'O-shared'"),
            {"m": member, "g": brand.group_id},
        )
    attribute(brand.engine, brand.group_id, FEB, MAR, at=datetime(2025, 3, 1))
    # and an order at G2's till that came after the attribution run
    _order(brand, "O-late", "G2", datetime(2025, 2, 6), 10_000, [("K2", 10_000)])
    # when commission accrues for February
    jobs.accrue(brand.engine, brand.group_id, FEB, MAR)
    with brand.engine.connect() as conn:
        basis = dict(
            conn.execute(
                text("SELECT order_id, attribution FROM commission_accruals WHERE group_id = :g"),
                {"g": brand.group_id},
            ).all()
        )
    # then the shared order's commission is the sharer's, on the share's basis, and the
    # order attribution never saw is the till guide's
    assert basis == {"O-shared": "share", "O-late": "till"}
    assert _balances(brand, "G1")["cm_frozen"] == 100 and _balances(brand, "G2")["cm_frozen"] == 100
    _ledger_is_sound(brand)


def test_a_campaign_rule_is_matched_through_the_coupon(brand: Store) -> None:
    with brand.engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO coupons (group_id, code, template_id, template_code, member_id,
                      campaign, status, valid_from, valid_until, issued_at)
                    VALUES (:g, 'C-1', 1, 'T', 1, 'spring', 'redeemed', :a, :a, :a)"""),
            {"g": brand.group_id, "a": FEB},
        )
    _order(brand, "O-c", "G1", datetime(2025, 2, 3), 10_000, [("K1", 10_000)], coupon="C-1")
    run = jobs.accrue(brand.engine, brand.group_id, FEB, MAR)
    # spring-B1 names two dimensions, beating "shoes" (one) and "spring" (one)
    assert run.accrued_fen == 1_500


def test_a_class_rule_matches_only_a_guide_of_that_class(brand: Store) -> None:
    doc = {**RULES, "rules": [*RULES["rules"], {"name": "A", "guide_class": "A", "rate_bp": 1000}]}
    save(brand.engine, brand.group_id, CommissionRules.model_validate(doc), None)
    _order(brand, "O1", "G1", datetime(2025, 2, 3), 10_000, [("K2", 10_000)])
    _order(brand, "O2", "G2", datetime(2025, 2, 3), 10_000, [("K2", 10_000)])
    run = jobs.accrue(brand.engine, brand.group_id, FEB, MAR, guide_classes={"G1": "A"})
    assert run.accrued_fen == 1_000 + 100  # G1 is class A (10 %), G2 unknown: the default


def test_the_class_earned_before_the_month_is_the_one_paid_by(brand: Store) -> None:
    doc = {**RULES, "rules": [*RULES["rules"], {"name": "A", "guide_class": "A", "rate_bp": 1000}]}
    save(brand.engine, brand.group_id, CommissionRules.model_validate(doc), None)
    # given G1 was classed A for January and C for February, G2 A for February only
    with brand.engine.begin() as conn:
        for guide, cls, start, end in (
            ("G1", "A", datetime(2025, 1, 1), FEB),
            ("G1", "C", FEB, MAR),
            ("G2", "A", FEB, MAR),
        ):
            conn.execute(
                guide_classes.insert(),
                {
                    "group_id": brand.group_id,
                    "guide_id": guide,
                    "period_start": start,
                    "period_end": end,
                    "guide_class": cls,
                    "spam_risk": 0,
                    "metrics": "{}",
                    "rule_id": 1,
                    "rules_version": 1,
                    "computed_at": end,
                },
            )
    _order(brand, "O1", "G1", datetime(2025, 2, 3), 10_000, [("K2", 10_000)])
    _order(brand, "O2", "G2", datetime(2025, 2, 3), 10_000, [("K2", 10_000)])
    # when February accrues with no classes given, G1 is paid as the A it was in January
    # and G2, classed only after February began, by the default
    run = jobs.accrue(brand.engine, brand.group_id, FEB, MAR)
    assert run.accrued_fen == 1_000 + 100


def test_the_largest_line_names_the_category_and_a_tie_goes_to_the_smaller_code(
    brand: Store,
) -> None:
    # a tie between shoes and bags is bags ('bags' < 'shoes'): the default rate, not shoes'
    _order(brand, "O-tie", "G1", datetime(2025, 2, 3), 10_000, [("K1", 5_000), ("K2", 5_000)])
    # the largest line last, after two smaller ones of another category
    _order(
        brand,
        "O-late",
        "G1",
        datetime(2025, 2, 4),
        9_000,
        [("K2", 2_000), ("K2", 2_000), ("K1", 5_000)],
    )
    _order(brand, "O-lineless", "G1", datetime(2025, 2, 5), 10_000, [])  # no category at all
    first = jobs.accrue(brand.engine, brand.group_id, FEB, MAR)
    # an order keyed in after the first run: decided alone, the others already accrued
    _order(brand, "O-after", "G2", datetime(2025, 2, 6), 10_000, [("K2", 1_000), ("K1", 9_000)])
    second = jobs.accrue(brand.engine, brand.group_id, FEB, MAR)
    assert (first.accrued, second.accrued, second.already) == (3, 1, 3)
    with brand.engine.connect() as conn:
        decided = {
            r.order_id: (r.rule, int(r.commission_fen))
            for r in conn.execute(
                text(
                    "SELECT order_id, rule, commission_fen FROM commission_accruals "
                    "WHERE group_id = :g"
                ),
                {"g": brand.group_id},
            )
        }
    assert decided == {
        "O-tie": (None, 100),
        "O-late": ("shoes", 450),
        "O-lineless": (None, 100),
        "O-after": ("shoes", 500),
    }
    _ledger_is_sound(brand)


def test_rerunning_accrual_posts_nothing_twice(brand: Store) -> None:
    _order(brand, "O1", "G1", datetime(2025, 2, 3), 10_000, [("K1", 10_000)])
    _refund(brand, "R1", "O1", datetime(2025, 2, 4), 5_000)
    first = jobs.accrue(brand.engine, brand.group_id, FEB, MAR)
    postings = brand.count("ledger_postings")
    again = jobs.accrue(brand.engine, brand.group_id, FEB, MAR)
    assert (first.accrued, first.clawbacks) == (1, 1)
    assert (again.accrued, again.clawbacks, again.already) == (0, 0, 1)
    assert brand.count("ledger_postings") == postings
    jobs.release(brand.engine, brand.group_id, APR)
    jobs.release(brand.engine, brand.group_id, APR)
    assert brand.count("ledger_postings") == postings + 1
    _ledger_is_sound(brand)


def test_frozen_is_never_payable_before_the_freeze_ends(brand: Store) -> None:
    paid_at = datetime(2025, 2, 10, 12)
    _order(brand, "O1", "G1", paid_at, 10_000, [("K1", 10_000)])
    jobs.accrue(brand.engine, brand.group_id, FEB, MAR)
    # a second before 7 days: nothing moves
    early = jobs.release(brand.engine, brand.group_id, datetime(2025, 2, 17, 11, 59, 59))
    assert early.released == 0
    assert _balances(brand, "G1")["cm_payable"] == 0
    assert jobs.pay(brand.engine, brand.group_id, "G1", "2025-02") == 0
    assert _balances(brand, "G1")["cm_frozen"] == 500
    # at the end of the freeze it becomes payable, then paid
    done = jobs.release(brand.engine, brand.group_id, datetime(2025, 2, 17, 12))
    assert (done.released, done.released_fen) == (1, 500)
    assert jobs.pay(brand.engine, brand.group_id, "G1", "2025-03") == 500
    assert jobs.pay(brand.engine, brand.group_id, "G1", "2025-03") == 0  # once per month
    assert _balances(brand, "G1") == {
        "cm_accrued": -500,
        "cm_frozen": 0,
        "cm_payable": 0,
        "cm_paid": 500,
    }
    _ledger_is_sound(brand)


def test_clawbacks_are_proportional_and_never_exceed_the_accrual(brand: Store) -> None:
    # 5 % of 9,999 = 500 fen; refunds add up to more than the order
    _order(brand, "O1", "G1", datetime(2025, 2, 3), 9_999, [("K1", 9_999)])
    jobs.accrue(brand.engine, brand.group_id, FEB, MAR)
    _refund(brand, "R1", "O1", datetime(2025, 2, 5), 3_333)
    first = jobs.accrue(brand.engine, brand.group_id, FEB, MAR)
    assert first.clawed_back_fen == 500 * 3_333 // 9_999  # 166
    jobs.release(brand.engine, brand.group_id, datetime(2025, 2, 20))
    assert _balances(brand, "G1")["cm_payable"] == 500 - 166
    for n, amount in enumerate((3_333, 3_000, 4_000), start=2):
        _refund(brand, f"R{n}", "O1", datetime(2025, 3, n), amount)
    later = jobs.accrue(brand.engine, brand.group_id, MAR, APR)
    assert later.clawbacks == 3
    with brand.engine.connect() as conn:
        clawed = conn.execute(
            text("""SELECT SUM(e.amount) FROM ledger_entries e JOIN ledger_postings p
                      ON p.posting_id = e.posting_id
                    WHERE p.group_id = :g AND p.kind = 'cm_clawback' AND p.reference = 'O1'
                      AND e.asset = 'cm_accrued'"""),
            {"g": brand.group_id},
        ).scalar_one()
    assert int(clawed) == 500  # all of it, not a fen more
    assert _balances(brand, "G1") == {
        "cm_accrued": 0,
        "cm_frozen": 0,
        "cm_payable": 0,
        "cm_paid": 0,
    }
    _ledger_is_sound(brand)


def test_a_clawback_after_payment_leaves_payable_owed(brand: Store) -> None:
    _order(brand, "O1", "G1", datetime(2025, 2, 3), 10_000, [("K1", 10_000)])
    jobs.accrue(brand.engine, brand.group_id, FEB, MAR)
    jobs.release(brand.engine, brand.group_id, MAR)
    assert jobs.pay(brand.engine, brand.group_id, "G1", "2025-02") == 500
    _refund(brand, "R1", "O1", datetime(2025, 3, 5), 10_000)
    jobs.accrue(brand.engine, brand.group_id, MAR, APR)
    assert _balances(brand, "G1")["cm_payable"] == -500
    _ledger_is_sound(brand)


def test_a_statement_equals_its_entries_across_months(brand: Store) -> None:
    _order(brand, "O1", "G1", datetime(2025, 2, 3), 10_000, [("K1", 10_000)])  # 500
    _order(brand, "O2", "G1", datetime(2025, 2, 26), 20_000, [("K2", 20_000)])  # 200
    _order(brand, "O3", "G2", datetime(2025, 2, 27), 10_000, [("K1", 10_000)])  # 500
    jobs.accrue(brand.engine, brand.group_id, FEB, MAR)
    jobs.release(brand.engine, brand.group_id, MAR)  # O1 (Feb 10); O2's freeze ends Mar 5
    _refund(brand, "R1", "O1", datetime(2025, 3, 2), 4_000)  # a February order, in March
    _order(brand, "O4", "G1", datetime(2025, 3, 10), 10_000, [("K1", 10_000)])  # 500
    jobs.accrue(brand.engine, brand.group_id, MAR, APR)
    jobs.release(brand.engine, brand.group_id, APR)
    with brand.engine.connect() as conn:
        feb = statement(conn, brand.group_id, "2025-02", guide_id="G1")
        mar = statement(conn, brand.group_id, "2025-03", guide_id="G1")
        store2 = statement(conn, brand.group_id, "2025-02", store_id="S2")
        group = statement(conn, brand.group_id, "2025-03")
    assert feb.totals.commission_fen == 700 == sum(x.commission_fen for x in feb.lines)
    # a release is one line per guide and run (no order of its own), its orders counted
    assert [(x.reference, x.kind, x.orders) for x in feb.lines] == [
        ("O1", "cm_accrue", 0),
        (None, "cm_release", 1),
        ("O2", "cm_accrue", 0),
    ]
    assert feb.totals.released_fen == 500
    with brand.engine.connect() as conn:
        behind = release_rows(conn, brand.group_id, feb.lines[1].posting_id)
    assert [(r.order_id, r.released_fen) for r in behind] == [("O1", 500)]
    # March: O4 accrued, O1's refund a negative line (taken from payable: O1 was released);
    # O2 and O4 released
    assert [(x.reference, x.kind, x.commission_fen) for x in mar.lines if x.commission_fen] == [
        ("O1", "cm_clawback", -200),
        ("O4", "cm_accrue", 500),
    ]
    assert mar.totals.commission_fen == 300 == sum(x.commission_fen for x in mar.lines)
    assert (mar.totals.accrued_fen, mar.totals.clawed_back_fen) == (500, 200)
    assert mar.totals.released_fen == sum(
        x.payable_fen for x in mar.lines if x.kind == "cm_release"
    )
    assert mar.totals.released_fen == 200 + 500
    assert mar.totals.closing == _balances(brand, "G1")
    assert store2.totals.commission_fen == 500 and set(store2.by_guide) == {"G2"}
    assert group.by_guide["G2"].released_fen == 500
    assert group.totals.commission_fen == 300
    _ledger_is_sound(brand)


def _release_postings(store: Store) -> dict[str, tuple[int, int, int]]:
    """guide -> (posting id, cm_payable moved, orders in its commission_releases rows)."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            text("""SELECT ga.guide_id, p.posting_id,
                      (SELECT SUM(e.amount) FROM ledger_entries e
                       WHERE e.posting_id = p.posting_id AND e.asset = 'cm_payable') AS moved,
                      (SELECT COUNT(*) FROM commission_releases r
                       WHERE r.group_id = p.group_id AND r.posting_id = p.posting_id) AS n
                    FROM ledger_postings p
                    JOIN guide_accounts ga ON ga.group_id = p.group_id
                      AND ga.account_no = -p.member_id
                    WHERE p.group_id = :g AND p.kind = 'cm_release'
                    ORDER BY p.posting_id"""),
            {"g": store.group_id},
        ).all()
    found: dict[str, tuple[int, int, int]] = {}
    for r in rows:
        assert r.guide_id not in found, "one release posting per guide and run"
        found[str(r.guide_id)] = (int(r.posting_id), int(r.moved), int(r.n))
    return found


def test_a_release_run_is_one_posting_per_guide_with_its_orders_beside(brand: Store) -> None:
    _order(brand, "O1", "G1", datetime(2025, 2, 3), 10_000, [("K1", 10_000)])  # 500
    _order(brand, "O2", "G1", datetime(2025, 2, 4), 20_000, [("K2", 20_000)])  # 200
    _order(brand, "O3", "G2", datetime(2025, 2, 5), 10_000, [("K1", 10_000)])  # 500
    _order(brand, "O4", "G1", datetime(2025, 2, 25), 10_000, [("K1", 10_000)])  # 500
    _refund(brand, "R1", "O2", datetime(2025, 2, 6), 5_000)  # a quarter: 50 from frozen
    jobs.accrue(brand.engine, brand.group_id, FEB, MAR)
    # O4's freeze ends March 4: not released at March 1
    run = jobs.release(brand.engine, brand.group_id, MAR)
    assert (run.released, run.released_fen, run.postings) == (3, 500 + 150 + 500, 2)
    posted = _release_postings(brand)
    assert {g: (moved, n) for g, (_, moved, n) in posted.items()} == {
        "G1": (650, 2),
        "G2": (500, 1),
    }
    with brand.engine.connect() as conn:
        rows = release_rows(conn, brand.group_id, posted["G1"][0])
        business_at, reference = conn.execute(
            text("SELECT business_at, reference FROM ledger_postings WHERE posting_id = :p"),
            {"p": posted["G1"][0]},
        ).one()
    assert [(r.order_id, r.released_fen) for r in rows] == [("O1", 500), ("O2", 150)]
    # dated at its orders' latest freeze end (O2's), no order as its reference
    assert (str(business_at)[:10], reference) == ("2025-02-11", None)
    # a second run at the same time finds nothing matured and writes nothing
    postings, released = brand.count("ledger_postings"), brand.count("commission_releases")
    again = jobs.release(brand.engine, brand.group_id, MAR)
    assert (again.released, again.released_fen, again.postings) == (0, 0, 0)
    assert (brand.count("ledger_postings"), brand.count("commission_releases")) == (
        postings,
        released,
    )
    # a clawback after the release takes from payable (nothing of O2 is frozen any more),
    # one of O4 (still frozen) from frozen; the cumulative formula as before:
    # O2 owed 200 x 10,000 / 20,000 = 100, 50 taken before: 50; O4 500 x 2,000 / 10,000
    _refund(brand, "R2", "O2", datetime(2025, 3, 2), 5_000)
    _refund(brand, "R3", "O4", datetime(2025, 3, 3), 2_000)
    later = jobs.accrue(brand.engine, brand.group_id, MAR, APR)
    assert (later.clawbacks, later.clawed_back_fen) == (2, 50 + 100)
    with brand.engine.connect() as conn:
        moves = {
            (r.reference, r.asset): int(r.amount)
            for r in conn.execute(
                text("""SELECT p.reference, e.asset, e.amount FROM ledger_postings p
                        JOIN ledger_entries e ON e.posting_id = p.posting_id
                        WHERE p.group_id = :g AND p.kind = 'cm_clawback'
                          AND p.business_at >= :m"""),
                {"g": brand.group_id, "m": MAR},
            )
        }
    assert moves == {
        ("O2", "cm_accrued"): 50,
        ("O2", "cm_payable"): -50,
        ("O4", "cm_accrued"): 100,
        ("O4", "cm_frozen"): -100,
    }
    assert _balances(brand, "G1") == {
        "cm_accrued": -1_200 + 50 + 50 + 100,
        "cm_frozen": 400,
        "cm_payable": 650 - 50,
        "cm_paid": 0,
    }
    # O4's rest released by the next run: what is still frozen of it, in a new posting
    last = jobs.release(brand.engine, brand.group_id, APR)
    assert (last.released, last.released_fen, last.postings) == (1, 400, 1)
    assert _balances(brand, "G1")["cm_frozen"] == 0
    _ledger_is_sound(brand)


def test_a_release_run_across_months_posts_each_month_in_its_month(brand: Store) -> None:
    _order(brand, "O1", "G1", datetime(2025, 2, 3), 10_000, [("K1", 10_000)])  # Feb 10
    _order(brand, "O2", "G1", datetime(2025, 3, 2), 10_000, [("K1", 10_000)])  # Mar 9
    jobs.accrue(brand.engine, brand.group_id, FEB, APR)
    # one run catching up on both months: a posting per month of the freeze's end, so each
    # month's statement releases what matured in it, as per-order postings did
    run = jobs.release(brand.engine, brand.group_id, APR)
    assert (run.released, run.released_fen, run.postings) == (2, 1_000, 2)
    with brand.engine.connect() as conn:
        feb = statement(conn, brand.group_id, "2025-02", guide_id="G1")
        mar = statement(conn, brand.group_id, "2025-03", guide_id="G1")
    assert (feb.totals.released_fen, mar.totals.released_fen) == (500, 500)
    assert [x.orders for x in feb.lines + mar.lines if x.kind == "cm_release"] == [1, 1]
    _ledger_is_sound(brand)


def test_a_release_posting_that_differs_from_its_rows_is_found(brand: Store) -> None:
    _order(brand, "O1", "G1", datetime(2025, 2, 3), 10_000, [("K1", 10_000)])
    _order(brand, "O2", "G1", datetime(2025, 2, 4), 10_000, [("K1", 10_000)])
    jobs.accrue(brand.engine, brand.group_id, FEB, MAR)
    jobs.release(brand.engine, brand.group_id, MAR)
    (posting, moved, n) = _release_postings(brand)["G1"]
    assert (moved, n) == (1_000, 2)
    with brand.engine.begin() as conn:
        assert unbalanced_releases(conn, brand.group_id) == []
        conn.execute(
            text("""UPDATE commission_releases SET released_fen = released_fen - 1
                    WHERE group_id = :g AND order_id = 'O2'"""),
            {"g": brand.group_id},
        )
        assert unbalanced_releases(conn, brand.group_id) == [posting]
        # a row pointing at a posting that is not a release is found too
        accrual = conn.execute(
            text(
                "SELECT posting_id FROM commission_accruals WHERE group_id = :g AND order_id = 'O1'"
            ),
            {"g": brand.group_id},
        ).scalar_one()
        conn.execute(
            text("""UPDATE commission_releases SET released_fen = released_fen + 1,
                      posting_id = :p WHERE group_id = :g AND order_id = 'O2'"""),
            {"g": brand.group_id, "p": accrual},
        )
        assert unbalanced_releases(conn, brand.group_id) == sorted([posting, accrual])


def _accrual_postings(store: Store) -> list[tuple[str, str, int, int, int, str, str | None]]:
    """Every accrual posting: (guide, store, cm_frozen moved, cm_accrued moved, its rows'
    count, its business day, its reference), by guide and time."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            text("""SELECT ga.guide_id, p.store_id, p.business_at, p.reference,
                      (SELECT SUM(e.amount) FROM ledger_entries e
                       WHERE e.posting_id = p.posting_id AND e.asset = 'cm_frozen') AS frozen,
                      (SELECT SUM(e.amount) FROM ledger_entries e
                       WHERE e.posting_id = p.posting_id AND e.asset = 'cm_accrued') AS accrued,
                      (SELECT COUNT(*) FROM commission_accruals a
                       WHERE a.group_id = p.group_id AND a.posting_id = p.posting_id) AS n
                    FROM ledger_postings p
                    JOIN guide_accounts ga ON ga.group_id = p.group_id
                      AND ga.account_no = -p.member_id
                    WHERE p.group_id = :g AND p.kind = 'cm_accrue'
                    ORDER BY ga.guide_id, p.business_at"""),
            {"g": store.group_id},
        ).all()
    return [
        (
            str(r.guide_id),
            str(r.store_id),
            int(r.frozen),
            int(r.accrued),
            int(r.n),
            str(r.business_at)[:10],
            r.reference,
        )
        for r in rows
    ]


def test_an_accrual_run_is_one_posting_per_guide_and_month_with_its_orders_beside(
    brand: Store,
) -> None:
    _order(brand, "O1", "G1", datetime(2025, 2, 3), 10_000, [("K1", 10_000)])  # 500
    _order(brand, "O2", "G1", datetime(2025, 2, 26), 20_000, [("K2", 20_000)])  # 200
    _order(brand, "O3", "G2", datetime(2025, 2, 27), 10_000, [("K1", 10_000)])  # 500
    _order(brand, "O4", "G1", datetime(2025, 3, 1), 10_000, [("K1", 10_000)])  # 500, March
    _order(brand, "O5", "G1", datetime(2025, 2, 28, 23, 59, 59), 10_000, [("K2", 10_000)])  # 100
    # one run over two months: G1's February, G1's March and G2's February, each dated at
    # its latest payment, no order as its reference; the rows beside sum to each
    run = jobs.accrue(brand.engine, brand.group_id, FEB, APR)
    assert (run.accrued, run.accrued_fen, run.postings) == (5, 1_800, 3)
    assert _accrual_postings(brand) == [
        ("G1", "S1", 800, -800, 3, "2025-02-28", None),
        ("G1", "S1", 500, -500, 1, "2025-03-01", None),
        ("G2", "S2", 500, -500, 1, "2025-02-27", None),
    ]
    # a statement lists the orders, each on its payment time with its own fen, and its
    # totals are their sum; the store's statement has its own guide's only
    with brand.engine.connect() as conn:
        feb = statement(conn, brand.group_id, "2025-02", guide_id="G1")
        mar = statement(conn, brand.group_id, "2025-03", guide_id="G1")
        s2 = statement(conn, brand.group_id, "2025-02", store_id="S2")
    assert [(x.reference, x.business_at, x.commission_fen, x.frozen_fen) for x in feb.lines] == [
        ("O1", datetime(2025, 2, 3), 500, 500),
        ("O2", datetime(2025, 2, 26), 200, 200),
        ("O5", datetime(2025, 2, 28, 23, 59, 59), 100, 100),
    ]
    assert len({x.posting_id for x in feb.lines}) == 1
    assert feb.totals.accrued_fen == 800 == sum(x.commission_fen for x in feb.lines)
    assert [(x.reference, x.commission_fen) for x in mar.lines] == [("O4", 500)]
    assert [(x.reference, x.commission_fen) for x in s2.lines] == [("O3", 500)]
    # a rerun decides nothing and writes nothing
    postings = brand.count("ledger_postings")
    again = jobs.accrue(brand.engine, brand.group_id, FEB, APR)
    assert (again.accrued, again.already, again.postings) == (0, 5, 0)
    assert brand.count("ledger_postings") == postings
    # a refund of an order of a summary claws back from its own row's fen: a quarter of O2
    _refund(brand, "R1", "O2", datetime(2025, 3, 2), 5_000)
    later = jobs.accrue(brand.engine, brand.group_id, MAR, APR)
    assert (later.clawbacks, later.clawed_back_fen) == (1, 50)
    _ledger_is_sound(brand)


def test_an_accrual_posting_that_differs_from_its_rows_is_found(brand: Store) -> None:
    _order(brand, "O1", "G1", datetime(2025, 2, 3), 10_000, [("K1", 10_000)])
    _order(brand, "O2", "G1", datetime(2025, 2, 4), 10_000, [("K1", 10_000)])
    jobs.accrue(brand.engine, brand.group_id, FEB, MAR)
    with brand.engine.begin() as conn:
        posting = conn.execute(
            text(
                "SELECT posting_id FROM commission_accruals WHERE group_id = :g AND order_id = 'O2'"
            ),
            {"g": brand.group_id},
        ).scalar_one()
        assert unbalanced_accruals(conn, brand.group_id) == []
        # a row's fen changed: its posting no longer equals its rows
        conn.execute(
            text("""UPDATE commission_accruals SET commission_fen = commission_fen - 1
                    WHERE group_id = :g AND order_id = 'O2'"""),
            {"g": brand.group_id},
        )
        assert unbalanced_accruals(conn, brand.group_id) == [posting]
        conn.execute(
            text("""UPDATE commission_accruals SET commission_fen = commission_fen + 1
                    WHERE group_id = :g AND order_id = 'O2'"""),
            {"g": brand.group_id},
        )
        assert unbalanced_accruals(conn, brand.group_id) == []
        # a row dated in another month than its posting: listed in one, counted in another
        conn.execute(
            text("""UPDATE commission_accruals SET accrued_at = :t
                    WHERE group_id = :g AND order_id = 'O2'"""),
            {"g": brand.group_id, "t": datetime(2025, 3, 1)},
        )
        assert unbalanced_accruals(conn, brand.group_id) == [posting]


def test_a_guide_statement_is_not_a_member_statement(brand: Store) -> None:
    _order(brand, "O1", "G1", datetime(2025, 2, 3), 10_000, [("K1", 10_000)])
    jobs.accrue(brand.engine, brand.group_id, FEB, MAR)
    with brand.engine.connect() as conn:
        members = conn.execute(
            text("SELECT MIN(member_id) FROM ledger_entries WHERE group_id = :g"),
            {"g": brand.group_id},
        ).scalar_one()
    assert members < 0  # guides' entries never share a member's id


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rules": [{"name": "x"}]}, "rules.0"),
        ({"rules": [{"name": "x", "rate_bp": 10_001}]}, "rules.0.rate_bp"),
        ({"rules": [{"name": "x", "rate_bp": 1, "guide_class": "D"}]}, "rules.0.guide_class"),
        ({"freeze_days": -1}, "freeze_days"),
        ({"rules": [{"name": "x", "rate_bp": 1, "colour": "red"}]}, "rules.0.colour"),
        (
            {
                "rules": [
                    {"name": "a", "channel": "pos", "rate_bp": 1},
                    {"name": "b", "channel": "pos", "fixed_fen": 1},
                ]
            },
            "rules[1]",
        ),
        (
            {"rules": [{"name": "a", "rate_bp": 1}, {"name": "a", "channel": "x", "rate_bp": 1}]},
            "rules[1].name",
        ),
    ],
)
def test_a_bad_rule_document_names_the_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_document(CommissionRules, body, "commission rules")
    assert field in str(refused.value)


@pytest.mark.postgres
def test_concurrent_runs_post_each_move_once(pg_engine: Engine) -> None:
    """Four runs of accrual, clawback and release at once (PostgreSQL: SQLite takes one
    writer at a time): each order is accrued, each refund clawed back and each release
    made exactly once (the keys decide, not Python)."""
    brand = Store(pg_engine, f"g-{uuid.uuid4().hex[:8]}", "postgresql")
    ensure_group(pg_engine, brand.group_id)
    _setup(brand)
    save(brand.engine, brand.group_id, CommissionRules.model_validate(RULES), None)
    for n in range(6):
        _order(brand, f"O{n}", "G1", datetime(2025, 2, 3 + n), 10_000, [("K1", 10_000)])
        _refund(brand, f"R{n}a", f"O{n}", datetime(2025, 2, 20), 6_000)
        _refund(brand, f"R{n}b", f"O{n}", datetime(2025, 2, 21), 6_000)
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        jobs.accrue(brand.engine, brand.group_id, FEB, MAR)
        jobs.release(brand.engine, brand.group_id, MAR)

    with ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(run) for _ in range(4)]:
            future.result()
    with brand.engine.connect() as conn:
        kinds = dict(
            conn.execute(
                text("""SELECT kind, COUNT(*) FROM ledger_postings WHERE group_id = :g
                        AND kind LIKE 'cm_%' GROUP BY kind"""),
                {"g": brand.group_id},
            ).all()
        )
    # six orders of one guide and month accrued by one posting (whichever run got the lock
    # first); every order was clawed back in full while frozen: released once each, 0 fen,
    # so no release posting (it would move nothing) and six sub-ledger rows without one
    assert kinds == {"cm_accrue": 1, "cm_clawback": 12}
    with brand.engine.connect() as conn:
        released = conn.execute(
            text("""SELECT COUNT(*), SUM(released_fen), COUNT(posting_id)
                    FROM commission_releases WHERE group_id = :g"""),
            {"g": brand.group_id},
        ).one()
    assert tuple(released) == (6, 0, 0)
    # every order refunded beyond its amount: all of its 500 back, not a fen more
    assert _balances(brand, "G1") == {
        "cm_accrued": 0,
        "cm_frozen": 0,
        "cm_payable": 0,
        "cm_paid": 0,
    }
    _ledger_is_sound(brand)
