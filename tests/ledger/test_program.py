"""Earn rules, refund clawbacks and tiers, on a small brand with known answers."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError as InvalidDocument
from sqlalchemy import text
from tests.brandfiles import write, write_reference
from tests.conftest import Store
from tests.ledger.invariants import check_invariants

from siyu.config import DEFAULT_STRONG_TYPES
from siyu.identity.resolve import resolve_all
from siyu.importer.service import import_directory
from siyu.ledger import points, program, tiers
from siyu.ledger.orders import clawback_refund, earn_for_order
from siyu.ledger.posting import Request
from siyu.ledger.stored_value import top_up
from siyu.privacy import Vault

T0 = datetime(2026, 3, 1, 10, 0, 0)


def order(order_id: str, at: datetime, paid: int, total: int, channel: str = "pos") -> dict:
    return {
        "order_id": order_id,
        "brand_id": "B1",
        "channel": channel,
        "buyer_type": "card",
        "buyer_value": "C001",
        "ordered_at": at.isoformat(),
        "total_fen": str(total),
        "paid_fen": str(paid),
        "store_id": "S1",
    }


@pytest.fixture
def brand(store: Store, vault: Vault, tmp_path: Path) -> int:
    d = tmp_path / "brand"
    write_reference(d)
    write(
        d / "members.csv",
        [
            {
                "member_ref": "M1",
                "brand_id": "B1",
                "registered_at": "2025-01-01T00:00:00",
                "channel": "pos",
                "card": "C001",
            }
        ],
    )
    write(
        d / "orders.csv",
        [
            order("O1", T0, 9000, 10000),
            order("O2", T0 + timedelta(days=10), 5000, 5000, channel="tmall"),
            order("O3", T0 + timedelta(days=20), 100000, 100000),
        ],
    )
    write(
        d / "order_lines.csv",
        [
            {
                "order_id": "O1",
                "line_no": "1",
                "sku": "K1",
                "qty": "1",
                "unit_price_fen": "6000",
                "amount_fen": "6000",
            },
            {
                "order_id": "O1",
                "line_no": "2",
                "sku": "K2",
                "qty": "1",
                "unit_price_fen": "4000",
                "amount_fen": "4000",
            },
        ],
    )
    write(
        d / "refunds.csv",
        [
            {
                "refund_id": "R1",
                "order_id": "O1",
                "refunded_at": (T0 + timedelta(days=1)).isoformat(),
                "amount_fen": "4500",
            }
        ],
    )
    import_directory(store.engine, vault, store.group_id, d, tmp_path / "rejects")
    resolve_all(store.engine, store.group_id, DEFAULT_STRONG_TYPES)
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT member_id FROM members WHERE group_id = :g"), {"g": store.group_id}
            ).scalar_one()
        )


RULES = program.EarnRules(
    base_points_per_yuan=1,
    rules=[
        program.EarnRule(name="fruit", category="水果", points_per_yuan=3),
        program.EarnRule(
            name="tmall double points",
            channel="tmall",
            points_per_yuan=1,
            stack=True,
            valid_from=T0,
            valid_to=T0 + timedelta(days=30),
        ),
    ],
)


def test_an_order_earns_by_its_lines_rules_and_campaigns(store: Store, brand: int) -> None:
    program.save(store.engine, store.group_id, RULES, None)
    # O1: 9000 paid over lines of 6000 (fruit, 3/yuan) and 4000 (bread, base 1/yuan)
    first = earn_for_order(store.engine, store.group_id, "O1", evaluate_tier=False)
    assert first.detail["lines"] == [[1, 5400, 3], [2, 3600, 1]]
    assert first.detail["points"] == 162 + 36
    assert earn_for_order(store.engine, store.group_id, "O1").replayed
    # O2 on tmall inside the campaign: base 1 + bonus 1
    o2 = earn_for_order(store.engine, store.group_id, "O2", evaluate_tier=False)
    assert o2.detail["points"] == 100
    check_invariants(store.engine, store.group_id)


def test_the_tier_multiplier_applies(store: Store, brand: int) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO member_tiers (group_id, member_id, scope_key, tier_code, since)
                    VALUES (:g, :m, '*', 'gold', :t)"""),
            {"g": store.group_id, "m": brand, "t": T0},
        )
    result = earn_for_order(store.engine, store.group_id, "O2")  # 50 yuan x 1 x 150%
    assert (result.detail["points"], result.detail["multiplier_percent"]) == (75, 150)


def test_a_refund_claws_back_and_spent_points_become_debt(store: Store, brand: int) -> None:
    program.save(store.engine, store.group_id, RULES, None)
    earn_for_order(store.engine, store.group_id, "O1", evaluate_tier=False)  # 198 points
    points.spend(store.engine, Request(store.group_id, brand, "spend", "s", {}), 150)
    # R1 refunds half of O1: 99 points, of which only 48 are left
    back = clawback_refund(store.engine, store.group_id, "R1")
    assert (back.detail["points"], back.detail["from_lots"], back.detail["debt"]) == (99, 48, 51)
    assert back.balances["points"] == -51
    assert clawback_refund(store.engine, store.group_id, "R1").replayed
    check_invariants(store.engine, store.group_id, debt_allowed=True)
    # the next earning repays the debt first
    later = earn_for_order(store.engine, store.group_id, "O2", evaluate_tier=False)
    assert later.detail["debt_repaid"] == 51
    assert later.balances["points"] == 100 - 51
    check_invariants(store.engine, store.group_id)


def test_the_stored_value_policy_takes_the_value_of_spent_points(store: Store, brand: int) -> None:
    rules = RULES.model_copy(
        update={"clawback_policy": "stored_value", "points_per_yuan_value": 10}
    )
    program.save(store.engine, store.group_id, rules, None)
    earn_for_order(store.engine, store.group_id, "O1")
    points.spend(store.engine, Request(store.group_id, brand, "spend", "s", {}), 150)
    top_up(store.engine, Request(store.group_id, brand, "top_up", "t", {}), 300, 0)
    back = clawback_refund(store.engine, store.group_id, "R1")
    # 51 points at 10 points per yuan = 510 fen, but only 300 are there: 30 points covered
    assert back.detail["stored_value_fen"] == 300
    assert back.detail["debt"] == 21
    check_invariants(store.engine, store.group_id, debt_allowed=True)


def test_upgrade_at_once_grace_then_downgrade_at_review(store: Store, brand: int) -> None:
    rules = program.TierRules(
        window_days=60,
        grace_days=15,
        tiers=[
            program.Tier(code="basic", name="basic"),
            program.Tier(code="silver", name="silver", min_orders=2, coupon_pack="silver-pack"),
            program.Tier(code="gold", name="gold", min_spend_fen=1_000_000),
        ],
    )
    program.save(store.engine, store.group_id, rules, None)
    granted = []
    tiers.UPGRADE_HOOKS.append(granted.append)
    try:
        changes = tiers.evaluate(store.engine, store.group_id, [brand], T0 + timedelta(days=25))
    finally:
        tiers.UPGRADE_HOOKS.remove(granted.append)
    assert [(c.from_tier, c.to_tier, c.reason) for c in changes] == [(None, "silver", "upgrade")]
    # paid 9,000 + 5,000 + 100,000, minus the 4,500 refunded
    assert changes[0].metrics == {"spend_fen": 109500, "orders": 3, "activity": 0}
    assert [g.coupon_pack for g in granted] == ["silver-pack"]
    # 90 days later the window holds no order: the review starts a grace period...
    later = T0 + timedelta(days=120)
    assert [c.reason for c in tiers.review(store.engine, store.group_id, later)] == ["grace"]
    assert tiers.review(store.engine, store.group_id, later + timedelta(days=5)) == []
    # ...and moves the member down when it ends
    final = tiers.review(store.engine, store.group_id, later + timedelta(days=16))
    assert [(c.from_tier, c.to_tier) for c in final] == [("silver", "basic")]


def test_tier_rules_are_validated() -> None:
    with pytest.raises(InvalidDocument, match="must not ask less"):
        program.TierRules(
            tiers=[
                program.Tier(code="a", name="a"),
                program.Tier(code="b", name="b", min_orders=5),
                program.Tier(code="c", name="c", min_orders=2),
            ]
        )
    with pytest.raises(InvalidDocument, match="first tier"):
        program.TierRules(tiers=[program.Tier(code="a", name="a", min_orders=1)])


def test_the_jobs_settle_orders_expire_points_and_review_tiers_once(
    store: Store, brand: int
) -> None:
    from typer.testing import CliRunner

    from siyu.cli import app
    from siyu.ledger.jobs import settle_orders

    program.save(store.engine, store.group_id, RULES, None)
    first = settle_orders(store.engine, store.group_id, now=T0 + timedelta(days=30))
    assert (first.orders_earned, first.refunds_clawed_back) == (3, 1)
    assert first.points_earned == 198 + 100 + 1000 and first.points_clawed_back == 99
    assert first.upgrades == 1  # 3 orders, 1,095 yuan in 365 days: silver at once
    again = settle_orders(store.engine, store.group_id)
    assert (again.orders_earned, again.refunds_clawed_back) == (0, 0)
    check_invariants(store.engine, store.group_id)
    # the same through the CLI, on files alone (nothing left to do), then the other jobs
    env = {
        "SIYU_DATABASE_URL": store.engine.url.render_as_string(hide_password=False),
        "SIYU_GROUP": store.group_id,
        "SIYU_SECRET_KEY": bytes(range(32)).hex(),
    }
    runner = CliRunner()
    settled = runner.invoke(app, ["loyalty", "settle-orders", "--json"], env=env)
    assert settled.exit_code == 0, settled.output
    assert '"orders_earned": 0' in settled.output
    expired = runner.invoke(app, ["loyalty", "expire-points", "--as-of", "2030-01-01"], env=env)
    assert expired.exit_code == 0 and '"postings": 1' in expired.output
    reviewed = runner.invoke(app, ["loyalty", "review-tiers", "--as-of", "2026-04-01"], env=env)
    assert reviewed.exit_code == 0 and reviewed.output.strip() == "{}"  # nothing to change
    bad = runner.invoke(app, ["loyalty", "expire-points", "--as-of", "soon"], env=env)
    assert bad.exit_code != 0 and "--as-of" in bad.output
    check_invariants(store.engine, store.group_id)


def test_one_tier_per_brand_counts_that_brands_orders(store: Store, brand: int) -> None:
    rules = program.TierRules(
        scope="brand",
        tiers=[
            program.Tier(code="basic", name="basic"),
            program.Tier(code="silver", name="silver", min_orders=3, multiplier_percent=150),
        ],
    )
    program.save(store.engine, store.group_id, rules, None)
    changes = tiers.evaluate(store.engine, store.group_id, [brand], T0 + timedelta(days=25))
    assert [(c.scope_key, c.to_tier) for c in changes] == [("B1", "silver")]
    # a B1 order earns with B1's tier
    assert (
        earn_for_order(store.engine, store.group_id, "O2", evaluate_tier=False).detail[
            "multiplier_percent"
        ]
        == 150
    )
