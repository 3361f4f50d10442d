"""Ledger postings per second on PostgreSQL: spread over many members and on one hot
member, next to a raw conditional UPDATE per commit (pgbench, C) in the same run.

    python bench/bench_ledger.py --members 10000 --seconds 10 --clients 8

siyu's side: `stored_value.pay` of 1 fen (claim the key, lock the member's accounts,
split principal and bonus, conditional UPDATEs, entries) from `--clients` processes.
The baseline is the cheapest possible safe deduction: one `UPDATE ... WHERE balance >= 1`
per transaction, from pgbench with the same number of clients.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import sys
import time
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pgtemp import pgbench_tps, temporary_database
from siyu.importer.service import ensure_group
from siyu.ledger import stored_value
from siyu.ledger.batch import post_many
from siyu.ledger.errors import InsufficientBalance
from siyu.ledger.posting import Request, Result
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade

GROUP = "bench"


def setup(url: str, members: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    ensure_group(engine, GROUP)
    for m in range(1, members + 1):
        request = Request(GROUP, m, "top_up", f"top-{m}", {})
        stored_value.top_up(engine, request, 10**9, 10**8)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE raw_accounts (id int PRIMARY KEY, balance bigint)"))
        conn.execute(
            text("INSERT INTO raw_accounts SELECT g, 1000000000 FROM generate_series(1, :n) g"),
            {"n": members},
        )
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()


def _postings(url: str, worker: int, members: int, hot: bool, seconds: float, batch: int) -> int:
    engine = make_engine(url, pool_size=1, pool_pre_ping=False)  # as the API configures it
    rng = random.Random(worker)
    done = sent = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        items = []
        for _ in range(batch):
            member = 1 if hot else rng.randint(1, members)
            key = f"{hot}-{batch}-{worker}-{sent}"
            sent += 1
            items.append(stored_value.pay_item(Request(GROUP, member, "pay", key, {}), 1))
        if batch == 1:  # the plain path: post() and a commit per posting
            try:
                stored_value.pay(engine, items[0][0], 1)
                done += 1
            except InsufficientBalance:
                pass
        else:
            done += sum(isinstance(o, Result) for o in post_many(engine, items))
    engine.dispose()
    return done


def siyu_rate(url: str, clients: int, members: int, hot: bool, seconds: int, batch: int) -> float:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(clients) as pool:
        started = time.perf_counter()
        counts = pool.starmap(
            _postings, [(url, w, members, hot, seconds, batch) for w in range(clients)]
        )
        elapsed = time.perf_counter() - started
    return sum(counts) / elapsed


def pgbench_rate(url: str, clients: int, members: int, hot: bool, seconds: int) -> float:
    script = (
        "\\set id 1\n" if hot else f"\\set id random(1, {members})\n"
    ) + "UPDATE raw_accounts SET balance = balance - 1 WHERE id = :id AND balance >= 1;\n"
    return pgbench_tps(url, script, clients, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100, help="postings per batch transaction")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("SIYU_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()
    with temporary_database(args.pg_url) as url:
        started = time.perf_counter()
        setup(url, args.members)
        print(
            f"{args.members:,} members topped up in {time.perf_counter() - started:.0f} s; "
            f"{args.clients} clients, {args.seconds} s per row"
        )
        print(
            "| workload | raw conditional UPDATE per commit (pgbench) | siyu, a posting per "
            f"transaction | ratio | siyu, {args.batch} postings per transaction | ratio |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for label, hot in (("spread over members", False), ("one hot member", True)):
            raw = pgbench_rate(url, args.clients, args.members, hot, args.seconds)
            one = siyu_rate(url, args.clients, args.members, hot, args.seconds, 1)
            many = siyu_rate(url, args.clients, args.members, hot, args.seconds, args.batch)
            print(
                f"| {label} | {raw:,.0f} | {one:,.0f} | {one / raw:.2f} | {many:,.0f} | "
                f"{many / raw:.2f} |"
            )


if __name__ == "__main__":
    main()
