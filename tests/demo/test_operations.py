"""`seed_operations` on a small generated brand: a ledger that keeps its invariants and
holds more than earnings, stock that equals its movements with ATP per channel, and a
second run that changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from tests.conftest import Store
from tests.inventory.helpers import check_invariants as check_stock
from tests.ledger.invariants import check_invariants as check_ledger

from siyu.config import DEFAULT_STRONG_TYPES
from siyu.demo.config import GeneratorConfig
from siyu.demo.generate import generate
from siyu.demo.operations import MARKETPLACES, OWN_CHANNELS, seed_operations
from siyu.identity.resolve import resolve_all
from siyu.importer.service import import_directory
from siyu.inventory.stock import atp_many
from siyu.privacy import Vault

TABLES = (
    "ledger_postings",
    "ledger_entries",
    "ledger_accounts",
    "point_lots",
    "member_tiers",
    "tier_changes",
    "stock_locations",
    "channel_locations",
    "channel_safety_stock",
    "stock_levels",
    "stock_movements",
    "outbox",
)


@pytest.fixture(scope="module")
def brand_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("brand")
    generate(out, GeneratorConfig(members=600, seed=5))
    return out


def _counts(store: Store) -> dict[str, int]:
    return {t: store.count(t) for t in TABLES}


def test_operations_make_loyalty_and_stock_real_once(
    store: Store, vault: Vault, brand_dir: Path, tmp_path: Path
) -> None:
    engine, group = store.engine, store.group_id
    import_directory(engine, vault, group, brand_dir, tmp_path / "rejects")
    resolve_all(engine, group, DEFAULT_STRONG_TYPES)
    steps: set[str] = set()
    report = seed_operations(engine, group, brand_dir, lambda s, _d, _t: steps.add(s))
    assert steps == {"settle", "spend", "stock"}

    # loyalty: every order with a member earned, statements hold more than earnings
    with engine.connect() as conn:
        orders = conn.execute(
            text("""SELECT COUNT(*) FROM orders WHERE group_id = :g
                    AND member_id IS NOT NULL AND status <> 'cancelled'"""),
            {"g": group},
        ).scalar_one()
        kinds = dict(
            conn.execute(
                text("""SELECT kind, COUNT(*) FROM ledger_postings WHERE group_id = :g
                        GROUP BY kind"""),
                {"g": group},
            ).all()
        )
        last = conn.execute(
            text("SELECT MAX(ordered_at) FROM orders WHERE group_id = :g"), {"g": group}
        ).scalar_one()
        since = conn.execute(
            text("SELECT MIN(since) FROM member_tiers WHERE group_id = :g"), {"g": group}
        ).scalar_one()
    assert report.settle.orders_earned == orders == kinds["earn"]
    assert report.settle.refunds_clawed_back == kinds.get("clawback", 0) > 0
    assert report.top_ups == kinds["top_up"] > 0
    assert report.payments == kinds["pay"] >= report.top_ups
    assert report.redemptions == kinds["spend"] > 0
    assert report.refused == 0 and report.settle.upgrades > 0
    assert str(since)[:19] == str(last)[:19]  # tiers as of the data's latest order
    check_ledger(engine, group, debt_allowed=True)

    # stock: levels equal their movements, never negative; every channel has ATP
    assert report.locations > 0 and report.stock_counts > 0 and report.units > 0
    check_stock(engine, group)
    with engine.connect() as conn:
        negative = conn.execute(
            text("SELECT COUNT(*) FROM stock_levels WHERE group_id = :g AND on_hand < 0"),
            {"g": group},
        ).scalar_one()
        skus = list(
            conn.execute(
                text("SELECT sku FROM products WHERE group_id = :g"), {"g": group}
            ).scalars()
        )
        atp = atp_many(conn, group, skus)
        pending = conn.execute(
            text("SELECT COUNT(*) FROM outbox WHERE group_id = :g AND topic = 'stock.atp'"),
            {"g": group},
        ).scalar_one()
    assert negative == 0
    assert set(atp[skus[0]]) == {*MARKETPLACES, *OWN_CHANNELS}
    for channel in (*MARKETPLACES, *OWN_CHANNELS):
        assert sum(by[channel] for by in atp.values()) > 0, channel
    # the brand's own channels also ship from stores: never less than the marketplaces
    assert all(by["miniprogram"] >= by["tmall"] for by in atp.values())
    assert pending == len(skus) * len(atp[skus[0]])

    # a second run changes nothing
    before = _counts(store)
    again = seed_operations(engine, group, brand_dir)
    assert _counts(store) == before
    assert (again.top_ups, again.payments, again.redemptions, again.refused) == (0, 0, 0, 0)
    assert (again.locations, again.stock_counts, again.settle.orders_earned) == (0, 0, 0)
