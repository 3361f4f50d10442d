"""Many postings in one transaction: the same answers as one by one, each posting still
all-or-nothing, and no overdraft between concurrent batches."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine
from tests.conftest import Store
from tests.ledger.invariants import check_invariants

from siyu.importer.service import ensure_group
from siyu.ledger import points, stored_value
from siyu.ledger.batch import post_many
from siyu.ledger.errors import IdempotencyConflict, InsufficientBalance
from siyu.ledger.posting import Item, Request, Result


def _pay(group: str, member: int, key: str, amount: int) -> Item:
    return stored_value.pay_item(Request(group, member, "pay", key, {"amount_fen": amount}), amount)


def test_fifty_payments_of_ten_in_one_batch(store: Store) -> None:
    stored_value.top_up(store.engine, Request(store.group_id, 3, "top_up", "t", {}), 100, 0)
    items = [_pay(store.group_id, 3, f"p{i}", 10) for i in range(50)]
    items.append(_pay(store.group_id, 3, "p0", 10))  # a retry inside the batch
    outcomes = post_many(store.engine, items)
    paid = [o for o in outcomes if isinstance(o, Result) and not o.replayed]
    refused = [o for o in outcomes if isinstance(o, InsufficientBalance)]
    assert (len(paid), len(refused)) == (10, 40)
    assert outcomes[-1].replayed and outcomes[-1].posting_id == outcomes[0].posting_id  # type: ignore[union-attr]
    assert paid[-1].balances["sv_principal"] == 0
    check_invariants(store.engine, store.group_id)
    # the refused keys were not used up
    assert isinstance(
        post_many(store.engine, [_pay(store.group_id, 3, "p49", 10)])[0], InsufficientBalance
    )


def test_a_batch_ends_where_the_same_postings_one_by_one_end(store: Store) -> None:
    def items(group: str) -> list:  # type: ignore[type-arg]
        made = []
        for i in range(40):
            member = 1 + i % 4
            if i % 4 == 0:
                made.append(
                    points.earn_item(Request(group, member, "earn", f"e{i}", {"i": i}), 30, None)
                )
            elif i % 4 == 1:
                made.append(
                    points.spend_item(Request(group, member, "spend", f"s{i}", {"i": i}), 25)
                )
            elif i % 4 == 2:
                made.append(
                    stored_value.top_up_item(Request(group, member, "top_up", f"t{i}", {}), 50, 5)
                )
            else:
                made.append(_pay(group, member, f"p{i}", 33))
        made.append(points.earn_item(Request(group, 1, "earn", "e0", {"i": "other"}), 30, None))
        return made

    batch = post_many(store.engine, items(store.group_id))
    assert isinstance(batch[-1], IdempotencyConflict)
    other = f"g-{uuid.uuid4().hex[:8]}"
    ensure_group(store.engine, other)
    one_by_one = [post_many(store.engine, [item])[0] for item in items(other)]
    assert [type(o).__name__ for o in batch] == [type(o).__name__ for o in one_by_one]
    for a, b in zip(batch, one_by_one, strict=True):
        if isinstance(a, Result) and isinstance(b, Result):
            assert (a.balances, a.detail.keys()) == (b.balances, b.detail.keys())
    check_invariants(store.engine, store.group_id)
    check_invariants(store.engine, other)


@pytest.mark.postgres
def test_concurrent_batches_on_one_hot_member_never_overdraw(pg_engine: Engine) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    ensure_group(pg_engine, group)
    stored_value.top_up(pg_engine, Request(group, 1, "top_up", "t", {}), 1000, 0)
    barrier = threading.Barrier(8)

    def worker(w: int) -> int:
        barrier.wait()
        outcomes = post_many(pg_engine, [_pay(group, 1, f"w{w}-{i}", 7) for i in range(30)])
        return sum(isinstance(o, Result) for o in outcomes)

    with ThreadPoolExecutor(8) as pool:
        paid = sum(pool.map(worker, range(8)))
    assert paid == 1000 // 7  # 142 payments of 7 fit in 1000; 6 fen stay
    check_invariants(pg_engine, group)
