"""Analytics full recompute: retention curve, RFM, stages and KPIs on Ibis-on-DuckDB.

A brand is generated with `siyu generate` (a lower churn curve than the default, so a
member orders about 8 times in three years) and its facts are written straight into a
DuckDB warehouse file: the analytics orders (true persons as members, what a perfect
OneID gives), events, identities, members and store cities. The store import is not in
the loop: at its measured 16-19k order rows/s (docs/benchmarks.md) it would take minutes
per million orders and dominate every figure here; landing from the store is measured in
docs/analytics.md.

Then, timed: the retention curve and its knee, RFM scores per member (materialised),
stages per member (materialised) and the month-over-month transitions, and every KPI of
`siyu analyze kpis`. In the same run, on the same data:

- the retention curve as hand-written DuckDB SQL (the same definition; the counts must be
  equal), for Ibis's overhead ratio;
- the CLV summary (frequency, recency, T per member, in days) on about 1M orders: Ibis on
  DuckDB against lifetimes' `summary_data_from_transaction_data` (if `lifetimes` imports)
  and an equivalent pandas groupby; the three must agree member for member.

    python bench/bench_analytics.py --members 1000000 [--clv-orders 1000000] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import ibis
import pandas as pd

from siyu.analytics.clv import clv_summary
from siyu.analytics.knee import find_knee
from siyu.analytics.kpi_service import kpi_report
from siyu.analytics.kpis import order_facts
from siyu.analytics.retention import retention_counts, retention_rows
from siyu.analytics.rfm import rfm_scores, rfm_values, segment_summary
from siyu.analytics.stages import StageConfig, member_stages, month_ends, stage_transitions
from siyu.demo.config import GeneratorConfig
from siyu.demo.generate import generate

T = TypeVar("T")
WINDOW = 120
MEMBER_OFFSET = 1_000_000_000  # above any generated person id
MAX_K = 12

WAREHOUSE_SQL = """
create table truth as select type, value, brand_id, person_id::bigint as member_id
    from read_parquet('{d}/truth/identity_truth.parquet');
create table purchases as
    select o.order_id, t.member_id, o.ordered_at, o.paid_fen::bigint as amount_fen, o.status,
           o.brand_id, o.channel, o.store_id, o.guide_id
    from read_parquet('{d}/orders.parquet') o
    join truth t on t.type = o.buyer_type and t.value = o.buyer_value
        and (t.type <> 'card' or t.brand_id = o.brand_id)  -- card numbers repeat by brand
    where o.status <> 'cancelled';
create table events as
    select t.member_id, e.channel, e.type, e.occurred_at, e.guide_id
    from read_parquet('{d}/events.parquet') e
    join truth t on t.type = e.identity_type and t.value = e.identity_value;
create table identities as
    select t.member_id, i.type, min(i.channel) as source_channel, min(i.observed_at) as first_seen
    from read_parquet('{d}/identities.parquet') i
    join truth t on t.type = i.type and t.value = i.value
        and (t.type <> 'card' or t.brand_id = i.brand_id)
    group by all;
create table members as select distinct member_id from truth;
create table stores as select store_id, city from read_csv('{d}/stores.csv');
drop table truth;
"""

RETENTION_SQL = """
with known as (
    select member_id, order_id, min(ordered_at) as ordered_at
    from purchases where ordered_at <= $end group by member_id, order_id
), seq as (
    select ordered_at,
           row_number() over w as k,
           lead(ordered_at) over w as next_at
    from known
    -- by time alone, as the Ibis curve sorts (retention._order_times): the k-th time of
    -- a member is the same whichever of two orders at one instant comes first
    window w as (partition by member_id order by ordered_at)
)
select k, count(*) as members,
       sum((ordered_at + to_days($window) <= $end)::bigint) as eligible,
       sum((ordered_at + to_days($window) <= $end and next_at is not null
            and next_at <= ordered_at + to_days($window))::bigint) as retained
from seq where k <= $max_k group by k order by k
"""


CLV_SQL = """
with daily as (
    select member_id, floor(epoch(ordered_at) / 86400)::bigint as day,
           sum(amount_fen) as amount_fen
    from clv_orders where ordered_at <= $end group by all
), per as (
    select member_id, count(*) as days, min(day) as first_day, max(day) as last_day,
           sum(amount_fen) - arg_min(amount_fen, day) as repeat_fen
    from daily group by all
)
select member_id, days - 1 as frequency, last_day - first_day as recency_days,
       floor(epoch($end) / 86400)::bigint - first_day as T_days, repeat_fen::bigint as repeat_fen
from per order by member_id
"""


def timed(label: str, times: dict[str, float], fn: Callable[[], T]) -> T:
    start = time.perf_counter()
    out = fn()
    times[label] = time.perf_counter() - start
    return out


def best_of(runs: int, fn: Callable[[], T]) -> tuple[float, T]:
    """The fastest of `runs` timings (the machine is shared) and the last result."""
    best, out = float("inf"), None
    for _ in range(runs):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    assert out is not None
    return best, out


def build(data: Path, warehouse: Path) -> dict[str, int]:
    db = duckdb.connect(str(warehouse))
    db.execute(WAREHOUSE_SQL.format(d=data))
    db.close()
    return table_counts(warehouse)


def table_counts(warehouse: Path) -> dict[str, int]:
    db = duckdb.connect(str(warehouse), read_only=True)
    counts = {
        t: int(db.sql(f"select count(*) from {t}").fetchall()[0][0])
        for t in ("purchases", "events", "identities", "members", "stores")
    }
    db.close()
    return counts


def replicate(warehouse: Path, copies: int) -> dict[str, int]:
    """The landed brand `copies` times over, with disjoint member and order ids: the same
    shapes at `copies` times the size, without generating it again."""
    db = duckdb.connect(str(warehouse))
    keyed = {
        "purchases": "order_id || '-' || r.i as order_id, ",
        "events": "",
        "identities": "",
        "members": "",
    }
    for table, order_key in keyed.items():
        rest = "t.* exclude (member_id" + (", order_id)" if order_key else ")")
        db.execute(f"""
            create table {table}_x as
            select {order_key.replace("order_id ||", "t.order_id ||")}
                   t.member_id + r.i * {MEMBER_OFFSET} as member_id, {rest}
            from {table} t, range({copies}) r(i);
            drop table {table};
            alter table {table}_x rename to {table};""")
    db.close()
    return table_counts(warehouse)


def recompute(warehouse: Path, memory_limit: str | None) -> dict[str, Any]:
    """Every analytic of a full recompute, on Ibis over the warehouse file."""
    con = ibis.duckdb.connect(str(warehouse))
    if memory_limit:
        con.raw_sql(f"SET memory_limit = '{memory_limit}'")
    purchases = con.table("purchases")
    t_end: datetime = pd.Timestamp(con.execute(purchases.ordered_at.max())).to_pydatetime()
    times: dict[str, float] = {}
    dims = ("brand_id", "channel", "guide_id", "store_id")
    # The warehouse's orders are one row per order (the store's key, landed a day at a
    # time), as `Warehouse.purchases` says, so every analysis reads them with distinct=True
    # and none aggregates them again. Here they are a table already (members are the true
    # persons); a landed store's purchases join each order to its identity's current
    # member, and `siyu analyze snapshot` materialises that once (`.cache()`).
    p = order_facts(purchases, t_end, None, dims, distinct=True)
    rows = timed(
        "retention",
        times,
        lambda: retention_rows(
            con.execute(retention_counts(p, WINDOW, MAX_K, t_end, distinct=True)), MAX_K
        ),
    )
    knee = find_knee(rows).k or 4

    def rfm() -> int:
        con.create_table("rfm", rfm_scores(rfm_values(p, t_end, distinct=True)), overwrite=True)
        con.execute(segment_summary(con.table("rfm")))
        return int(con.execute(con.table("rfm").count()))

    members = con.table("members")
    config = StageConfig(knee=knee)

    def stages() -> int:
        con.create_table(
            "stages",
            member_stages(p, knee, config, t_end, members, distinct=True),
            overwrite=True,
        )
        con.execute(
            stage_transitions(p, knee, month_ends(t_end, 6), config, members, distinct=True)
        )
        return int(con.execute(con.table("stages").count()))

    rfm_members = timed("rfm", times, rfm)
    staged = timed("stages", times, stages)
    report = timed(
        "kpis",
        times,
        lambda: kpi_report(
            con,
            p,
            con.table("events"),
            con.table("identities"),
            members,
            t_end,
            stores=con.table("stores"),
            distinct=True,
        ),
    )
    con.disconnect()
    return {
        "t_end": t_end,
        "times": times,
        "rows": rows,
        "knee": knee,
        "rfm_members": rfm_members,
        "staged": staged,
        "kpis": report,
    }


def retention_compare(warehouse: Path, t_end: datetime, runs: int) -> dict[str, Any]:
    con = ibis.duckdb.connect(str(warehouse))
    p = con.table("purchases")
    ibis_s, ibis_df = best_of(runs, lambda: con.execute(retention_counts(p, WINDOW, MAX_K, t_end)))
    db = duckdb.connect(str(warehouse), read_only=False)
    params = {"end": t_end, "window": WINDOW, "max_k": MAX_K}
    sql_s, sql_rows = best_of(runs, lambda: db.execute(RETENTION_SQL, params).fetchall())
    got = [
        (int(r.k), int(r.members), int(r.eligible), int(r.retained)) for r in ibis_df.itertuples()
    ]
    want = [(int(k), int(m), int(e), int(r)) for k, m, e, r in sql_rows]
    assert got == want, (got, want)
    db.close()
    con.disconnect()
    return {"ibis_s": ibis_s, "sql_s": sql_s, "ratio": ibis_s / sql_s}


def clv_compare(warehouse: Path, t_end: datetime, target: int, runs: int) -> dict[str, Any]:
    """The CLV summary on about `target` orders (whole member histories: every m-th member)."""
    db = duckdb.connect(str(warehouse))
    total = int(db.sql("select count(*) from purchases").fetchall()[0][0])
    step = max(1, round(total / target))
    db.execute(
        "create or replace table clv_orders as "
        f"select * from purchases where member_id % {step} = 0"
    )
    n = int(db.sql("select count(*) from clv_orders").fetchall()[0][0])
    frame = db.sql("select member_id, ordered_at, amount_fen from clv_orders").df()
    db.close()
    con = ibis.duckdb.connect(str(warehouse))
    orders = con.table("clv_orders")
    ibis_s, ours = best_of(runs, lambda: con.execute(clv_summary(orders, t_end)))
    ours = ours.set_index("member_id").sort_index()
    con.disconnect()
    # The engine's floor: the same summary as hand-written DuckDB SQL, into pandas.
    db = duckdb.connect(str(warehouse))
    sql_s, by_sql = best_of(
        runs, lambda: db.execute(CLV_SQL, {"end": t_end}).df().set_index("member_id")
    )
    db.close()
    by_sql = by_sql.sort_index()
    assert (by_sql[list(ours.columns)] == ours).all().all()

    def by_pandas() -> pd.DataFrame:
        day = frame.ordered_at.dt.floor("D")
        days = pd.DataFrame({"member_id": frame.member_id, "day": day}).drop_duplicates()
        g = days.groupby("member_id")["day"]
        first, last, count = g.min(), g.max(), g.count()
        end = pd.Timestamp(t_end).floor("D")
        return pd.DataFrame(
            {
                "frequency": count - 1,
                "recency": (last - first).dt.days,
                "T": (end - first).dt.days,
            }
        )

    pandas_s, theirs = best_of(runs, by_pandas)
    out: dict[str, Any] = {"orders": n, "members": len(ours), "ibis_s": ibis_s, "sql_s": sql_s}
    out["pandas_s"] = pandas_s
    for col, ref in (("frequency", "frequency"), ("recency_days", "recency"), ("T_days", "T")):
        assert ours[col].tolist() == theirs[ref].astype("int64").tolist(), col
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from lifetimes.utils import summary_data_from_transaction_data
    except ImportError:
        out["lifetimes_s"] = None
        return out

    def by_lifetimes() -> pd.DataFrame:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            summary: pd.DataFrame = summary_data_from_transaction_data(
                frame, "member_id", "ordered_at", observation_period_end=t_end, freq="D"
            )
        return summary

    lifetimes_s, lt = best_of(1, by_lifetimes)
    lt = lt.sort_index()
    for col, ref in (("frequency", "frequency"), ("recency_days", "recency"), ("T_days", "T")):
        assert ours[col].tolist() == lt[ref].astype("int64").tolist(), col
    out["lifetimes_s"] = lifetimes_s
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--clv-orders", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="best of N for the comparisons")
    parser.add_argument(
        "--copies",
        type=int,
        default=1,
        help="land the generated brand N times over (disjoint ids): N x the members",
    )
    parser.add_argument(
        "--memory-limit", help="DuckDB's memory_limit (default: 80%% of RAM), e.g. 12GB"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the warehouse of an earlier run in --dir (the load is then not timed)",
    )
    parser.add_argument("--dir", type=Path, help="keep the brand and warehouse here")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="siyu-bench-analytics-"))
    work.mkdir(parents=True, exist_ok=True)
    data, warehouse = work / "brand", work / "warehouse.duckdb"
    config = GeneratorConfig(
        members=args.members,
        seed=args.seed,
        days=1095,
        mean_gap_days=22.0,
        churn_before=(0.25, 0.12),
        churn_after=0.04,
    )
    times: dict[str, float] = {}
    try:
        if not (data / "orders.parquet").is_file():
            timed("generate", times, lambda: generate(data, config))
        if args.reuse and warehouse.is_file():  # iterating on the analytics alone
            counts, times["load"] = table_counts(warehouse), 0.0
        else:
            warehouse.unlink(missing_ok=True)
            counts = timed("load", times, lambda: build(data, warehouse))
            if args.copies > 1:
                counts = timed("replicate", times, lambda: replicate(warehouse, args.copies))
        result = recompute(warehouse, args.memory_limit)
        times.update(result["times"])
        retention = retention_compare(warehouse, result["t_end"], args.runs)
        clv = clv_compare(warehouse, result["t_end"], args.clv_orders, args.runs)
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    steps = ("retention", "rfm", "stages", "kpis")
    analytics_s = sum(times[k] for k in steps)
    recompute_s = times["load"] + times.get("replicate", 0.0) + analytics_s
    report = {
        "members": counts["members"],
        "counts": counts,
        "knee": result["knee"],
        "times": {k: round(v, 2) for k, v in times.items()},
        "analytics_s": round(analytics_s, 2),
        "recompute_s": round(recompute_s, 2),
        "retention": {k: round(v, 3) for k, v in retention.items()},
        "clv": {k: v if not isinstance(v, float) else round(v, 3) for k, v in clv.items()},
    }
    if args.json:
        print(json.dumps(report))
        return
    t = report["times"]
    load = t["load"] + t.get("replicate", 0.0)
    print(
        "| members | orders | events | load s | retention s | RFM s | stages s "
        "| KPIs s | analytics s | with the load s | knee |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {counts['members']:,} | {counts['purchases']:,} | {counts['events']:,} | {load:.1f} "
        f"| {t['retention']} | {t['rfm']} | {t['stages']} | {t['kpis']} "
        f"| {analytics_s:.1f} | {analytics_s + load:.1f} | {result['knee']} |"
    )
    print()
    print("| comparison | rows | Ibis on DuckDB s | baseline s | ratio |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| retention curve vs hand-written DuckDB SQL | {counts['purchases']:,} orders "
        f"| {retention['ibis_s']:.3f} | {retention['sql_s']:.3f} "
        f"| {retention['ratio']:.2f}x overhead |"
    )
    for name, key in (
        ("hand-written DuckDB SQL", "sql_s"),
        ("pandas groupby", "pandas_s"),
        ("lifetimes", "lifetimes_s"),
    ):
        if clv.get(key) is None:
            print(f"| CLV summary vs {name} | not run (`lifetimes` does not import) | | | |")
            continue
        print(
            f"| CLV summary vs {name} | {clv['orders']:,} orders, {clv['members']:,} members "
            f"| {clv['ibis_s']:.3f} | {clv[key]:.3f} | {clv[key] / clv['ibis_s']:.1f}x faster |"
        )
    for step in ("generate", "replicate"):
        if step in t:
            print(f"\n{step}: {t[step]} s (not in the full recompute)")


if __name__ == "__main__":
    main()
