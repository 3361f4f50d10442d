"""Segments at scale: preview a typical rule, evaluate fifty, write members back by COPY.

    python bench/bench_segments.py --members 1000000 [--copies 10] [--dir DIR] [--reuse]

The brand is `siyu generate` at bench_analytics' churn (about 8 orders a person), its
facts written straight into a DuckDB warehouse with true persons as members (the store
import is measured elsewhere); `--copies 10` lands it ten times over with disjoint ids
(10M members, ~82M orders). Timed, in the same run:

1. preview (size and 20 member ids) of five typical rules, compiled by `segments.compile`
   to one Ibis expression each, against the same rules written by hand in DuckDB SQL (the
   counts must be equal): the ratio is what the rule language costs; and the estimated
   preview a brand past a million members gets (`segments.sampling`: one member in a
   hundred), with its error against the exact size;
2. fifty segments (the five templates at ten parameter settings each) compiled together
   (`segments.compile.compile_rules`, as `evaluate_segments` runs them): their per-member
   facts computed once, then each segment's member set (Arrow); against ten times the five
   templates' exact previews, each rule on its own;
3. the automatic tags computed in the warehouse (`segments.automatic`), from the
   same facts materialised once as `siyu tags refresh` does: with the fifty segments, the
   nightly work the issue budgets at 120 s for 10M members;
4. writing the largest member set back to PostgreSQL through `segments.membership`
   (staged by COPY, set-based enters and leaves), first in full and then with 10% churn,
   against inserting the same rows one statement per row (`--row-by-row` rows of it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_analytics import MEMBER_OFFSET
from pgtemp import temporary_database
from siyu.analytics.engines import materialised, to_arrow
from siyu.analytics.moves import moves_sql, rewrite_sql
from siyu.analytics.schema import TABLES, Fact
from siyu.analytics.warehouse import Warehouse
from siyu.catalog.models import ONLINE_CHANNELS
from siyu.demo.config import GeneratorConfig
from siyu.demo.generate import generate
from siyu.segments.automatic.catalogue import CATALOGUE
from siyu.segments.automatic.warehouse_tags import facts_of, materialise
from siyu.segments.compile import SegmentTables, compile_rule, compile_rules
from siyu.segments.membership import SEGMENT_MEMBERS, replace_members, unique_members
from siyu.segments.sampling import Estimate, estimate, sampled
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade

WAREHOUSE_SQL = """
create table truth as select type, value, brand_id, person_id::bigint as member_id
    from read_parquet('{d}/truth/identity_truth.parquet');
create table orders as
    select o.order_id, t.member_id, o.ordered_at, o.paid_fen::bigint as amount_fen, o.status,
           o.brand_id, o.channel, o.store_id, coalesce(o.discount_fen, 0)::bigint as discount_fen
    from read_parquet('{d}/orders.parquet') o
    join truth t on t.type = o.buyer_type and t.value = o.buyer_value
        and (t.type <> 'card' or t.brand_id = o.brand_id);
create table order_lines as
    select l.order_id, o.member_id, o.ordered_at, o.status, l.sku, l.qty, l.amount_fen
    from read_parquet('{d}/order_lines.parquet') l join orders o using (order_id);
create table products as select sku, category from read_csv('{d}/products.csv');
create table stores as select store_id, city from read_csv('{d}/stores.csv');
create table events as
    select t.member_id, e.type, e.occurred_at, e.sku
    from read_parquet('{d}/events.parquet') e
    join truth t on t.type = e.identity_type and t.value = e.identity_value;
create table members as select distinct member_id, 'active' as status from truth;
drop table truth;
"""


def build(data: Path, warehouse: Path, copies: int) -> dict[str, int]:
    db = duckdb.connect(str(warehouse))
    db.execute(WAREHOUSE_SQL.format(d=data))
    if copies > 1:  # the brand again, with disjoint member and order ids
        member = f"t.member_id + r.i * {MEMBER_OFFSET} as member_id"
        order = "t.order_id || '-' || r.i as order_id"
        copied = {
            "orders": f"{order}, {member}, t.* exclude (order_id, member_id)",
            "order_lines": f"{order}, {member}, t.* exclude (order_id, member_id)",
            "events": f"{member}, t.* exclude (member_id)",
            "members": f"{member}, t.status",
        }
        for table, select in copied.items():
            db.execute(f"""create table {table}_x as select {select}
                           from {table} t, range({copies}) r(i);
                           drop table {table}; alter table {table}_x rename to {table}""")
    # a nested segment's members, as the store would give them: every tenth member
    db.execute(
        "create table memberships as select 'vip' as segment, member_id from members "
        "where member_id % 10 = 0"
    )
    counts = {}
    for table in ("members", "orders", "order_lines", "events", "memberships"):
        found = db.execute(f"select count(*) from {table}").fetchone()
        counts[table] = int(found[0]) if found else 0
    db.close()
    return counts


def rules(top_category: str) -> dict[str, tuple[dict[str, Any], str]]:
    """Five typical rules: the JSON, and the same selection written by hand in DuckDB SQL
    (T is $t, epoch seconds; every window is (T - n, T], cancelled orders never count)."""
    paid = "status <> 'cancelled' and epoch(ordered_at) <= $t"
    return {
        "lapsing_regulars": (
            {
                "all": [
                    {"orders": {"within_days": 365, "count": {"gte": 3}}},
                    {"orders": {"within_days": 60, "count": {"lte": 0}}},
                ]
            },
            f"""select member_id from orders where {paid} and epoch(ordered_at) > $t - 365*86400
                group by member_id having count(*) >= 3
                except select member_id from orders where {paid}
                and epoch(ordered_at) > $t - 60*86400""",
        ),
        "bought_category": (
            {"bought": {"category": [top_category], "within_days": 180}},
            f"""select distinct member_id from order_lines join products p using (sku)
                where {paid} and epoch(ordered_at) > $t - 180*86400
                and p.category = '{top_category}'""",
        ),
        "big_spenders_online": (
            {
                "orders": {
                    "within_days": 365,
                    "channel": ["tmall", "jd", "miniprogram"],
                    "spend_fen": {"gte": 200000},
                }
            },
            f"""select member_id from orders where {paid} and epoch(ordered_at) > $t - 365*86400
                and channel in ('tmall', 'jd', 'miniprogram')
                group by member_id having sum(amount_fen) >= 200000""",
        ),
        "viewed_not_bought": (
            {
                "all": [
                    {"event": {"type": "view", "within_days": 30}},
                    {"orders": {"within_days": 30, "count": {"lte": 0}}},
                ]
            },
            f"""select member_id from events where type = 'view' and epoch(occurred_at) <= $t
                and epoch(occurred_at) > $t - 30*86400
                except select member_id from orders where {paid}
                and epoch(ordered_at) > $t - 30*86400""",
        ),
        "vip_not_recent": (
            {"all": [{"segment": "vip"}, {"not": {"last_order": {"within_days": 90}}}]},
            f"""select member_id from memberships where segment = 'vip'
                except select member_id from orders where {paid}
                and epoch(ordered_at) > $t - 90*86400""",
        ),
    }


def variations(base: dict[str, tuple[dict[str, Any], str]]) -> list[dict[str, Any]]:
    """Ten settings of each template: fifty segments."""
    out = []
    for k in range(10):
        scale = 0.5 + k / 10
        for rule, _ in base.values():
            text = json.dumps(rule)
            for days in (365, 180, 90, 60, 30):
                text = text.replace(f'"within_days": {days}', f'"within_days": {int(days * scale)}')
            out.append({"version": 1, "rule": json.loads(text)})
    return out


def ibis_preview(
    con: Any, tables: SegmentTables, doc: dict[str, Any], as_of: datetime
) -> tuple[int, list[int]]:
    """Size and first 20 ids, as `segments.evaluate.preview_rule` computes them."""
    members = compile_rule(doc, tables, as_of)
    size = int(con.execute(members.count()))
    first = con.execute(members.order_by("member_id").limit(20))["member_id"].tolist()
    return size, [int(m) for m in first]


def estimated_preview(
    con: Any, tables: SegmentTables, doc: dict[str, Any], as_of: datetime
) -> Estimate:
    """Size (with its interval) and first 20 ids from one member in a hundred, as
    `preview_rule` computes them past a million members."""
    population = int(con.execute(tables.members.count()))
    cut = sampled(tables)
    matched = to_arrow(con, compile_rule(doc, cut, as_of)).column("member_id")
    found = len(pc.unique(matched))
    sorted(matched.to_pylist())[:20]
    return estimate(found, int(con.execute(cut.members.count())), population)


def hand_preview(raw: duckdb.DuckDBPyConnection, sql: str, t: int) -> tuple[int, list[int]]:
    size = raw.execute(f"select count(*) from ({sql})", {"t": t}).fetchone()
    first = raw.execute(f"select member_id from ({sql}) order by 1 limit 20", {"t": t})
    return int(size[0]) if size else 0, [int(r[0]) for r in first.fetchall()]


def best(runs: int, fn: Any) -> tuple[float, Any]:
    fastest, out = float("inf"), None
    for _ in range(runs):
        started = time.perf_counter()
        out = fn()
        fastest = min(fastest, time.perf_counter() - started)
    return fastest, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--copies", type=int, default=1)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--reuse", action="store_true", help="keep DIR's warehouse")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--row-by-row", type=int, default=50_000)
    parser.add_argument("--skip-writeback", action="store_true")
    parser.add_argument(
        "--only",
        choices=("preview", "tags"),
        help="run one phase (with --reuse: on the warehouse of an earlier run)",
    )
    parser.add_argument(
        "--through-oneid",
        choices=("snapshot", "moves", "landed"),
        help="read orders, lines and events as the Warehouse does: each row's member looked "
        "up in the whole identities snapshot (one identity per member here, MOVED-SHARE of "
        "them moved to another member since landing), in the identity moves alone (a "
        "Parquet warehouse), or in none (a DuckDB one: landing rewrote the moved facts)",
    )
    parser.add_argument("--moved-share", type=float, default=0.01)
    parser.add_argument(
        "--rewrite-cost",
        action="store_true",
        help="only time what a DuckDB landing pays to give MOVED-SHARE of the members' "
        "order lines their new member in place (on a copy of the lines), then stop",
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("SIYU_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="a PostgreSQL server; the write-back runs in a throw-away database on it",
    )
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-seg-"))
    work.mkdir(parents=True, exist_ok=True)
    warehouse = work / "segments.duckdb"
    figures: dict[str, Any] = {"members_generated": args.members, "copies": args.copies}
    if not (args.reuse and warehouse.is_file()):
        config = GeneratorConfig(
            members=args.members,
            seed=7,
            days=1095,
            mean_gap_days=22.0,
            churn_before=(0.25, 0.12),
            churn_after=0.04,
        )
        started = time.perf_counter()
        generate(work / "data", config)
        figures["generate_s"] = round(time.perf_counter() - started, 1)
        warehouse.unlink(missing_ok=True)
        started = time.perf_counter()
        figures["rows"] = build(work / "data", warehouse, args.copies)
        figures["load_s"] = round(time.perf_counter() - started, 1)
    if args.rewrite_cost:
        print(json.dumps(rewrite_cost(warehouse, work / "rewrite.duckdb", args.moved_share)))
        return
    con = ibis.duckdb.connect(str(warehouse), read_only=True)
    # a spill past this fails the run rather than filling the disk (PostgreSQL shares it)
    con.raw_sql("SET max_temp_directory_size = '20GB'")
    raw = duckdb.connect(str(warehouse), read_only=True)
    read = {name: con.table(name) for name in ("orders", "order_lines", "events")}
    if args.through_oneid:
        warehouse_of, figures["oneid"] = oneid(con, args.moved_share, args.through_oneid)
        read = {name: through_oneid(warehouse_of, table) for name, table in read.items()}
    tables = SegmentTables(
        members=con.table("members"),
        orders=read["orders"],
        order_lines=read["order_lines"],
        products=con.table("products"),
        events=read["events"],
        memberships=con.table("memberships"),
    )
    t_end = pd.Timestamp(raw.execute("select max(ordered_at) from orders").fetchone()[0])  # type: ignore[index]
    as_of: datetime = t_end.to_pydatetime()
    t = int(t_end.timestamp())
    top = raw.execute("""select p.category from order_lines l join products p using (sku)
                     group by 1 order by count(*) desc limit 1""").fetchone()[0]  # type: ignore[index]
    base = rules(top)
    preview: dict[str, Any] = {}
    for name, (rule, sql) in base.items() if args.only in (None, "preview") else ():
        doc = {"version": 1, "rule": rule}
        ibis_s, (size, first) = best(args.runs, lambda d=doc: ibis_preview(con, tables, d, as_of))
        hand_s, hand = best(args.runs, lambda q=sql: hand_preview(raw, q, t))
        # through OneID some members' facts moved, which the hand-written SQL does not see
        assert args.through_oneid or (size, first) == hand, (name, size, hand[0])
        est_s, est = best(args.runs, lambda d=doc: estimated_preview(con, tables, d, as_of))
        preview[name] = {
            "size": size,
            "ibis_s": round(ibis_s, 3),
            "hand_sql_s": round(hand_s, 3),
            "ratio": round(ibis_s / hand_s, 2),
            "estimated_s": round(est_s, 3),
            "estimate": [est.size, est.low, est.high],
            "estimate_error": round(est.size / size - 1, 4) if size else None,
        }
        print(name, preview[name], file=sys.stderr, flush=True)
    figures["preview"] = preview
    if args.only == "tags":
        figures["automatic_tags"] = automatic_tags(con, read, as_of)
    if args.only is not None:
        print(json.dumps(figures, ensure_ascii=False))
        return
    # fifty segments, compiled together as `evaluate_segments` does: the facts once, then
    # a filter per segment
    started = time.perf_counter()
    sizes, largest = [], pa.array([], pa.int64())
    compiled = compile_rules(variations(base), tables, as_of)
    with materialised(compiled.facts) as facts:
        figures["fifty_facts_s"] = round(time.perf_counter() - started, 1)
        for i in range(len(compiled.predicates)):
            ids = to_arrow(con, compiled.members(i, facts)).column("member_id")
            sizes.append(len(ids))
            if len(ids) > len(largest):
                largest = ids.combine_chunks()
    figures["fifty_segments_s"] = round(time.perf_counter() - started, 1)
    # the baseline: each rule on its own, as before; the five templates' exact previews
    # (one setting each) times ten settings
    if preview:
        figures["fifty_one_by_one_estimate_s"] = round(
            10 * sum(p["ibis_s"] for p in preview.values()), 1
        )
    figures["fifty_segments_members"] = int(sum(sizes))
    print("fifty", figures["fifty_segments_s"], file=sys.stderr, flush=True)
    figures["automatic_tags"] = automatic_tags(con, read, as_of)
    figures["nightly_s"] = round(
        figures["fifty_segments_s"] + figures["automatic_tags"]["total_s"], 1
    )
    print("tags", figures["automatic_tags"]["total_s"], file=sys.stderr, flush=True)
    if not args.skip_writeback:
        figures["writeback"] = writeback(largest, args.row_by_row, args.pg_url)
    print(json.dumps(figures, ensure_ascii=False))


def oneid(con: Any, moved_share: float, lookup: str) -> tuple[Warehouse, dict[str, Any]]:
    """The Warehouse reading the bench's facts through OneID. The bench's warehouse has no
    identities: each member is its own one identity, and `moved_share` of them (by hash)
    have since moved to the next member, as merges do. With `lookup` "moves" the moves are
    computed as a landing that finds none valid does (`moves.moves_sql` over every fact),
    and timed; with "landed" the facts already name their members, as a DuckDB landing
    leaves them, and the Warehouse joins nothing."""
    con.raw_sql(
        "CREATE OR REPLACE TEMP TABLE bench_identities AS SELECT member_id AS identity_id, "
        f"CASE WHEN {moved(moved_share)} THEN member_id + 1 ELSE member_id END AS member_id "
        "FROM members"
    )
    out: dict[str, Any] = {"lookup": lookup, "moved_share": moved_share}
    moves = None
    if lookup == "moves":
        facts = {
            "orders": "(SELECT member_id AS buyer_identity_id, member_id FROM orders)",
            "order_lines": "(SELECT member_id AS buyer_identity_id, member_id FROM order_lines)",
            "events": "(SELECT member_id AS identity_id, member_id FROM events)",
        }
        started = time.perf_counter()
        con.raw_sql(
            f"CREATE OR REPLACE TEMP TABLE bench_moves AS {moves_sql(facts, 'bench_identities')}"
        )
        out["moves_full_rebuild_s"] = round(time.perf_counter() - started, 1)
        moves = con.table("bench_moves")
        out["moves"] = int(con.execute(moves.count()))
    if lookup == "landed":
        moves = con.table("bench_identities").limit(0)
    snapshot = {"identities": con.table("bench_identities")}
    return Warehouse(con, "bench", "", snapshot, moves, out.get("moves", 0)), out


def moved(share: float) -> str:
    """SQL true for `share` of the members (by hash): those OneID moved since landing."""
    return f"hash(member_id) % 10000 < {round(share * 10000)}"


def rewrite_cost(warehouse: Path, scratch: Path, moved_share: float) -> dict[str, Any]:
    """The in-place update `sinks.DuckDBSink.update_moves` runs (`moves.rewrite_sql`), timed
    on a copy of the order lines (the largest fact table), `moved_share` of members moved."""
    scratch.unlink(missing_ok=True)
    con = duckdb.connect(str(scratch))
    try:
        con.execute(f"ATTACH '{warehouse}' AS bench (READ_ONLY)")
        con.execute(
            "CREATE TABLE order_lines AS SELECT 'bench' AS group_id, member_id AS "
            "buyer_identity_id, * FROM bench.order_lines"
        )
        con.execute(
            "CREATE TEMP TABLE next_moves AS SELECT member_id AS identity_id, member_id + 1 "
            f"AS member_id, true AS known FROM bench.members WHERE {moved(moved_share)}"
        )
        con.execute("CHECKPOINT")
        started = time.perf_counter()
        con.begin()
        lines = TABLES["order_lines"]
        assert isinstance(lines, Fact)
        updated = con.execute(rewrite_sql(lines), ["bench"]).fetchone()
        con.commit()
        con.execute("CHECKPOINT")
        seconds = time.perf_counter() - started
        lines = con.execute("SELECT COUNT(*) FROM order_lines").fetchone()
    finally:
        con.close()
        scratch.unlink(missing_ok=True)
    return {
        "moved_share": moved_share,
        "lines": int(lines[0]) if lines else 0,
        "rewritten": int(updated[0]) if updated else 0,
        "rewrite_s": round(seconds, 2),
    }


def through_oneid(warehouse: Warehouse, facts: Any) -> Any:
    """`facts` with each row's member looked up as `Warehouse.orders()`, `.lines()` and
    `.events()` do it (the bench's facts name the member as their identity)."""
    keyed = facts.mutate(bench_identity=facts.member_id)
    current = warehouse._current(keyed, "bench_identity")  # the Warehouse's own join
    return current.drop("bench_identity")


def automatic_tags(con: Any, facts: dict[str, Any], as_of: datetime) -> dict[str, Any]:
    """The warehouse's automatic tags over the bench's facts, their per-member aggregates
    materialised once (as `refresh.warehouse_facts` does); seconds per tag and in total,
    holders per tag."""
    started = time.perf_counter()
    f = facts_of(
        con.table("members"),
        facts["orders"].rename(paid_fen="amount_fen"),
        facts["order_lines"],
        facts["events"],
        con.table("products"),
        con.table("stores"),
        as_of,
        sorted(ONLINE_CHANNELS),
    )
    out: dict[str, Any] = {"tags": {}}
    with materialise(f) as computed:
        out["facts_s"] = round(time.perf_counter() - started, 1)
        for tag in CATALOGUE:
            if tag.side != "warehouse":
                continue
            begun = time.perf_counter()
            holders = to_arrow(con, tag.compute(computed)).num_rows
            out["tags"][tag.slug] = {"holders": holders, "s": round(time.perf_counter() - begun, 2)}
    out["total_s"] = round(time.perf_counter() - started, 1)
    return out


def writeback(largest: pa.Array, row_by_row: int, pg_url: str) -> dict[str, Any]:
    """The largest member set into PostgreSQL: COPY + set-based, against row by row."""
    ids, _ = unique_members(largest)
    rng = np.random.default_rng(1)
    churned = np.concatenate(
        [
            rng.choice(ids, size=int(len(ids) * 0.9), replace=False),
            ids.max() + 1 + np.arange(int(len(ids) * 0.1), dtype=np.int64),
        ]
    )
    churned, _ = unique_members(churned)
    out: dict[str, Any] = {"rows": len(ids)}
    with temporary_database(pg_url) as url:
        engine = make_engine(url)
        upgrade(engine)
        at = datetime(2026, 1, 1)
        for label, members in (("first_s", ids), ("churn10_s", churned)):
            started = time.perf_counter()
            with engine.begin() as conn:
                applied = replace_members(
                    conn, SEGMENT_MEMBERS, "bench", 1, members, None, "bench", at
                )
            out[label] = round(time.perf_counter() - started, 3)
            out[label.replace("_s", "_deltas")] = applied.entered + applied.left
        sample = ids[:row_by_row]
        started = time.perf_counter()
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TEMP TABLE one_by_one (member_id BIGINT PRIMARY KEY)")
            for m in sample.tolist():
                conn.exec_driver_sql("INSERT INTO one_by_one VALUES (%s)", (m,))
        per_row = (time.perf_counter() - started) / len(sample)
        out["row_by_row_rows_per_s"] = round(1 / per_row)
        out["copy_rows_per_s"] = round(len(ids) / max(out["first_s"], 1e-3))
        out["ratio"] = round(out["copy_rows_per_s"] / out["row_by_row_rows_per_s"], 1)
        engine.dispose()
    return out


if __name__ == "__main__":
    main()
