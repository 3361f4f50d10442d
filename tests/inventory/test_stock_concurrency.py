"""The last units under a crowd, on PostgreSQL: threads and processes buying at once never
get more than there is, and a kill -9 in the middle leaves the books consistent."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import Engine, text
from tests.conftest import Store
from tests.inventory.helpers import check_invariants, network

from siyu.importer.service import ensure_group
from siyu.inventory.errors import OutOfStock
from siyu.inventory.reservations import reserve
from siyu.inventory.stock import set_stock
from siyu.store.engine import make_engine


def _group(engine: Engine, units: int) -> str:
    group = f"g-{uuid.uuid4().hex[:8]}"
    ensure_group(engine, group)
    network(engine, group)
    set_stock(
        engine, group, "HOT", "S1", on_hand=units, kind="count", reason="c", idempotency_key="c"
    )
    return group


@pytest.mark.postgres
def test_three_hundred_buyers_for_a_hundred_units(pg_engine: Engine) -> None:
    group = _group(pg_engine, 100)
    barrier = threading.Barrier(30)

    def buy(i: int) -> str:
        if i < 30:
            barrier.wait()
        try:
            reserve(pg_engine, group, f"O{i}", "miniprogram", [("HOT", 1)])
            return "ok"
        except OutOfStock:
            return "409"

    with ThreadPoolExecutor(30) as pool:
        outcomes = list(pool.map(buy, range(300)))
    assert outcomes.count("ok") == 100 and outcomes.count("409") == 200
    check_invariants(pg_engine, group)


def _buy_many(url: str, group: str, worker: int, tries: int) -> int:
    engine = make_engine(url)
    bought = 0
    for i in range(tries):
        try:
            reserve(engine, group, f"P{worker}-{i}", "miniprogram", [("HOT", 2)])
            bought += 2
        except OutOfStock:
            pass
    engine.dispose()
    return bought


@pytest.mark.postgres
def test_processes_buying_the_last_units(pg_engine: Engine) -> None:
    group = _group(pg_engine, 51)
    url = pg_engine.url.render_as_string(hide_password=False)
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        bought = pool.starmap(_buy_many, [(url, group, w, 20) for w in range(4)])
    assert sum(bought) == 50  # 25 pairs; the 51st unit can't make a pair
    check_invariants(pg_engine, group)


WORKER = textwrap.dedent(
    """
    import sys
    from siyu.inventory.reservations import reserve, confirm, release
    from siyu.inventory.errors import OutOfStock
    from siyu.store.engine import make_engine

    url, group = sys.argv[1], sys.argv[2]
    engine = make_engine(url)
    for i in range(100_000):
        try:
            made = reserve(engine, group, f"O{i}", "miniprogram", [("HOT", 1), ("K", 1)])
        except OutOfStock:
            continue
        (confirm if i % 2 else release)(engine, group, made.reservation_id)
        print(i, flush=True)
    """
)


def test_a_kill_in_the_middle_of_reservations(store: Store) -> None:
    network(store.engine, store.group_id)
    for sku in ("HOT", "K"):
        set_stock(
            store.engine,
            store.group_id,
            sku,
            "W1",
            on_hand=10_000,
            kind="count",
            reason="c",
            idempotency_key=sku,
        )
    url = store.engine.url.render_as_string(hide_password=False)
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, url, store.group_id],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    for n, _ in enumerate(proc.stdout):
        if n == 150:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    proc.stdout.close()
    check_invariants(store.engine, store.group_id)
    with store.engine.connect() as conn:
        statuses = dict(
            conn.execute(
                text("""SELECT status, COUNT(*) FROM reservations WHERE group_id = :g
                        GROUP BY status"""),
                {"g": store.group_id},
            ).all()
        )
    assert statuses.get("confirmed", 0) >= 75 and statuses.get("released", 0) >= 75
    assert statuses.get("open", 0) <= 1  # at most the one the kill interrupted
