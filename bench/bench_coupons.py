"""Coupon redemptions per second on PostgreSQL, one hot campaign, next to the raw way of
doing it, all in one run:

    python bench/bench_coupons.py --seconds 8 --clients 4 --batch 100

- a raw conditional `UPDATE coupons ... WHERE status = 'issued'` and a raw counter
  `UPDATE ... used = used + 1 WHERE used + 1 <= cap`, one commit per redemption (psycopg,
  prepared statements, nothing else): the baseline;
- siyu, a redemption per transaction (`redeem`);
- siyu, `--batch` redemptions per transaction (`redeem_many`);
- siyu, through the group commit (`RedemptionBatcher`, as the API would run it): in each
  client, `--batch` tills await their redemptions at once.

Every method redeems the coupons of its own template, each coupon asked once, so every
redemption of a method raises the same counter rows (siyu: the template's redemptions
and budget counters; raw: one counter). Then the checks, for every method: a template
whose redemption cap is below the coupons offered, asked for every coupon plus duplicate
asks (the same coupon under a new key) and retried asks (the same key again), from all
clients at once: never a coupon redeemed twice, the counter equals the coupons redeemed,
and the cap holds.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
import contextlib

from pgtemp import temporary_database
from siyu.coupons import catalog
from siyu.coupons.batcher import RedemptionBatcher
from siyu.coupons.issue import issue
from siyu.coupons.redeem import Redeemed, Redemption, redeem, redeem_many
from siyu.coupons.templates import Basket, BasketLine, CouponTemplate
from siyu.errors import SiyuError
from siyu.importer.service import ensure_group
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade
from siyu.store.times import stored_now

GROUP = "bench"
BASKET = Basket("pos", (BasketLine("SKU1", 1, 20_000),), "S1")
CHECK_OFFERED, CHECK_CAP = 1_500, 1_000
METHODS = ("raw", "one", "many", "batcher")
Asks = list[tuple[int, str, str]]  # (coupon_id, code, order_id) per ask


def _template(code: str, redemptions: int | None) -> CouponTemplate:
    return CouponTemplate.model_validate(
        {
            "code": code,
            "name_zh": "满200减10",
            "name_en": "10 off 200",
            "kind": "fixed",
            "off_fen": 1_000,
            "min_paid_fen": 20_000,
            "validity": {"days_from_issue": 30},
            "face_value_fen": 1_000,
            "cost_fen": 800,
            # the hot row every redemption raises: a budget far above the run
            "limits": {"redemptions": redemptions, "budget_fen": 10**12},
        }
    )


def setup(url: str, pools: dict[str, int]) -> dict[str, list[tuple[int, str]]]:
    """Members, one template per method (and per check), and their coupons issued the
    way siyu issues them; answers (coupon_id, code) per template."""
    engine = make_engine(url)
    upgrade(engine)
    ensure_group(engine, GROUP)
    now = stored_now()
    with engine.begin() as conn:  # members as OneID creates them (coupons need no identity)
        members = [
            int(m)
            for m in conn.execute(
                text("""INSERT INTO members (group_id, status, registered_at, created_at,
                          updated_at)
                        SELECT :g, 'active', :now, :now, :now
                        FROM generate_series(1, :n) RETURNING member_id"""),
                {"g": GROUP, "now": now, "n": max(pools.values())},
            ).scalars()
        ]
    out: dict[str, list[tuple[int, str]]] = {}
    for code, n in pools.items():
        cap = CHECK_CAP if code.startswith("CHECK") else None
        catalog.save(engine, GROUP, _template(code, cap), None)
        report = issue(engine, GROUP, code, members[:n], f"bench-{code}")
        out[code] = [(c.coupon_id, c.code) for c in report.issued]
    with engine.begin() as conn:
        # the raw baseline's counter, as siyu's would be after a first redemption
        conn.execute(
            text("""INSERT INTO coupon_counters (group_id, counter, member_id, used)
                    VALUES (:g, 'RAW:raw', 0, 0), (:g, 'CHECK-raw:raw', 0, 0)"""),
            {"g": GROUP},
        )
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return out


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


class _Refused(Exception):
    """The counter refused: the coupon's UPDATE is rolled back with it."""


def _raw(url: str, worker: int, asks: Asks, counter: str, cap: int, seconds: float) -> int:
    done = 0
    with psycopg.connect(_dsn(url)) as conn:
        deadline = time.perf_counter() + seconds
        for coupon_id, _code, order in asks:
            if time.perf_counter() > deadline:
                break
            try:
                with conn.transaction():
                    used = conn.execute(
                        "UPDATE coupons SET status = 'redeemed', order_id = %s, "
                        "redeemed_at = now() WHERE coupon_id = %s AND status = 'issued'",
                        (order, coupon_id),
                    ).rowcount
                    if used != 1:
                        continue
                    raised = conn.execute(
                        "UPDATE coupon_counters SET used = used + 1 WHERE group_id = 'bench' "
                        "AND counter = %s AND member_id = 0 AND used + 1 <= %s",
                        (counter, cap),
                    ).rowcount
                    if raised != 1:
                        raise _Refused
                done += 1
            except _Refused:
                pass
    return done


def _asks(asks: Asks) -> list[Redemption]:
    # the key is the order's: a retried ask repeats both
    return [Redemption(code, order, BASKET, f"key-{order}") for _id, code, order in asks]


def _one(url: str, worker: int, asks: Asks, counter: str, cap: int, seconds: float) -> int:
    engine = make_engine(url, pool_size=1, pool_pre_ping=False)  # as the API configures it
    done = 0
    deadline = time.perf_counter() + seconds
    for ask in _asks(asks):
        if time.perf_counter() > deadline:
            break
        with contextlib.suppress(SiyuError):
            done += not redeem(engine, GROUP, ask).replayed
    engine.dispose()
    return done


def _many(
    url: str, worker: int, asks: Asks, counter: str, cap: int, seconds: float, batch: int
) -> int:
    engine = make_engine(url, pool_size=1, pool_pre_ping=False)
    done = 0
    todo = _asks(asks)
    deadline = time.perf_counter() + seconds
    for start in range(0, len(todo), batch):
        if time.perf_counter() > deadline:
            break
        outcomes = redeem_many(engine, GROUP, todo[start : start + batch])
        done += sum(isinstance(o, Redeemed) and not o.replayed for o in outcomes)
    engine.dispose()
    return done


def _batcher(
    url: str, worker: int, asks: Asks, counter: str, cap: int, seconds: float, tills: int
) -> int:
    engine = make_engine(url, pool_size=2, pool_pre_ping=False)
    todo = iter(_asks(asks))
    deadline = time.perf_counter() + seconds

    async def crowd() -> int:
        batcher = RedemptionBatcher(engine)  # the API's window and batch size

        async def till() -> int:
            done = 0
            for ask in todo:  # the tills share the queue of asks
                if time.perf_counter() > deadline:
                    break
                with contextlib.suppress(SiyuError):
                    done += not (await batcher.redeem(GROUP, ask)).replayed
            return done

        try:
            return sum(await asyncio.gather(*(till() for _ in range(tills))))
        finally:
            await batcher.close()

    done = asyncio.run(crowd())
    engine.dispose()
    return done


def rate(
    target: Callable[..., int],
    url: str,
    clients: int,
    asks: Asks,
    counter: str,
    cap: int,
    seconds: float,
    *extra: int,
) -> tuple[float, int]:
    """Redemptions per second and redemptions made, `asks` dealt out to the clients."""
    slices = [asks[w::clients] for w in range(clients)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(clients) as pool:
        pool.map(abs, range(clients))  # the clients are up before the clock starts
        started = time.perf_counter()
        counts = pool.starmap(
            target, [(url, w, s, counter, cap, seconds, *extra) for w, s in enumerate(slices)]
        )
        elapsed = time.perf_counter() - started
    return sum(counts) / elapsed, sum(counts)


def _with_duplicates(coupons: list[tuple[int, str]], method: str) -> Asks:
    """Every coupon asked once, plus a third more asks for coupons already asked for: half
    under a new key and order (another till), half repeating an ask (a retry)."""
    rng = random.Random(method)
    asks = [(cid, code, f"check-{method}-{i}") for i, (cid, code) in enumerate(coupons)]
    for n in range(len(coupons) // 3):
        cid, code, order = rng.choice(asks[: len(coupons)])
        asks.append((cid, code, order) if n % 2 else (cid, code, f"check-{method}-dup-{n}"))
    rng.shuffle(asks)
    return asks


def audit(engine: Engine, template: str, counter: str) -> dict[str, Any]:
    """What the store holds for `template`: coupons redeemed, redemption events, the most
    redemptions of one coupon, and the counter."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("""SELECT COUNT(*) FROM coupons WHERE group_id = :g AND template_code = :t
                      AND status = 'redeemed'"""),
            {"g": GROUP, "t": template},
        ).scalar_one()
        events, most = conn.execute(
            text("""SELECT COUNT(*), COALESCE(MAX(n), 0) FROM (SELECT COUNT(*) AS n
                      FROM coupon_events WHERE group_id = :g AND template_code = :t
                      AND kind = 'redeemed' GROUP BY coupon_id) x"""),
            {"g": GROUP, "t": template},
        ).one()
        used = conn.execute(
            text("""SELECT used FROM coupon_counters WHERE group_id = :g AND counter = :c
                      AND member_id = 0"""),
            {"g": GROUP, "c": counter},
        ).scalar()
    return {"rows": int(rows), "events": int(events), "most": int(most), "counter": int(used)}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--coupons", type=int, default=60_000, help="offered per method")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("SIYU_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()
    hot = {"raw": "RAW", "one": "ONE", "many": "MANY", "batcher": "BATCHER"}
    pools = {"RAW": args.coupons, "ONE": args.coupons // 3, "MANY": args.coupons}
    pools["BATCHER"] = args.coupons
    pools |= {f"CHECK-{m}": CHECK_OFFERED for m in METHODS}
    workers: dict[str, tuple[Callable[..., int], tuple[int, ...]]] = {
        "raw": (_raw, ()),
        "one": (_one, ()),
        "many": (_many, (args.batch,)),
        "batcher": (_batcher, (args.batch,)),
    }
    labels = {
        "raw": "raw conditional UPDATEs per commit (baseline)",
        "one": "siyu, a redemption per transaction (`redeem`)",
        "many": f"siyu, {args.batch} redemptions per transaction (`redeem_many`)",
        "batcher": f"siyu, group commit (`RedemptionBatcher`, {args.batch} tills a client)",
    }
    with temporary_database(args.pg_url) as url:
        started = time.perf_counter()
        coupons = setup(url, pools)
        issued = sum(len(c) for c in coupons.values())
        print(f"{issued:,} coupons issued in {time.perf_counter() - started:.0f} s")
        engine = make_engine(url)
        print(f"{args.clients} clients, {args.seconds:g} s per method, one hot template each")
        print("| method | redemptions/s | × raw | redeemed | over-redeemed | counter = rows |")
        print("|---|---:|---:|---:|---:|---|")
        baseline = 0.0
        for method in METHODS:
            template = hot[method]
            counter = "RAW:raw" if method == "raw" else f"{template}:redemptions"
            asks = [(cid, code, f"{method}-{i}") for i, (cid, code) in enumerate(coupons[template])]
            target, extra = workers[method]
            per_s, made = rate(
                target, url, args.clients, asks, counter, 10**9, args.seconds, *extra
            )
            baseline = baseline or per_s
            seen = audit(engine, template, counter)
            over = max(0, seen["most"] - 1) if method != "raw" else 0
            agrees = seen["counter"] == seen["rows"] == made and (
                method == "raw" or seen["events"] == seen["rows"]
            )
            print(
                f"| {labels[method]} | {per_s:,.0f} | {per_s / baseline:.2f} | {made:,} | "
                f"{over} | {'yes' if agrees else 'NO'} |"
            )
        print(
            f"\nChecks: {CHECK_OFFERED:,} coupons offered, a redemption cap of {CHECK_CAP:,}, "
            f"{CHECK_OFFERED // 3:,} more asks (half duplicates under new keys, half retries), "
            f"{args.clients} clients at once"
        )
        print("| method | redeemed | coupons redeemed | counter | most per coupon | holds |")
        print("|---|---:|---:|---:|---:|---|")
        for method in METHODS:
            template = f"CHECK-{method}"
            counter = "CHECK-raw:raw" if method == "raw" else f"{template}:redemptions"
            asks = _with_duplicates(coupons[template], method)
            target, extra = workers[method]
            _, made = rate(target, url, args.clients, asks, counter, CHECK_CAP, 600.0, *extra)
            seen = audit(engine, template, counter)
            most = seen["most"] if method != "raw" else "-"
            holds = made == seen["rows"] == seen["counter"] == CHECK_CAP and (
                method == "raw" or (seen["events"] == CHECK_CAP and seen["most"] == 1)
            )
            print(
                f"| {method} | {made:,} | {seen['rows']:,} | {seen['counter']:,} | {most} | "
                f"{'yes' if holds else 'NO'} |"
            )
        engine.dispose()


if __name__ == "__main__":
    main()
