"""Stock deductions per second on PostgreSQL, on one hot SKU and on spread SKUs, next to
the ways it is usually done, all in one run:

    python bench/bench_inventory.py --seconds 10 --clients 4 [--batch 100]

- naive read-then-write (SELECT the level, UPDATE it to the new value): the benchmark
  counts what it oversells;
- SELECT ... FOR UPDATE, then UPDATE;
- a raw conditional UPDATE per commit (pgbench: C, prepared, nothing else): the baseline;
- siyu, a reservation per transaction (`reserve`);
- siyu, `--batch` reservations per transaction (`reserve_many`).

Every client takes one unit per order. The hot SKU has 100 units per second per client
more than can be sold in the run, except in the oversell test, where it has 2,000.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import time
from pathlib import Path

import psycopg
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pgtemp import pgbench_tps, temporary_database
from siyu.importer.service import ensure_group
from siyu.inventory.errors import OutOfStock
from siyu.inventory.reservations import Order, Reservation, reserve, reserve_many
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade

GROUP, SPREAD = "bench", 10_000


def setup(url: str, hot_units: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    ensure_group(engine, GROUP)
    with engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO stock_locations (group_id, location_id, kind, city)
                    VALUES ('bench', 'W1', 'warehouse', '上海')""")
        )
        conn.execute(
            text("""INSERT INTO stock_levels (group_id, sku, location_id, on_hand, reserved,
                      updated_at)
                    SELECT 'bench', 'S' || g, 'W1', 1000000, 0, now()
                    FROM generate_series(1, :n) g"""),
            {"n": SPREAD},
        )
        conn.execute(
            text("""INSERT INTO stock_levels VALUES ('bench', 'HOT', 'W1', :u, 0, now()),
                      ('bench', 'LIMITED', 'W1', 2000, 0, now())"""),
            {"u": hot_units},
        )
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _sku(rng: random.Random, hot: bool) -> str:
    return "HOT" if hot else f"S{rng.randint(1, SPREAD)}"


def _naive(url: str, worker: int, hot: bool, seconds: float, sku: str | None) -> int:
    done = 0
    rng = random.Random(worker)
    with psycopg.connect(_dsn(url)) as conn:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            item = sku or _sku(rng, hot)
            with conn.transaction():
                on_hand, reserved = conn.execute(
                    "SELECT on_hand, reserved FROM stock_levels WHERE group_id = 'bench' "
                    "AND sku = %s AND location_id = 'W1'",
                    (item,),
                ).fetchone()  # type: ignore[misc]
                if on_hand - reserved < 1:
                    if sku:
                        break
                    continue
                conn.execute(
                    "UPDATE stock_levels SET reserved = %s WHERE group_id = 'bench' "
                    "AND sku = %s AND location_id = 'W1'",
                    (reserved + 1, item),
                )
            done += 1
    return done


def _for_update(url: str, worker: int, hot: bool, seconds: float, sku: str | None) -> int:
    done = 0
    rng = random.Random(worker)
    with psycopg.connect(_dsn(url)) as conn:
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            item = _sku(rng, hot)
            with conn.transaction():
                on_hand, reserved = conn.execute(
                    "SELECT on_hand, reserved FROM stock_levels WHERE group_id = 'bench' "
                    "AND sku = %s AND location_id = 'W1' FOR UPDATE",
                    (item,),
                ).fetchone()  # type: ignore[misc]
                if on_hand - reserved < 1:
                    continue
                conn.execute(
                    "UPDATE stock_levels SET reserved = reserved + 1 WHERE group_id = 'bench' "
                    "AND sku = %s AND location_id = 'W1'",
                    (item,),
                )
            done += 1
    return done


def _siyu(url: str, worker: int, hot: bool, seconds: float, batch: int) -> int:
    engine = make_engine(url, pool_size=1, pool_pre_ping=False)
    rng = random.Random(worker)
    done = n = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        if batch == 1:
            try:
                reserve(engine, GROUP, f"{hot}-1-{worker}-{n}", "pos", [(_sku(rng, hot), 1)])
                done += 1
            except OutOfStock:
                pass
            n += 1
        else:
            orders = [
                Order(f"{hot}-{batch}-{worker}-{n + i}", "pos", [(_sku(rng, hot), 1)])
                for i in range(batch)
            ]
            n += batch
            done += sum(isinstance(o, Reservation) for o in reserve_many(engine, GROUP, orders))
    engine.dispose()
    return done


def rate(target, url: str, clients: int, *args: object) -> float:  # type: ignore[no-untyped-def]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(clients) as pool:
        started = time.perf_counter()
        counts = pool.starmap(target, [(url, w, *args) for w in range(clients)])
        elapsed = time.perf_counter() - started
    return sum(counts) / elapsed


def pgbench(url: str, clients: int, hot: bool, seconds: int) -> float:
    script = ("\\set id 0\n" if hot else f"\\set id random(1, {SPREAD})\n") + (
        "UPDATE stock_levels SET reserved = reserved + 1 WHERE group_id = 'bench' "
        "AND sku = (CASE WHEN :id = 0 THEN 'HOT' ELSE 'S' || :id END) AND location_id = 'W1' "
        "AND on_hand >= reserved + 1;\n"
    )
    return pgbench_tps(url, script, clients, seconds)


def oversold(url: str, clients: int) -> tuple[int, int]:
    """Clients racing for the 2,000 LIMITED units with read-then-write: units handed out
    against units there were."""
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(clients) as pool:
        counts = pool.starmap(_naive, [(url, w, True, 60.0, "LIMITED") for w in range(clients)])
    return sum(counts), 2000


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("SIYU_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()
    with temporary_database(args.pg_url) as url:
        setup(url, hot_units=10**9)
        sold, there = oversold(url, args.clients)
        print(
            f"read-then-write on 2,000 units from {args.clients} clients: {sold:,} sold, "
            f"{sold - there:,} oversold"
        )
        print(f"{args.clients} clients, {args.seconds} s per cell; deductions per second")
        print("| method | one hot SKU | spread over 10,000 SKUs |")
        print("|---|---:|---:|")
        rows = [
            (
                "naive read-then-write (oversells)",
                lambda hot: rate(_naive, url, args.clients, hot, args.seconds, None),
            ),
            (
                "SELECT ... FOR UPDATE, then UPDATE",
                lambda hot: rate(_for_update, url, args.clients, hot, args.seconds, None),
            ),
            (
                "raw conditional UPDATE per commit (pgbench, baseline)",
                lambda hot: pgbench(url, args.clients, hot, args.seconds),
            ),
            (
                "siyu, a reservation per transaction",
                lambda hot: rate(_siyu, url, args.clients, hot, args.seconds, 1),
            ),
            (
                f"siyu, {args.batch} reservations per transaction",
                lambda hot: rate(_siyu, url, args.clients, hot, args.seconds, args.batch),
            ),
        ]
        for label, measure in rows:
            print(f"| {label} | {measure(True):,.0f} | {measure(False):,.0f} |")


if __name__ == "__main__":
    main()
