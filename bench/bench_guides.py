"""Attribution and commission for one month of a brand's orders (issue #19):

    python bench/bench_guides.py --members 10000000 [--keep] [--reuse URL]

A throw-away PostgreSQL database (the server store's migrations), loaded by set-based SQL
(generate_series and random(), seeded: nothing travels through Python) and not timed:

- N members, ~80% bound to one of 2,000 guides over 300 stores (binding dates spread over
  the year before, so ~8% are still protected at order time);
- one month of orders (March 2030): 0.23 N, the warehouse bench's rate (2.3M a month at
  10M members); 60% at a till ('pos', 70% of them naming a till guide), 40% in the
  mini-program; 1% cancelled; one or two lines over 1,000 products in 10 categories;
- 0.1 N shares and 0.3 N touches: half of the touches by a buyer 0..10 days before one of
  its orders (so last touch has work, some in and some out of the 7-day window), the rest
  anywhere in the month and the week before;
- refunds of 5% of the orders (30..100% of the paid amount), a fifth of them refunded a
  second time, partially; guide classes A/B/C of February; commission rules by channel,
  category and class.

Timed, each after a CHECKPOINT, through siyu's own functions: `attribution.attribute` of
the month, `commission_accrual.accrue` (accruals and clawbacks), `commission_accrual.release`
at the month's end, and the month's statements of all guides and of all stores
(`commission_statements`). The baseline, in the same run: `INSERT INTO t SELECT` of the
month's orders (each order read and written once) and one GROUP BY over them.

Checked by SQL afterwards: every guide's statement equals the sum of its ledger entries;
every store's statement equals the sum of its guides' entries; the closing balances equal
the accounts' balances; no order's clawbacks exceed its accrual; no frozen balance is
negative; every posting sums to zero; a sample of accruals equals the rules' decision.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text

from siyu.guides import attribution, commission_accrual, commission_rules, commission_statements
from siyu.guides.classes import classes_before
from siyu.guides.commission_rules import OrderTerms
from siyu.importer.service import ensure_group
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade

GROUP = "bench"
BRAND = "B1"
MONTH = "2030-03"
SINCE, UNTIL = datetime(2030, 3, 1), datetime(2030, 4, 1)
GUIDES, STORES, PRODUCTS, CATEGORIES = 2_000, 300, 1_000, 10
ORDERS_PER_MEMBER_MONTH = 0.23  # the warehouse bench's rate: 2.3M orders a month at 10M
BUDGET_S = 120.0  # the analytics recompute budget at 10M members (docs/benchmarks.md)
RULES = {
    "default_rate_bp": 100,
    "freeze_days": 7,
    "rules": [
        {"name": "till", "channel": "pos", "rate_bp": 200},
        {"name": "online", "channel": "miniprogram", "rate_bp": 300},
        {"name": "outerwear", "category": "C1", "rate_bp": 500},
        {"name": "class-a", "guide_class": "A", "rate_bp": 400},
        {"name": "class-a-outerwear", "category": "C1", "guide_class": "A", "rate_bp": 800},
        {"name": "class-c-online", "channel": "miniprogram", "guide_class": "C", "fixed_fen": 500},
        {"name": "shoes-slow", "category": "C2", "rate_bp": 600, "freeze_days": 14},
    ],
}


def load(engine: Engine, n: int) -> dict[str, int]:
    """Everything by INSERT ... SELECT generate_series: the database makes the rows."""
    orders = round(n * ORDERS_PER_MEMBER_MONTH)
    shares, touches = max(n // 10, 1), max(3 * n // 10, 1)
    t0 = SINCE
    p = {"g": GROUP, "b": BRAND, "n": n, "m": orders, "t0": t0, "shares": shares}
    steps = [
        "SELECT setseed(0.19)",
        """INSERT INTO brands (group_id, brand_id, name) VALUES (:g, :b, 'Bench brand')""",
        f"""INSERT INTO stores (group_id, store_id, brand_id, name, city, kind)
            SELECT :g, 'S' || lpad(i::text, 3, '0'), :b, 'Store ' || i, 'Shanghai', 'store'
            FROM generate_series(1, {STORES}) i""",
        f"""INSERT INTO guides (group_id, guide_id, store_id, alias, hired_at)
            SELECT :g, 'G' || lpad(i::text, 4, '0'),
              'S' || lpad((1 + i % {STORES})::text, 3, '0'), 'Guide ' || i, :t0 - interval '2 years'
            FROM generate_series(1, {GUIDES}) i""",
        f"""INSERT INTO products (group_id, sku, brand_id, name, category, list_price_fen)
            SELECT :g, 'K' || i, :b, 'Product ' || i, 'C' || (i % {CATEGORIES}), 10000
            FROM generate_series(1, {PRODUCTS}) i""",
        """INSERT INTO members (member_id, group_id, status, brand_id, registered_at,
              created_at, updated_at)
            SELECT i, :g, 'active', :b, :t0 - interval '2 years', :t0, :t0
            FROM generate_series(1, :n) i""",
        # ~80% bound, to a guide of the member's own (a fixed hash of its id)
        f"""INSERT INTO guide_bindings (group_id, member_id, guide_id, store_id, rule, bound_at)
            SELECT :g, i, 'G' || lpad(g::text, 4, '0'),
              'S' || lpad((1 + g % {STORES})::text, 3, '0'), 'hq',
              :t0 - random() * interval '365 days'
            FROM (SELECT i, 1 + (i::bigint * 7919) % {GUIDES} AS g FROM generate_series(1, :n) i) x
            WHERE random() < 0.8""",
        f"""INSERT INTO orders (group_id, order_id, brand_id, channel, store_id, guide_id,
              buyer_identity_id, member_id, status, ordered_at, paid_at, total_fen,
              discount_fen, paid_fen)
            SELECT :g, 'O' || k, :b, CASE WHEN pos THEN 'pos' ELSE 'miniprogram' END,
              CASE WHEN pos THEN 'S' || lpad((1 + k % {STORES})::text, 3, '0') END,
              CASE WHEN pos AND random() < 0.7
                   THEN 'G' || lpad((1 + (k::bigint * 31) % {GUIDES})::text, 4, '0') END,
              m, m, CASE WHEN random() < 0.01 THEN 'cancelled' ELSE 'paid' END, at, at,
              fen, 0, fen
            FROM (SELECT k, random() < 0.6 AS pos, 1 + floor(random() * :n)::bigint AS m,
                    :t0 + random() * interval '31 days' AS at,
                    5000 + floor(random() * 45000)::bigint AS fen
                  FROM generate_series(1, :m) k) x""",
        f"""INSERT INTO order_lines (group_id, order_id, line_no, sku, qty, unit_price_fen,
              amount_fen)
            SELECT o.group_id, o.order_id, l, 'K' || (1 + floor(random() * {PRODUCTS})::int), 1,
              CASE WHEN l = 1 THEN o.paid_fen - o.paid_fen / 3 ELSE o.paid_fen / 3 END,
              CASE WHEN l = 1 THEN o.paid_fen - o.paid_fen / 3 ELSE o.paid_fen / 3 END
            FROM orders o CROSS JOIN generate_series(1, 2) l
            WHERE o.group_id = :g AND (l = 1 OR substr(o.order_id, 2)::bigint % 2 = 0)""",
        f"""INSERT INTO guide_shares (share_id, group_id, share_code, guide_id, kind, target,
              created_at)
            SELECT i, :g, 'SH' || i,
              'G' || lpad((1 + floor(random() * {GUIDES})::int)::text, 4, '0'),
              'product', 'K' || (1 + i % {PRODUCTS}), :t0 - interval '30 days'
            FROM generate_series(1, :shares) i""",
        # half the touches: a buyer, 0..10 days before one of its orders
        """INSERT INTO share_touches (touch_id, group_id, idempotency_key, share_id,
              member_id, touched_at)
            SELECT row_number() OVER (), o.group_id, 't' || row_number() OVER (),
              1 + floor(random() * :shares)::bigint, o.member_id,
              o.ordered_at - random() * interval '10 days'
            FROM orders o WHERE o.group_id = :g AND random() < :touched""",
        """INSERT INTO share_touches (touch_id, group_id, idempotency_key, share_id,
              member_id, touched_at)
            SELECT b + i, :g, 't' || (b + i), 1 + floor(random() * :shares)::bigint,
              1 + floor(random() * :n)::bigint,
              :t0 - interval '7 days' + random() * interval '38 days'
            FROM (SELECT COALESCE(MAX(touch_id), 0) AS b FROM share_touches) x,
              generate_series(1, :rest) i""",
        """INSERT INTO refunds (group_id, refund_id, order_id, refunded_at, amount_fen)
            SELECT o.group_id, 'R' || o.order_id, o.order_id,
              o.ordered_at + random() * interval '10 days',
              greatest(floor(o.paid_fen * (0.3 + 0.7 * random()))::bigint, 1)
            FROM orders o WHERE o.group_id = :g AND o.status = 'paid' AND random() < 0.05""",
        """INSERT INTO refunds (group_id, refund_id, order_id, refunded_at, amount_fen)
            SELECT r.group_id, 'S' || r.refund_id, r.order_id,
              r.refunded_at + random() * interval '5 days',
              greatest(floor((o.paid_fen - r.amount_fen) * random())::bigint, 1)
            FROM refunds r JOIN orders o ON o.group_id = r.group_id AND o.order_id = r.order_id
            WHERE r.group_id = :g AND o.paid_fen > r.amount_fen AND random() < 0.2""",
        """INSERT INTO guide_classes (group_id, guide_id, period_start, period_end,
              guide_class, spam_risk, metrics, rule_id, rules_version, computed_at)
            SELECT group_id, guide_id, :t0 - interval '28 days', :t0,
              CASE substr(guide_id, 2)::int % 3 WHEN 0 THEN 'A' WHEN 1 THEN 'B' ELSE 'C' END,
              0, '{}', 1, 1, :t0
            FROM guides WHERE group_id = :g""",
    ]
    half = touches / 2 / (orders * 0.99)
    p["touched"] = min(half, 1.0)
    p["rest"] = max(touches - round(orders * 0.99 * p["touched"]), 0)
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
        for i, sql in enumerate(steps):
            started = time.perf_counter()
            conn.execute(text(sql), p)
            print(f"  load step {i}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    with engine.connect() as conn:
        return {
            t: int(conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one())
            for t in (
                "members",
                "guide_bindings",
                "orders",
                "order_lines",
                "guide_shares",
                "share_touches",
                "refunds",
            )
        }


def settle(engine: Engine) -> None:
    auto = create_engine(engine.url, isolation_level="AUTOCOMMIT")
    with auto.connect() as conn:
        conn.exec_driver_sql("VACUUM (ANALYZE)")
        conn.exec_driver_sql("CHECKPOINT")
    auto.dispose()


def checkpoint(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.exec_driver_sql("CHECKPOINT")


class Clock:
    """Wall time, and the CPU time of the engine's one PostgreSQL backend (from /proc: the
    server runs on this machine) plus this process's: CPU seconds hardly move when other
    work shares the cores; wall seconds do."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        with engine.connect() as conn:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        stat = Path(f"/proc/{pid}/stat")
        self.stat = stat if stat.exists() else None

    def cpu(self) -> float:
        backend = 0.0
        if self.stat is not None:
            fields = self.stat.read_text().rsplit(")", 1)[1].split()
            backend = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return backend + time.process_time()

    def timed(self, fn: Any) -> tuple[float, float, Any]:
        checkpoint(self.engine)
        cpu, started = self.cpu(), time.perf_counter()
        out = fn()
        return time.perf_counter() - started, self.cpu() - cpu, out


def floor_copy(engine: Engine) -> int:
    """The baseline: the month's orders read and written once, into an unindexed table."""
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS bench_floor")
        conn.exec_driver_sql(
            "CREATE TABLE bench_floor (order_id VARCHAR(128), member_id BIGINT, paid_fen BIGINT)"
        )
    with engine.begin() as conn:
        return int(
            conn.execute(
                text("""INSERT INTO bench_floor SELECT order_id, member_id, paid_fen FROM orders
                        WHERE group_id = :g AND ordered_at >= :s AND ordered_at < :u"""),
                {"g": GROUP, "s": SINCE, "u": UNTIL},
            ).rowcount
        )


def floor_aggregate(engine: Engine) -> int:
    """The other baseline: one GROUP BY over the month's orders (paid per till guide)."""
    with engine.connect() as conn:
        return len(
            conn.execute(
                text("""SELECT guide_id, COUNT(*), SUM(paid_fen) FROM orders
                        WHERE group_id = :g AND ordered_at >= :s AND ordered_at < :u
                        GROUP BY guide_id"""),
                {"g": GROUP, "s": SINCE, "u": UNTIL},
            ).all()
        )


def statements(engine: Engine) -> tuple[commission_statements.Statement, dict[str, Any]]:
    """The month's statements of every guide (one GROUP BY) and of every store."""
    with engine.connect() as conn:
        every_guide = commission_statements.statement(conn, GROUP, MONTH, with_lines=False)
        by_store = commission_statements.store_totals(conn, GROUP, MONTH)
    return every_guide, by_store


def verify(
    engine: Engine, every_guide: commission_statements.Statement, by_store: dict[str, Any]
) -> list[str]:
    """The statements against the ledger, by SQL of their own; the state machine's rules."""
    wrong: list[str] = []
    start, end = commission_statements.month_range(MONTH)
    params = {"g": GROUP, "s": start, "e": end}
    with engine.connect() as conn:
        # earned in the month per guide: minus the cm_accrued entries
        earned = {
            r.guide_id: int(r.fen)
            for r in conn.execute(
                text("""SELECT ga.guide_id, -SUM(e.amount) AS fen FROM ledger_entries e
                        JOIN guide_accounts ga ON ga.group_id = e.group_id
                          AND ga.account_no = -e.member_id
                        WHERE e.group_id = :g AND e.member_id < 0 AND e.asset = 'cm_accrued'
                          AND e.business_at >= :s AND e.business_at < :e
                        GROUP BY ga.guide_id"""),
                params,
            )
        }
        stated = {g: t.commission_fen for g, t in every_guide.by_guide.items() if t.commission_fen}
        if {g: f for g, f in earned.items() if f} != stated:
            wrong.append("a guide's statement differs from the sum of its entries")
        if every_guide.totals.commission_fen != sum(earned.values()):
            wrong.append("the statements' total differs from the sum of the entries")
        store_earned = {
            r.store_id: int(r.fen)
            for r in conn.execute(
                text("""SELECT p.store_id, -SUM(e.amount) AS fen FROM ledger_entries e
                        JOIN ledger_postings p ON p.posting_id = e.posting_id
                        WHERE e.group_id = :g AND e.member_id < 0 AND e.asset = 'cm_accrued'
                          AND e.business_at >= :s AND e.business_at < :e
                        GROUP BY p.store_id"""),
                params,
            )
        }
        if {s: f for s, f in store_earned.items() if f} != {
            s: t.commission_fen for s, t in by_store.items() if t.commission_fen
        }:
            wrong.append("a store's statement differs from the sum of its entries")
        balances = {
            (r.guide_id, r.asset): int(r.balance)
            for r in conn.execute(
                text("""SELECT ga.guide_id, a.asset, a.balance FROM ledger_accounts a
                        JOIN guide_accounts ga ON ga.group_id = a.group_id
                          AND ga.account_no = -a.member_id
                        WHERE a.group_id = :g AND a.owner = 'guide'"""),
                params,
            )
        }
        closing = {
            (g, asset): fen
            for g, t in every_guide.by_guide.items()
            for asset, fen in t.closing.items()
            if fen
        }
        if {k: v for k, v in balances.items() if v} != closing:
            wrong.append("closing balances differ from the accounts' balances")
        over = conn.execute(
            text("""SELECT COUNT(*) FROM commission_accruals a
                    JOIN (SELECT p.reference, SUM(e.amount) AS back FROM ledger_postings p
                          JOIN ledger_entries e ON e.posting_id = p.posting_id
                          WHERE p.group_id = :g AND p.kind = 'cm_clawback'
                            AND e.asset = 'cm_accrued' GROUP BY p.reference) c
                      ON c.reference = a.order_id
                    WHERE a.group_id = :g AND c.back > a.commission_fen"""),
            params,
        ).scalar_one()
        if over:
            wrong.append(f"{over} orders clawed back more than accrued")
        negative = conn.execute(
            text("""SELECT COUNT(*) FROM ledger_accounts WHERE group_id = :g AND owner = 'guide'
                    AND asset IN ('cm_frozen', 'cm_paid') AND balance < 0"""),
            params,
        ).scalar_one()
        if negative:
            wrong.append(f"{negative} frozen or paid balances below zero")
        unbalanced = conn.execute(
            text("""SELECT COUNT(*) FROM (SELECT posting_id FROM ledger_entries
                    WHERE group_id = :g GROUP BY posting_id HAVING SUM(amount) <> 0) x"""),
            params,
        ).scalar_one()
        if unbalanced:
            wrong.append(f"{unbalanced} postings do not sum to zero")
        chained = conn.execute(
            text("""SELECT COUNT(*) FROM (SELECT balance_after, LEAD(balance_before) OVER
                      (PARTITION BY account_id ORDER BY entry_id) AS next_before
                    FROM ledger_entries WHERE group_id = :g AND member_id < 0) x
                    WHERE next_before IS NOT NULL AND next_before <> balance_after"""),
            params,
        ).scalar_one()
        if chained:
            wrong.append(f"{chained} entries whose balance_before is not the one before's after")
        # a release is one posting per guide and run: it must move its rows' sum exactly
        unequal = commission_statements.unbalanced_releases(conn, GROUP)
        if unequal:
            wrong.append(f"{len(unequal)} release postings differ from their orders' rows")
        # and so is an accrual (per guide, store and month)
        unequal = commission_statements.unbalanced_accruals(conn, GROUP)
        if unequal:
            wrong.append(f"{len(unequal)} accrual postings differ from their orders' rows")
        wrong += sample_decisions(conn)
    return wrong


def sample_decisions(conn: Any) -> list[str]:
    """A thousand accruals against the rules' own decision in Python."""
    _, rules = commission_rules.stored(conn, GROUP)
    classes = classes_before(conn, GROUP, SINCE)
    rows = conn.execute(
        text("""SELECT a.order_id, a.guide_id, a.commission_fen, a.rule, o.brand_id,
                  o.channel, o.paid_fen,
                  (SELECT p.category FROM order_lines l JOIN products p
                     ON p.group_id = l.group_id AND p.sku = l.sku
                   WHERE l.group_id = o.group_id AND l.order_id = o.order_id
                   ORDER BY l.amount_fen DESC, p.category LIMIT 1) AS category
                FROM commission_accruals a JOIN orders o ON o.group_id = a.group_id
                  AND o.order_id = a.order_id
                WHERE a.group_id = :g ORDER BY md5(a.order_id) LIMIT 1000"""),
        {"g": GROUP},
    ).all()
    bad = 0
    for r in rows:
        terms = OrderTerms(
            r.brand_id, r.channel, r.category, None, classes.get(r.guide_id), int(r.paid_fen)
        )
        decided = rules.decide(terms)
        if (decided.commission_fen, decided.rule) != (int(r.commission_fen), r.rule):
            bad += 1
    return [f"{bad} of {len(rows)} sampled accruals differ from the rules"] if bad else []


@contextmanager
def database(args: argparse.Namespace) -> Iterator[tuple[str, bool]]:
    if args.reuse:
        yield args.reuse, True
        return
    admin = create_engine(make_engine(args.pg_url).url, isolation_level="AUTOCOMMIT")
    name = f"siyu_bench_guides_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False), False
    finally:
        if args.keep:
            print(f"kept {admin.url.set(database=name)}", file=sys.stderr)
        else:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()


def forget(engine: Engine) -> None:
    """--reuse: the month's attribution and commission of an earlier run, undone."""
    with engine.begin() as conn:
        for sql in (
            "DELETE FROM ledger_entries WHERE group_id = :g AND member_id < 0",
            "DELETE FROM ledger_postings WHERE group_id = :g AND member_id < 0",
            "UPDATE ledger_accounts SET balance = 0 WHERE group_id = :g AND owner = 'guide'",
            "DELETE FROM commission_releases WHERE group_id = :g",
            "DELETE FROM commission_accruals WHERE group_id = :g",
            "DELETE FROM order_attributions WHERE group_id = :g",
        ):
            conn.execute(text(sql), {"g": GROUP})
    settle(engine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=10_000_000)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("SIYU_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="a PostgreSQL server; the run loads a throw-away database on it",
    )
    parser.add_argument("--keep", action="store_true", help="keep the loaded database")
    parser.add_argument("--reuse", help="a store loaded by an earlier --keep run (its URL)")
    parser.add_argument("--load-only", action="store_true", help="load (and --keep), time nothing")
    args = parser.parse_args()
    args.keep = args.keep or args.load_only
    figures: dict[str, Any] = {"members": args.members}
    with database(args) as (url, loaded):
        engine = make_engine(url, pool_size=1, max_overflow=0)
        upgrade(engine)
        if loaded:
            forget(engine)
            with engine.connect() as conn:  # --reuse: the size loaded, whatever --members says
                args.members = int(conn.execute(text("SELECT COUNT(*) FROM members")).scalar_one())
                figures["members"] = args.members
        else:
            ensure_group(engine, GROUP)
            started = time.perf_counter()
            figures["rows"] = load(engine, args.members)
            settle(engine)
            figures["load_s"] = round(time.perf_counter() - started, 1)
            if args.load_only:
                print(json.dumps(figures, indent=1))
                return
        commission_rules.save(
            engine, GROUP, commission_rules.CommissionRules.model_validate(RULES), None
        )
        clock = Clock(engine)
        wall: dict[str, float] = {}
        cpu: dict[str, float] = {}
        out: dict[str, Any] = {}
        plan = {
            "floor": lambda: floor_copy(engine),
            "floor_aggregate": lambda: floor_aggregate(engine),
            "attribute": lambda: attribution.attribute(engine, GROUP, SINCE, UNTIL),
            "accrue": lambda: commission_accrual.accrue(engine, GROUP, SINCE, UNTIL),
            "release": lambda: commission_accrual.release(engine, GROUP, UNTIL),
            "statements": lambda: statements(engine),
            "floor_again": lambda: floor_copy(engine),
        }
        for step, fn in plan.items():
            wall[step], cpu[step], out[step] = clock.timed(fn)
            print(f"  {step}: {wall[step]:.1f} s", file=sys.stderr)
        wrong = verify(engine, *out["statements"])
        engine.dispose()
    base = (wall["floor"] + wall["floor_again"]) / 2
    work = ("attribute", "accrue", "release", "statements")
    total = sum(wall[s] for s in work)
    accrued, released = out["accrue"], out["release"]
    every_guide, by_store = out["statements"]
    figures.update(
        orders=out["floor"],
        wall_s={k: round(v, 2) for k, v in wall.items()},
        cpu_s={k: round(v, 2) for k, v in cpu.items()},
        total_s=round(total, 1),
        budget_s=BUDGET_S,
        ratio_to_floor={s: round(wall[s] / base, 1) for s in work},
        attributed=out["attribute"].by_basis,
        accrual=vars(accrued),
        release=vars(released),
        guides_stated=len(every_guide.by_guide),
        stores_stated=len(by_store),
        commission_fen=every_guide.totals.commission_fen,
    )
    print(json.dumps(figures, ensure_ascii=False, indent=1, default=str))
    if wrong:
        sys.exit("FAILED: " + "; ".join(wrong))
    print(
        f"| {args.members:,} | {out['floor']:,} | {wall['floor']:.1f} / {wall['floor_again']:.1f}"
        f" | {wall['floor_aggregate']:.1f} | {wall['attribute']:.1f} | {wall['accrue']:.1f}"
        f" | {wall['release']:.1f} | {wall['statements']:.1f} | {total:.1f} of {BUDGET_S:.0f}"
        f" | {total / base:.1f} |"
    )


if __name__ == "__main__":
    main()
