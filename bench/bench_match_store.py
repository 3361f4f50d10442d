"""Probabilistic OneID on the store: the batch pass, then one member at a time.

    python bench/bench_match_store.py --members 1000000 [--calls 300] [--database-url URL]

The members are `siyu.identity.matching.synthetic.people` (the till's duplicates, with
truth), imported through the members importer with a card each, resolved by batch OneID.
Timed:

1. the batch pass (`run_matching`: load and decrypt the records, train, score, record the
   decisions and the blocking keys, merge through batch OneID), step by step;
2. `match_member` for `--calls` members imported after the pass: find candidates through
   the stored blocking keys, load and decrypt them, score, decide and write; p50 / p99.
   The baseline in the same run, on the same record and candidates: the engine's
   `score_against` alone, so the ratio is what the store adds.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from brandfiles import write_reference
from siyu.config import DEFAULT_STRONG_TYPES
from siyu.identity.matching.blocking import blocking_keys
from siyu.identity.matching.incremental import latest_model, match_member
from siyu.identity.matching.keys import candidate_members
from siyu.identity.matching.realtime import score_against
from siyu.identity.matching.records import load_records
from siyu.identity.matching.run import run_matching
from siyu.identity.matching.synthetic import people
from siyu.identity.service import resolve_all
from siyu.importer.service import ensure_group, import_directory, import_file
from siyu.privacy import Vault
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade


def members_file(records: pa.Table, path: Path) -> None:
    n = records.num_rows
    ids = records.column("record_id").to_numpy()
    table = pa.table(
        {
            "member_ref": pa.array([f"R{i}" for i in ids]),
            "brand_id": pa.array(["B1"] * n),
            "registered_at": pa.array(
                np.datetime64("2021-01-01T00:00:00") + ids.astype("timedelta64[m]"),
                pa.timestamp("s"),
            ),
            "channel": pa.array(["pos"] * n),
            "card": pa.array([f"C{i:09d}" for i in ids]),
            **{
                c: records.column(c)
                for c in ("phone", "name", "given_name", "family_name", "city", "postcode")
            },
            "address": records.column("address"),
            "birth_date": records.column("birth_date"),
        }
    )
    pq.write_table(table, path)


def progress(step: str) -> None:
    """A line on stderr per phase: at 1M members the whole run takes hours."""
    print(f"{time.strftime('%H:%M:%S')} {step}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values) * 1000, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--profile", type=Path, default=None, help="write cProfile stats of the calls here"
    )
    args = parser.parse_args()
    progress("generating people")
    records, _ = people(args.members + args.calls)
    first, later = records.slice(0, args.members), records.slice(args.members)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        url = args.database_url or f"sqlite:///{data / 'bench.db'}"
        engine = make_engine(url)
        upgrade(engine)
        group = "bench-match"
        ensure_group(engine, group)
        vault = Vault(os.urandom(32))
        write_reference(data / "ref")
        import_directory(engine, vault, group, data / "ref", data / "rejects")
        members_file(first, data / "members.parquet")
        members_file(later, data / "later.parquet")
        progress("importing and resolving")
        started = time.perf_counter()
        import_file(engine, vault, group, "members", data / "members.parquet", data / "rej")
        resolve_all(engine, group, DEFAULT_STRONG_TYPES)
        setup = time.perf_counter() - started
        progress("batch pass")
        started = time.perf_counter()
        report = run_matching(engine, vault, group, DEFAULT_STRONG_TYPES)
        batch = time.perf_counter() - started
        import_file(engine, vault, group, "members", data / "later.parquet", data / "rej2")
        with engine.connect() as conn:
            later_ids = [
                int(r[0])
                for r in conn.exec_driver_sql(
                    "SELECT member_id FROM members WHERE status = 'active' AND source_ref IN ("
                    + ",".join(f"'R{i}'" for i in later.column("record_id").to_pylist())
                    + ")"
                )
            ]
        progress(f"{len(later_ids)} calls")
        store_times, engine_times, candidates = [], [], []
        profiler = cProfile.Profile() if args.profile else None
        for member_id in later_ids:
            # the baseline first, on what match_member will read: the engine alone
            with engine.connect() as conn:
                found = latest_model(conn, group)
                assert found is not None
                record = load_records(conn, vault, group, [member_id])
                ids = candidate_members(
                    conn, vault, group, blocking_keys(record), exclude=member_id
                )
                cands = load_records(conn, vault, group, ids)
            t = time.perf_counter()
            score_against(found[1], record, cands)
            engine_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            if profiler is not None:
                profiler.enable()
            result = match_member(engine, vault, group, member_id)
            if profiler is not None:
                profiler.disable()
            store_times.append(time.perf_counter() - t)
            candidates.append(result.candidates)
    if profiler is not None:
        profiler.dump_stats(str(args.profile))
    figures = {
        "store": url.split(":", 1)[0],
        "members": args.members,
        "setup_import_and_resolve_s": round(setup, 1),
        "batch_pass_s": round(batch, 1),
        "batch_steps_s": {k: round(v, 1) for k, v in report.timings.items()},
        "pairs_scored": report.pairs_scored,
        "merges": report.merges,
        "queued": report.queued,
        "calls": len(store_times),
        "candidates_mean": round(float(np.mean(candidates)), 1) if candidates else 0,
        "match_member_ms_p50": round(percentile(store_times, 50), 1),
        "match_member_ms_p99": round(percentile(store_times, 99), 1),
        "score_against_ms_p50": round(percentile(engine_times, 50), 1),
        "score_against_ms_p99": round(percentile(engine_times, 99), 1),
        "ratio_p50": round(float(np.median(store_times) / np.median(engine_times)), 2),
    }
    print(json.dumps(figures, ensure_ascii=False))


if __name__ == "__main__":
    main()
