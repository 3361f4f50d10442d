"""Postings from past orders and refunds carry the business time (when the order was
placed, when the refund was made) beside the time the ledger recorded them; points earned
from an order expire by the rule counted from the order's time; and a balance read never
counts points past their date, before or after the expiry job."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from tests.brandfiles import write, write_reference
from tests.conftest import Store
from tests.ledger.invariants import check_invariants

from siyu.config import DEFAULT_STRONG_TYPES
from siyu.identity.resolve import resolve_all
from siyu.importer.service import import_directory
from siyu.ledger import jobs, points
from siyu.ledger.queries import BALANCES, EXPIRING, STATEMENT
from siyu.privacy import Vault
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade
from siyu.store.reads import EngineReads
from siyu.store.times import stored_now, stored_time

BATCHES = pytest.mark.parametrize("batch", [1, 500], ids=["one-by-one", "batched"])


def _order(order_id: str, at: datetime, paid_fen: int) -> dict[str, str | None]:
    return {
        "order_id": order_id,
        "brand_id": "B1",
        "channel": "pos",
        "buyer_type": "card",
        "buyer_value": "C001",
        "ordered_at": at.isoformat(),
        "total_fen": str(paid_fen),
        "paid_fen": str(paid_fen),
        "store_id": "S1",
    }


def _settle(
    store: Store,
    vault: Vault,
    tmp_path: Path,
    orders: list[dict[str, str | None]],
    refunds: list[dict[str, str | None]],
    batch: int,
) -> tuple[int, jobs.SettleReport]:
    """A brand with one member (card C001) and these orders and refunds, imported,
    resolved and settled; the member's id and the settle report."""
    directory = tmp_path / "brand"
    write_reference(directory)
    member = {
        "member_ref": "M1",
        "brand_id": "B1",
        "registered_at": "2020-01-01T10:00:00",
        "channel": "pos",
        "card": "C001",
    }
    write(directory / "members.csv", [member])
    write(directory / "orders.csv", orders)
    if refunds:
        write(directory / "refunds.csv", refunds)
    import_directory(store.engine, vault, store.group_id, directory, tmp_path / "rejects")
    resolve_all(store.engine, store.group_id, DEFAULT_STRONG_TYPES)
    report = jobs.settle_orders(store.engine, store.group_id, batch=batch)
    with store.engine.connect() as conn:
        member_id = conn.execute(
            text("SELECT member_id FROM members WHERE group_id = :g"), {"g": store.group_id}
        ).scalar_one()
    return int(member_id), report


def _postings(store: Store) -> dict[tuple[str, str], Any]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            text("""SELECT kind, reference, business_at, created_at FROM ledger_postings
                    WHERE group_id = :g"""),
            {"g": store.group_id},
        ).all()
    return {(r.kind, r.reference): r for r in rows}


def _read(store: Store, member: int) -> tuple[dict[str, int], list[Any], list[Any]]:
    """Balances, the points still to expire and the statement, through the read port."""

    async def read() -> tuple[dict[str, int], list[Any], list[Any]]:
        async with EngineReads(store.engine).connection() as reader:
            p = {"g": store.group_id, "m": member, "now": stored_now(), "n": 50}
            held = {r.asset: int(r.balance) for r in await reader.all(BALANCES, p)}
            return held, await reader.all(EXPIRING, p), await reader.all(STATEMENT, p)

    return asyncio.run(read())


@BATCHES
def test_orders_settled_late_are_dated_when_placed_and_old_points_are_already_expired(
    store: Store, vault: Vault, tmp_path: Path, batch: int
) -> None:
    # given a member's order placed two years ago (100 yuan) and one placed 40 days ago
    # (200 yuan), neither settled yet
    now = stored_now()
    old = datetime(now.year - 2, 3, 1, 9, 30)
    recent = now - timedelta(days=40)
    orders = [_order("OLD", old, 10_000), _order("NEW", recent, 20_000)]
    # when the settle job runs today
    member, report = _settle(store, vault, tmp_path, orders, [], batch)
    assert report.orders_earned == 2
    # then each earning carries its order's time, and the time it was recorded (today)
    postings = _postings(store)
    assert stored_time(postings["earn", "OLD"].business_at) == old
    assert stored_time(postings["earn", "NEW"].business_at) == recent
    assert all(stored_time(p.created_at) >= now for p in postings.values())
    # and the statement reads as it happened: newest business time first
    held, expiring, statement = _read(store, member)
    assert [(e.kind, e.amount, stored_time(e.business_at)) for e in statement] == [
        ("earn", 200, recent),
        ("earn", 100, old),
    ]
    # and the old order's points expired at the end of the year after it was placed: the
    # balance does not count them, though the expiry job has not run
    with store.engine.connect() as conn:
        lots = dict(
            conn.execute(
                text("SELECT points, expires_at FROM point_lots WHERE group_id = :g"),
                {"g": store.group_id},
            ).all()
        )
    assert stored_time(lots[100]) == datetime(old.year + 1, 12, 31, 23, 59, 59) < now
    assert held["points"] == 200
    end_of_next_year = datetime(recent.year + 1, 12, 31, 23, 59, 59)
    assert [(stored_time(r.expires_at), int(r.points)) for r in expiring] == [
        (end_of_next_year, 200)
    ]
    # when the expiry job runs afterwards
    assert points.expire_due(store.engine, store.group_id, stored_now()) == 1
    # then the balance read is unchanged: the job only records the breakage
    assert _read(store, member)[0]["points"] == 200
    check_invariants(store.engine, store.group_id)


@BATCHES
def test_a_clawback_is_dated_when_the_refund_was_made(
    store: Store, vault: Vault, tmp_path: Path, batch: int
) -> None:
    # given an order placed 40 days ago and a refund of a quarter of it 30 days ago
    now = stored_now()
    placed, refunded = now - timedelta(days=40), now - timedelta(days=30)
    refund = {
        "refund_id": "R1",
        "order_id": "NEW",
        "refunded_at": refunded.isoformat(),
        "amount_fen": "5000",
    }
    # when both are settled today
    member, report = _settle(
        store, vault, tmp_path, [_order("NEW", placed, 20_000)], [refund], batch
    )
    assert (report.orders_earned, report.refunds_clawed_back) == (1, 1)
    # then the clawback carries the refund's time, and the statement shows it first
    postings = _postings(store)
    assert stored_time(postings["clawback", "NEW"].business_at) == refunded
    assert stored_time(postings["clawback", "NEW"].created_at) >= now
    statement = _read(store, member)[2]
    assert [(e.kind, e.amount, stored_time(e.business_at)) for e in statement] == [
        ("clawback", -50, refunded),
        ("earn", 200, placed),
    ]
    check_invariants(store.engine, store.group_id)


def test_the_migration_dates_existing_postings_by_when_they_were_recorded(
    tmp_path: Path,
) -> None:
    # given a store at the schema before business times, holding a posting and its entry
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0007")
    recorded = datetime(2025, 5, 6, 7, 8, 9)
    with engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO ledger_postings (posting_id, group_id, idempotency_key,
                      request_sha256, kind, member_id, created_at)
                    VALUES (1, 'g', 'k', 'h', 'earn', 7, :at)"""),
            {"at": recorded},
        )
        conn.execute(
            text("""INSERT INTO ledger_entries (posting_id, group_id, account_id, member_id,
                      asset, amount, created_at) VALUES (1, 'g', 1, 7, 'points', 5, :at)"""),
            {"at": recorded},
        )
    # when it is migrated to the head
    upgrade(engine)
    # then both carry the recording time as their business time
    with engine.connect() as conn:
        for table in ("ledger_postings", "ledger_entries"):
            at = conn.execute(text(f"SELECT business_at FROM {table}")).scalar_one()
            assert stored_time(at) == recorded, table
    engine.dispose()
