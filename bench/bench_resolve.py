"""Batch OneID end to end on a real store: read identities and links, resolve, write back.

    python bench/bench_resolve.py --nodes 1_000_000 --edges 3_000_000 [--pg-url URL] [--skip-sqlite]

The graph is bench_oneid's synthetic brand (people with 1-10 identifiers, shared family
phones, phone changes, weak devices), loaded straight into `identities` and
`identity_links` through the store's staging path. It reports the first resolution
(every component gets a member) and a second one (nothing to change: the steady state),
and, as the floor measured in the same run, the kernel alone on the same arrays.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from sqlalchemy import Engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_oneid import CARD, PHONE, UNIONID, build
from pgtemp import temporary_database
from siyu.config import DEFAULT_STRONG_TYPES
from siyu.identity.graph import resolve
from siyu.identity.resolve import resolve_all
from siyu.importer.service import ensure_group
from siyu.store.bulk import stage, unstage
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade


def identity_tables(n: int, m: int, seed: int) -> tuple[pa.Table, pa.Table, float]:
    graph, _truth = build(n, m, seed)
    started = time.perf_counter()
    resolve(graph)
    kernel = time.perf_counter() - started
    cls = graph.exclusive_class
    types = np.full(n, "openid", dtype=object)
    types[cls == UNIONID] = "unionid"
    types[cls == PHONE] = "phone"
    types[cls >= CARD] = "card"
    types[~graph.strong] = "device_id"
    brands = np.where(cls >= CARD, np.char.add("B", (cls - CARD + 1).astype(str)), None)
    first = graph.first_seen.astype("datetime64[s]")
    last = graph.last_seen.astype("datetime64[s]")
    keys = np.char.add("k", np.arange(n).astype(str))
    ids = pa.table(
        {
            "identity_id": pa.array(np.arange(1, n + 1, dtype=np.int64)),
            "type": pa.array(types, pa.string()),
            "value_key": pa.array(keys),
            "value_masked": pa.array(keys),
            "brand_id": pa.array(brands, pa.string()),
            "verified": pa.array(cls == PHONE),
            "first_seen": pa.array(first, pa.timestamp("s")),
            "last_seen": pa.array(last, pa.timestamp("s")),
        }
    )
    a = np.minimum(graph.edge_a, graph.edge_b) + 1
    b = np.maximum(graph.edge_a, graph.edge_b) + 1
    keep = a != b
    pairs, first_index = np.unique(np.stack([a[keep], b[keep]]), axis=1, return_index=True)
    prio = graph.edge_priority[keep][first_index]
    edge_first = graph.first_seen[pairs[0] - 1].astype("datetime64[s]")
    links = pa.table(
        {
            "identity_a": pa.array(pairs[0]),
            "identity_b": pa.array(pairs[1]),
            "verified": pa.array(prio < np.median(prio)),
            "first_seen": pa.array(edge_first, pa.timestamp("s")),
        }
    )
    return ids, links, kernel


def load(engine: Engine, group: str, ids: pa.Table, links: pa.Table) -> float:
    started = time.perf_counter()
    with engine.begin() as conn:
        s = stage(conn, "bench_ids", ids)
        conn.execute(
            text(f"""
            INSERT INTO identities (identity_id, group_id, type, scope, value_key,
                value_masked, brand_id, verified, source_channel, first_seen, last_seen)
            SELECT s.identity_id, :g, s.type, COALESCE(s.brand_id, ''), s.value_key,
                s.value_masked, s.brand_id, s.verified, 'miniprogram', s.first_seen,
                s.last_seen FROM {s.name} s"""),
            {"g": group},
        )
        unstage(conn, s)
        s = stage(conn, "bench_links", links)
        conn.execute(
            text(f"""
            INSERT INTO identity_links (group_id, identity_a, identity_b, channel, verified,
                first_seen, last_seen, blocked)
            SELECT :g, s.identity_a, s.identity_b, 'miniprogram', s.verified, s.first_seen,
                s.first_seen, 1 = 0 FROM {s.name} s"""),
            {"g": group},
        )
        unstage(conn, s)
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "SELECT setval(pg_get_serial_sequence('identities', "
                "'identity_id'), (SELECT MAX(identity_id) FROM identities))"
            )
    return time.perf_counter() - started


def run(url: str, label: str, ids: pa.Table, links: pa.Table) -> dict[str, object]:
    engine = make_engine(url)
    upgrade(engine)
    group = "bench"
    ensure_group(engine, group)
    loaded = load(engine, group, ids, links)
    first = resolve_all(engine, group, DEFAULT_STRONG_TYPES)
    second = resolve_all(engine, group, DEFAULT_STRONG_TYPES)
    engine.dispose()
    return {
        "store": label,
        "identities": ids.num_rows,
        "links": links.num_rows,
        "load_s": round(loaded, 1),
        "first_s": round(first.seconds, 1),
        "first_timings": {k: round(v, 1) for k, v in first.timings.items()},
        "members": first.members,
        "conflicts": first.conflicts,
        "second_s": round(second.seconds, 1),
        "second_timings": {k: round(v, 1) for k, v in second.timings.items()},
        "second_moved": second.moved_identities,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--edges", type=int, default=3_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("SIYU_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    ids, links, kernel = identity_tables(args.nodes, args.edges, args.seed)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_sqlite:
            results.append(run(f"sqlite:///{Path(tmp) / 'r.db'}", "SQLite", ids, links))
        with temporary_database(args.pg_url) as url:
            results.append(run(url, "PostgreSQL", ids, links))
    print(
        "| store | identities | links | kernel alone (s) | first resolve (s) "
        "| re-resolve, nothing to do (s) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['store']} | {r['identities']:,} | {r['links']:,} | {kernel:.1f} | "
            f"{r['first_s']} {r['first_timings']} | {r['second_s']} {r['second_timings']} |"
        )
    print(json.dumps({"kernel_s": round(kernel, 2), "runs": results}))


if __name__ == "__main__":
    main()
