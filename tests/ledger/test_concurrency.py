"""Many threads and processes spending from one member at once on PostgreSQL: the
database settles every race; zero overdraft, exact totals, retries change nothing."""

from __future__ import annotations

import multiprocessing
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine
from tests.ledger.invariants import check_invariants

from siyu.importer.service import ensure_group
from siyu.ledger import points, stored_value
from siyu.ledger.errors import InsufficientBalance
from siyu.ledger.posting import Request
from siyu.store.engine import make_engine

pytestmark = pytest.mark.postgres


def _pay(engine: Engine, group: str, key: str, barrier: threading.Barrier) -> str:
    barrier.wait()
    try:
        stored_value.pay(engine, Request(group, 7, "pay", key, {"amount_fen": 10}), 10)
        return "paid"
    except InsufficientBalance:
        return "refused"


def test_fifty_concurrent_payments_of_ten_from_a_hundred(pg_engine: Engine) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    ensure_group(pg_engine, group)
    # given 100 fen topped up at a store
    stored_value.top_up(pg_engine, Request(group, 7, "top_up", "top", {}), 100, 0)
    keys = [f"pay-{i}" for i in range(50)]
    barrier = threading.Barrier(50)
    # when 50 payments of 10 arrive at once, each with its own idempotency key
    with ThreadPoolExecutor(50) as pool:
        outcomes = list(pool.map(lambda k: _pay(pg_engine, group, k, barrier), keys))
    # then exactly 10 succeed and the balance is 0, never negative
    assert outcomes.count("paid") == 10 and outcomes.count("refused") == 40
    check_invariants(pg_engine, group)
    # and retrying every one of them changes nothing
    barrier = threading.Barrier(50)
    with ThreadPoolExecutor(50) as pool:
        again = list(pool.map(lambda k: _pay(pg_engine, group, k, barrier), keys))
    assert again.count("paid") == 10
    result = stored_value.top_up(pg_engine, Request(group, 7, "top_up", "top", {}), 100, 0)
    assert result.replayed and result.balances["sv_principal"] == 100  # as first answered
    with pg_engine.connect() as conn:
        left = conn.exec_driver_sql(
            f"SELECT SUM(balance) FROM ledger_accounts WHERE group_id = '{group}' "
            "AND owner = 'member' AND asset LIKE 'sv_%%'"
        ).scalar_one()
    assert left == 0
    check_invariants(pg_engine, group)


def _spend_many(url: str, group: str, worker: int, tries: int) -> int:
    engine = make_engine(url)
    spent = 0
    for i in range(tries):
        try:
            request = Request(group, 9, "spend", f"w{worker}-{i}", {"points": 3})
            points.spend(engine, request, 3)
            spent += 3
        except InsufficientBalance:
            pass
    engine.dispose()
    return spent


def test_processes_spending_points_never_overdraw(pg_engine: Engine) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    ensure_group(pg_engine, group)
    for lot in range(5):  # several lots, so spends cross lot boundaries
        points.earn(pg_engine, Request(group, 9, "earn", f"e{lot}", {"lot": lot}), 40, None)
    url = pg_engine.url.render_as_string(hide_password=False)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        spent = pool.starmap(_spend_many, [(url, group, w, 30) for w in range(4)])
    # 200 points, spent 3 at a time: 66 spends succeed (198), whoever wins them
    assert sum(spent) == 198
    check_invariants(pg_engine, group)
