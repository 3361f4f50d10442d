"""Probabilistic matching at a brand's scale: batch train + predict, and real-time scoring.

    python bench/bench_matching.py --records 1000000 [--calls 1000] [--candidates 20] [--json]

The records are `siyu.identity.matching.synthetic.people`: members with the duplicates a
till makes (typo'd and swapped phone digits, homophones, traditional characters, swapped
names, birth date typos, movers, households sharing an address and a device), and the
truth. Timed, on DuckDB (the default engine):

1. the pairs each blocking rule adds (Splink's count_comparisons_from_blocking_rules,
   exact), the first check that a million members stay tractable on two cores;
2. train (lambda, u from ten million random pairs, EM) and predict (every blocked pair,
   kept from the review threshold), with the process's peak memory, and the pairwise F1
   against the truth at AUTO_THRESHOLD;
3. `score_against`: one record against 20 candidates found through its blocking keys,
   `--calls` times, p50 / p99. The baseline in the same run, on the same inputs: Splink's
   own real-time API, `compare_records` with its SQL cache.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections import defaultdict
from typing import Any

import numpy as np
import pyarrow as pa
from splink import DuckDBAPI
from splink.blocking_analysis import count_comparisons_from_blocking_rules
from splink.internals.realtime import compare_records

from siyu.identity.evaluate import pairwise_scores
from siyu.identity.matching import (
    AUTO_THRESHOLD,
    RULES,
    blocking_keys,
    cluster,
    engines,
    predict,
    score_against,
    standardise,
    train,
)
from siyu.identity.matching.model import MatchModel, for_splink
from siyu.identity.matching.synthetic import people


def peak_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def blocking_counts(standard: pa.Table) -> list[tuple[str, int, int]]:
    api = engines.db_api("duckdb")
    frame = engines.register(api, standard)
    counts = count_comparisons_from_blocking_rules(
        frame,
        blocking_rules=[r.creator() for r in RULES],
        link_type="dedupe_only",
        unique_id_column_name="record_id",
        record_sample_proportion=1.0,
    )
    engines.release(api, frame)
    return [
        (rule.name, int(c["marginal_comparison_count"]), int(c["cumulative_comparison_count"]))
        for rule, c in zip(RULES, counts, strict=True)
    ]


def candidate_sets(
    table: pa.Table, calls: int, size: int, seed: int
) -> list[tuple[pa.Table, pa.Table]]:
    """(new record, its candidates) pairs: the members sharing a blocking key with a
    record drawn at random, as the store's key index would return them, cut or padded
    with random members to `size`."""
    rng = np.random.default_rng(seed)
    sample = rng.choice(table.num_rows, size=calls, replace=False)
    ids = table.column("record_id").to_numpy()
    keys = blocking_keys(table)
    by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
    keys_of: dict[int, list[tuple[str, str]]] = defaultdict(list)
    wanted = set(ids[sample].tolist())
    for record_id, rule, key in zip(
        *(keys.column(c).to_pylist() for c in ("record_id", "rule", "key")), strict=True
    ):
        by_key[(rule, key)].append(record_id)
        if record_id in wanted:
            keys_of[record_id].append((rule, key))
    row_of = {int(v): i for i, v in enumerate(ids)}
    sets = []
    for i in sample:
        record_id = int(ids[i])
        found = {c for k in keys_of[record_id] for c in by_key[k] if c != record_id}
        chosen = list(found)[:size]
        while len(chosen) < size:
            other = int(ids[rng.integers(0, len(ids))])
            if other != record_id and other not in chosen:
                chosen.append(other)
        sets.append((table.slice(int(i), 1), table.take([row_of[c] for c in chosen])))
    return sets


def latencies(fn: Any, sets: list[tuple[pa.Table, pa.Table]]) -> dict[str, float]:
    fn(*sets[0])  # the first call builds and caches the SQL
    times = []
    for new, candidates in sets:
        started = time.perf_counter()
        fn(new, candidates)
        times.append(time.perf_counter() - started)
    ms = np.array(times) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def splink_realtime(model: MatchModel) -> Any:
    """Splink's own real-time path on the same inputs: standardise, then
    compare_records with its SQL cache, results read back as Arrow."""
    api = DuckDBAPI()
    settings = for_splink(model.settings)

    def call(new: pa.Table, candidates: pa.Table) -> pa.Table:
        scored = compare_records(
            standardise(new),
            standardise(candidates),
            settings,
            api,
            sql_cache_key="bench",
            join_condition="l.record_id <> r.record_id",
        )
        table = scored.as_pyarrow_table()
        scored.drop_table_from_database_and_remove_from_cache(force_non_splink_table=True)
        return table

    return call


def run(records: int, calls: int, candidates: int, seed: int) -> dict[str, Any]:
    report: dict[str, Any] = {"records": records}
    started = time.perf_counter()
    table, truth = people(records, seed=seed)
    report["generate_s"] = time.perf_counter() - started

    started = time.perf_counter()
    standard = standardise(table)
    report["standardise_s"] = time.perf_counter() - started
    started = time.perf_counter()
    report["blocking"] = blocking_counts(standard)
    report["blocking_count_s"] = time.perf_counter() - started
    del standard

    started = time.perf_counter()
    model = train(table)
    report["train_s"] = time.perf_counter() - started
    started = time.perf_counter()
    pairs = predict(model, table)
    report["predict_s"] = time.perf_counter() - started
    report["pairs_kept"] = pairs.num_rows
    report["peak_rss_mb"] = peak_mb()

    clusters = cluster(table.column("record_id"), pairs, AUTO_THRESHOLD)
    label = dict(
        zip(
            clusters.column("record_id").to_pylist(),
            clusters.column("cluster_id").to_pylist(),
            strict=True,
        )
    )
    predicted = np.array([label[i] for i in table.column("record_id").to_pylist()])
    scores = pairwise_scores(predicted, truth)
    report["f1_at_auto"] = {"precision": scores.precision, "recall": scores.recall, "f1": scores.f1}

    sets = candidate_sets(table, calls, candidates, seed)
    report["score_against"] = latencies(lambda n, c: score_against(model, n, c), sets)
    report["splink_compare_records"] = latencies(splink_realtime(model), sets)
    return report


def markdown(r: dict[str, Any]) -> str:
    total = r["blocking"][-1][2] if r["blocking"] else 0
    lines = [
        f"records {r['records']:,} (generated in {r['generate_s']:.0f} s, standardised in "
        f"{r['standardise_s']:.1f} s); blocked pairs {total:,} "
        f"(counted in {r['blocking_count_s']:.1f} s)",
        "",
        "| rule | pairs it adds | cumulative |",
        "|---|---:|---:|",
        *(f"| {name} | {added:,} | {cum:,} |" for name, added, cum in r["blocking"]),
        "",
        "| step | figure |",
        "|---|---:|",
        f"| train (lambda, u, EM) | {r['train_s']:.1f} s |",
        f"| predict (all blocked pairs, kept >= review) | {r['predict_s']:.1f} s, "
        f"{r['pairs_kept']:,} pairs |",
        f"| peak RSS | {r['peak_rss_mb']:,} MB |",
        f"| pairwise P / R / F1 at AUTO_THRESHOLD | {r['f1_at_auto']['precision']:.4f} / "
        f"{r['f1_at_auto']['recall']:.4f} / {r['f1_at_auto']['f1']:.4f} |",
        f"| score_against, 1 vs 20, p50 / p99 | {r['score_against']['p50_ms']:.1f} / "
        f"{r['score_against']['p99_ms']:.1f} ms |",
        f"| baseline: Splink compare_records (SQL cached), p50 / p99 | "
        f"{r['splink_compare_records']['p50_ms']:.1f} / "
        f"{r['splink_compare_records']['p99_ms']:.1f} ms |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = run(args.records, args.calls, args.candidates, args.seed)
    print(json.dumps(report, indent=2) if args.json else markdown(report))


if __name__ == "__main__":
    main()
