"""`settle_orders` in batches: the same points, the same ledger, as order by order.

A small synthetic brand (the demo generator) is imported twice into one store, as two
brand groups with the same rules and the same tiers held; one group is settled one posting
per transaction (`batch=1`, the `earn_for_order` / `clawback_refund` path), the other in
batches small enough that the orders span several and two refunds of one order are
split. Every order's points, every refund's clawback and every member's balances must
agree, and both ledgers must keep their invariants.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from tests.conftest import Store
from tests.ledger.invariants import check_invariants

from siyu.config import DEFAULT_STRONG_TYPES
from siyu.demo.config import GeneratorConfig
from siyu.demo.generate import generate
from siyu.identity.resolve import resolve_all
from siyu.importer.service import ensure_group, import_directory
from siyu.ledger import jobs, points, program, tiers
from siyu.ledger.errors import IdempotencyConflict, NothingToClawBack
from siyu.ledger.orders import clawback_refunds, earn_orders
from siyu.ledger.posting import Request, Result
from siyu.privacy import Vault

MID = datetime(2025, 1, 1)
END = datetime(2026, 1, 1)

RULES = program.EarnRules(
    base_points_per_yuan=1,
    rules=[
        program.EarnRule(name="tropical", category="热带水果", points_per_yuan=3),
        program.EarnRule(name="bakery brand", brand_id="B02", points_per_yuan=2),
        program.EarnRule(
            name="tmall double points",
            channel="tmall",
            points_per_yuan=1,
            stack=True,
            valid_from=datetime(2024, 6, 1),
            valid_to=datetime(2024, 12, 1),
        ),
    ],
)
TIERS = program.TierRules(
    tiers=[
        program.Tier(code="basic", name="basic"),
        program.Tier(code="silver", name="silver", min_orders=2, multiplier_percent=120),
        program.Tier(code="gold", name="gold", min_orders=4, multiplier_percent=150),
    ]
)


@pytest.fixture(scope="module")
def brand_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("brand")
    generate(out, GeneratorConfig(members=400, seed=7))
    return out


def _load(engine: Engine, vault: Vault, data: Path, rejects: Path) -> str:
    """A fresh group holding the brand, resolved, with the rules and some tiers held."""
    group = f"g-{uuid.uuid4().hex[:8]}"
    ensure_group(engine, group)
    import_directory(engine, vault, group, data, rejects)
    resolve_all(engine, group, DEFAULT_STRONG_TYPES)
    program.save(engine, group, RULES, None)
    program.save(engine, group, TIERS, None)
    # tiers held before the settlement, so that the multiplier differs between members
    with engine.connect() as conn:
        members = conn.execute(
            text("""SELECT DISTINCT member_id FROM orders WHERE group_id = :g
                    AND member_id IS NOT NULL"""),
            {"g": group},
        ).scalars()
        held = sorted(int(m) for m in members)
    tiers.evaluate(engine, group, held, MID)
    return group


def _by_order(engine: Engine, group: str) -> dict[str, Any]:
    """What the ledger holds, named by what the data names (orders, refunds), so that two
    groups with different member ids compare."""
    with engine.connect() as conn:
        postings = conn.execute(
            text("""SELECT kind, idempotency_key, detail FROM ledger_postings
                    WHERE group_id = :g"""),
            {"g": group},
        ).all()
        # a member, named by the first order it placed
        names = dict(
            conn.execute(
                text("""SELECT member_id, MIN(order_id) FROM orders
                        WHERE group_id = :g AND member_id IS NOT NULL GROUP BY member_id"""),
                {"g": group},
            ).all()
        )
        balances = conn.execute(
            text("""SELECT member_id, asset, balance FROM ledger_accounts
                    WHERE group_id = :g AND owner = 'member'"""),
            {"g": group},
        ).all()
        held = conn.execute(
            text("SELECT member_id, tier_code FROM member_tiers WHERE group_id = :g"),
            {"g": group},
        ).all()
    answers = {}
    for kind, key, detail in postings:
        d = json.loads(detail)
        d.pop("lot_id", None)
        d.pop("lots", None)
        d.pop("expired_lots", None)
        answers[key] = (kind, d)
    return {
        "postings": answers,
        "balances": {(names[int(m)], a): int(b) for m, a, b in balances},
        "tiers": {names[int(m)]: t for m, t in held if int(m) in names},
    }


@pytest.fixture
def two_groups(store: Store, vault: Vault, brand_dir: Path, tmp_path: Path) -> tuple[str, str]:
    one = _load(store.engine, vault, brand_dir, tmp_path / "r1")
    many = _load(store.engine, vault, brand_dir, tmp_path / "r2")
    return one, many


def test_batches_earn_and_claw_back_exactly_what_one_by_one_does(
    store: Store, two_groups: tuple[str, str]
) -> None:
    one, many = two_groups
    engine = store.engine
    seen: list[tuple[int, int]] = []
    single = jobs.settle_orders(engine, one, now=END, batch=1)
    batched = jobs.settle_orders(engine, many, lambda d, t: seen.append((d, t)), END, batch=37)
    # the data has what the test needs: many batches, refunds, a multiplier above 100%
    assert single.orders_earned > 5 * 37 and single.refunds_clawed_back > 0
    assert vars(single) == vars(batched)
    assert batched.refused == 0 and batched.upgrades > 0
    # progress: after every batch, ending at the total
    assert (
        seen[-1][0]
        == seen[-1][1]
        == single.orders_earned + single.refunds_clawed_back + (single.skipped)
    )
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    a, b = _by_order(engine, one), _by_order(engine, many)
    for part in a:
        diff = {k: (v, b[part].get(k)) for k, v in a[part].items() if b[part].get(k) != v}
        assert not diff, "\n".join(f"{k}\n  {v[0]}\n  {v[1]}" for k, v in diff.items())
    assert a == b
    multipliers = {d.get("multiplier_percent") for k, d in a["postings"].values() if k == "earn"}
    assert {120, 150} <= multipliers
    check_invariants(engine, one, debt_allowed=True)
    check_invariants(engine, many, debt_allowed=True)
    # a second run posts nothing, in batches or not
    for group in (one, many):
        with engine.connect() as conn:
            before = conn.execute(
                text("SELECT COUNT(*) FROM ledger_postings WHERE group_id = :g"), {"g": group}
            ).scalar_one()
        again = jobs.settle_orders(engine, group, now=END, batch=37)
        assert (again.orders_earned, again.refunds_clawed_back, again.refused) == (0, 0, 0)
        with engine.connect() as conn:
            after = conn.execute(
                text("SELECT COUNT(*) FROM ledger_postings WHERE group_id = :g"), {"g": group}
            ).scalar_one()
        assert after == before


def test_two_refunds_of_one_order_never_share_a_batch() -> None:
    refunds = [("R1", "A"), ("R2", "B"), ("R3", "A"), ("R4", "C"), ("R5", "D"), ("R6", "E")]
    assert list(jobs._refund_batches(refunds, 3)) == [["R1", "R2"], ["R3", "R4", "R5"], ["R6"]]


def test_a_refused_posting_leaves_the_rest_of_its_batch(
    store: Store, vault: Vault, brand_dir: Path, tmp_path: Path
) -> None:
    engine = store.engine
    group = _load(engine, vault, brand_dir, tmp_path / "r")
    with engine.connect() as conn:
        rows = conn.execute(
            text("""SELECT order_id, member_id FROM orders WHERE group_id = :g
                    AND member_id IS NOT NULL ORDER BY ordered_at, order_id LIMIT 5"""),
            {"g": group},
        ).all()
    ids = [r.order_id for r in rows]
    # someone used the third order's key for another posting
    taken = Request(group, int(rows[2].member_id), "earn", f"earn:order:{ids[2]}", {"x": 1})
    points.earn(engine, taken, 5, None)
    outcomes = earn_orders(engine, group, [*ids, "no-such-order"])
    assert isinstance(outcomes[2], IdempotencyConflict)
    assert all(isinstance(o, Result) and not o.replayed for o in outcomes[:2] + outcomes[3:5])
    assert type(outcomes[5]).__name__ == "NotFoundError"
    # the batch's other postings committed; asked again they replay
    again = earn_orders(engine, group, ids)
    assert [isinstance(o, Result) and o.replayed for o in again] == [1, 1, 0, 1, 1]
    check_invariants(engine, group, debt_allowed=True)


def test_settle_counts_a_refusal_and_goes_on(
    store: Store, vault: Vault, brand_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = store.engine
    group = _load(engine, vault, brand_dir, tmp_path / "r")
    orders, refunds = jobs._pending(engine, group)
    with engine.connect() as conn:
        member = conn.execute(
            text("SELECT member_id FROM orders WHERE group_id = :g AND order_id = :o"),
            {"g": group, "o": orders[1]},
        ).scalar_one()
    points.earn(engine, Request(group, int(member), "earn", f"earn:order:{orders[1]}", {}), 5, None)
    # as if a concurrent writer claimed the key after the job listed the orders
    monkeypatch.setattr(jobs, "_pending", lambda _e, _g: (orders, refunds))
    report = jobs.settle_orders(engine, group, now=END, batch=50)
    assert report.refused == 1 and report.orders_earned == len(orders) - 1
    check_invariants(engine, group, debt_allowed=True)


def test_refunds_of_orders_that_earned_nothing_are_skipped(
    store: Store, vault: Vault, brand_dir: Path, tmp_path: Path
) -> None:
    engine = store.engine
    group = _load(engine, vault, brand_dir, tmp_path / "r")
    _orders, refunds = jobs._pending(engine, group)
    ids = [r for r, _ in refunds[:3]]
    outcomes = clawback_refunds(engine, group, ids)
    assert all(isinstance(o, NothingToClawBack) for o in outcomes)
    report = jobs.settle_orders(engine, group, now=END - timedelta(days=1))
    assert report.skipped == 0 and report.refunds_clawed_back == len(refunds)
    check_invariants(engine, group, debt_allowed=True)
