"""Draws per second of one hot prize pool on PostgreSQL, next to the raw database, in one
run:

    python bench/bench_draws.py --seconds 10 --clients 4 --batch 250

- a raw conditional UPDATE of the prize's count per commit (pgbench: C, prepared, nothing
  else): the baseline;
- siyu, a draw per transaction (`draw`): replay look-up, the pool's locks, the member's
  counter, the HMAC roll, the prize's guarded count, the stock movement and its outbox
  event, the draw row;
- siyu, `--batch` draws per transaction (`draw_many`).

Then the over-award check: the clients draw, in batches, from a pool whose one prize
always wins and has 2,000 units, until it is exhausted: exactly 2,000 must be won and the
shelf must end at 0.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pgtemp import pgbench_tps, temporary_database
from siyu.errors import SiyuError
from siyu.importer.service import ensure_group
from siyu.inventory.stock import set_stock
from siyu.lotteries import pools
from siyu.lotteries.draw import DrawAsk, Drawn, draw, draw_many
from siyu.lotteries.errors import PoolExhausted
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade

GROUP, MEMBERS_PER_CLIENT = "bench", 2000
START, END = datetime(2026, 1, 1, tzinfo=UTC), datetime(2099, 1, 1, tzinfo=UTC)


def _pool(code: str, sku: str, odds: int, units: int) -> pools.PoolDef:
    return pools.PoolDef.model_validate(
        {
            "code": code,
            "name_zh": "抽奖",
            "name_en": "Draw",
            "starts_at": START,
            "ends_at": END,
            "entry": "free",
            "per_member": 10_000,
            "prizes": [
                {
                    "code": "A",
                    "name_zh": "奖",
                    "name_en": "Prize",
                    "sku": sku,
                    "location_id": "S1",
                    "odds_ppm": odds,
                    "units": units,
                }
            ],
        }
    )


def setup(url: str, clients: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    ensure_group(engine, GROUP)
    with engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO stock_locations (group_id, location_id, kind, store_id, city)
                    VALUES ('bench', 'S1', 'store', 'S1', '上海')""")
        )
        conn.execute(
            text("""INSERT INTO members (group_id, status, registered_at, created_at, updated_at)
                    SELECT 'bench', 'active', now(), now(), now() FROM generate_series(1, :n)"""),
            {"n": clients * MEMBERS_PER_CLIENT},
        )
    for sku, units in (("HOTPRIZE", 10**9), ("LIMITED", 2000)):
        set_stock(
            engine,
            GROUP,
            sku,
            "S1",
            delta=units,
            kind="receive",
            reason="bench",
            idempotency_key=f"in:{sku}",
        )
    pools.define(engine, GROUP, _pool("HOT", "HOTPRIZE", 500_000, 10**9), None)
    pools.define(engine, GROUP, _pool("LIMITED", "LIMITED", 1_000_000, 2000), None)
    engine.dispose()


def _member(worker: int, n: int) -> int:
    return worker * MEMBERS_PER_CLIENT + n % MEMBERS_PER_CLIENT + 1


def _siyu(url: str, worker: int, seconds: float, batch: int, pool: str) -> tuple[int, int]:
    """(draws made, prizes won) by one client."""
    engine = make_engine(url, pool_size=1, pool_pre_ping=False)
    made = won = n = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        asks = [
            DrawAsk(_member(worker, n + i), f"{pool}-{batch}-{worker}-{n + i}")
            for i in range(batch)
        ]
        n += batch
        if batch == 1:
            try:
                outcomes: list[Drawn | SiyuError] = [draw(engine, GROUP, pool, asks[0])]
            except SiyuError as refused:
                outcomes = [refused]
        else:
            outcomes = draw_many(engine, GROUP, pool, asks)
        drawn = [o for o in outcomes if isinstance(o, Drawn)]
        made += len(drawn)
        won += sum(d.outcome == "won" for d in drawn)
        if any(isinstance(o, PoolExhausted) for o in outcomes):
            break
    engine.dispose()
    return made, won


def run(url: str, clients: int, *args: object) -> tuple[float, int]:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(clients) as workers:
        started = time.perf_counter()
        counts = workers.starmap(_siyu, [(url, w, *args) for w in range(clients)])
        elapsed = time.perf_counter() - started
    return sum(m for m, _ in counts) / elapsed, sum(w for _, w in counts)


def baseline(url: str, clients: int, seconds: int) -> float:
    script = (
        "UPDATE prize_pool_prizes SET awarded = awarded + 1 WHERE group_id = 'bench' "
        "AND pool_code = 'HOT' AND prize_code = 'A' AND awarded + 1 <= units;\n"
    )
    return pgbench_tps(url, script, clients, seconds)


def over_award(url: str, clients: int, batch: int) -> tuple[int, int, int]:
    """(won, units there were, on hand after) of the LIMITED pool drawn to exhaustion."""
    _, won = run(url, clients, 600.0, batch, "LIMITED")
    engine = make_engine(url)
    with engine.connect() as conn:
        on_hand = conn.execute(
            text("""SELECT on_hand FROM stock_levels WHERE group_id = 'bench'
                    AND sku = 'LIMITED'""")
        ).scalar_one()
        logged = conn.execute(
            text("""SELECT COUNT(*) FROM prize_draws WHERE group_id = 'bench'
                    AND pool_code = 'LIMITED' AND outcome = 'won'""")
        ).scalar_one()
    engine.dispose()
    assert logged == won
    return won, 2000, int(on_hand)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("SIYU_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()
    with temporary_database(args.pg_url) as url:
        setup(url, args.clients)
        raw = baseline(url, args.clients, args.seconds)
        one, _ = run(url, args.clients, args.seconds, 1, "HOT")
        many, _ = run(url, args.clients, args.seconds, args.batch, "HOT")
        won, units, left = over_award(url, args.clients, args.batch)
    print(f"{args.clients} clients, {args.seconds} s per row; draws of one hot pool per second")
    print("| method | draws/s | vs raw |")
    print("|---|---:|---:|")
    print(f"| raw conditional UPDATE per commit (pgbench, baseline) | {raw:,.0f} | 1.00× |")
    print(f"| siyu, a draw per transaction (`draw`) | {one:,.0f} | {one / raw:.2f}× |")
    print(
        f"| siyu, {args.batch} draws per transaction (`draw_many`) | {many:,.0f} | "
        f"{many / raw:.2f}× |"
    )
    print(
        f"over-award: {units:,} units, always-winning odds, drawn to exhaustion by "
        f"{args.clients} clients: {won:,} won, {won - units:,} over-awarded, {left} left on hand"
    )


if __name__ == "__main__":
    main()
