"""Benchmark the OneID kernel against scipy's plain connected components, in one run.

    python bench/bench_oneid.py --nodes 10_000_000 --edges 30_000_000 --seed 1 [--json]

The graph looks like a brand's identifiers: people with 1-10 identifiers (unionid, phone,
card of one of three brands, openids, sometimes a second phone after a phone change, a
few weak device ids), edges repeated over time, plus the noise that makes OneID hard:
household phones shared by two people, devices shared across people, random bad links.
scipy ignores all the rules, so it is the speed floor to beat, not a correct answer;
both partitions are scored against the generator's true persons.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from siyu.identity.evaluate import pairwise_scores
from siyu.identity.graph import IdentityGraph, resolve

UNIONID, PHONE, CARD = 0, 1, 2  # exclusive classes; CARD + brand for brands 0..2
SIZE_P = np.array([0.10, 0.10, 0.16, 0.18, 0.16, 0.12, 0.08, 0.05, 0.03, 0.02])
YEAR = 365 * 86400


def build(n: int, m: int, seed: int, local: bool = False) -> tuple[IdentityGraph, np.ndarray]:
    """A random identity graph of n nodes and m edges, and each node's true person."""
    rng = np.random.default_rng(seed)
    sizes = rng.choice(np.arange(1, 11), size=n // 3 + 10, p=SIZE_P)
    ends = np.cumsum(sizes)
    persons = int(np.searchsorted(ends, n)) + 1
    sizes = sizes[:persons]
    sizes[-1] -= int(ends[persons - 1]) - n
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    person = np.repeat(np.arange(persons), sizes)
    pos = np.arange(n) - starts[person]
    size = sizes[person]

    second_phone = (pos == 3) & (rng.random(n) < 0.15)
    weak = (pos >= 4) & (rng.random(n) < 0.10)
    cls = np.full(n, -1, np.int32)
    cls[pos == 0] = UNIONID
    cls[(pos == 1) | second_phone] = PHONE
    cls[pos == 2] = CARD + (person[pos == 2] % 3)
    t0 = 1_450_000_000 + rng.integers(0, 8 * YEAR, persons)[person]
    change = t0 + rng.integers(YEAR // 12, 3 * YEAR, n)
    first = t0.copy()
    last = t0 + rng.integers(0, 6 * YEAR, n)
    last[pos == 1] = change[pos == 1]  # the first phone ends where the second starts
    idx = np.flatnonzero(second_phone)
    first[idx] = last[idx - 2] + 1
    last[idx] = first[idx] + rng.integers(0, 3 * YEAR, idx.size)

    # A spanning tree per person (each node to one of the first four, all strong) ...
    tree = np.flatnonzero(pos >= 1)
    tree_b = starts[person[tree]] + rng.integers(0, np.minimum(pos[tree], 4))
    # ... the noise: shared household phones, shared devices, random bad links ...
    household = rng.choice(np.flatnonzero((pos == 1) & (person > 0)), size=m // 400)
    household_b = starts[person[household] - 1]  # the previous person's unionid
    shared = rng.choice(np.flatnonzero(weak), size=min(m // 1000, int(weak.sum())))
    shared_b = rng.integers(0, n, shared.size)
    bad = rng.integers(0, n, (m // 5000, 2))
    # ... and the rest: the same people's identifiers seen together again.
    rest = m - tree.size - household.size - shared.size - bad.shape[0]
    many = np.flatnonzero(size >= 2)
    again = many[rng.integers(0, many.size, max(rest, 0))]
    again_b = starts[person[again]] + (rng.random(again.size) * size[again]).astype(np.int64)
    a = np.concatenate([tree, household, shared, bad[:, 0], again])[:m]
    b = np.concatenate([tree_b, household_b, shared_b, bad[:, 1], again_b])[:m]
    verified = rng.random(a.size) < 0.3
    when = rng.integers(1_450_000_000, 1_750_000_000, a.size)
    # Node ids as a store hands them out: one person's identifiers are first seen years
    # apart, so their ids are scattered (contiguous ids flatter both engines' caches).
    new_id = np.arange(n) if local else rng.permutation(n)
    at = np.empty(n, np.int64)
    at[new_id] = np.arange(n)  # at[new] = old
    graph = IdentityGraph(
        strong=~weak[at],
        exclusive_class=cls[at],
        time_disjoint=cls[at] == PHONE,
        first_seen=first[at].astype(np.int64),
        last_seen=last[at].astype(np.int64),
        edge_a=new_id[a].astype(np.int64),
        edge_b=new_id[b].astype(np.int64),
        edge_priority=np.where(verified, 0, 1 << 32) + when,
        edge_blocked=rng.random(a.size) < 0.0001,
    )
    return graph, person[at]


def run(n: int, m: int, seed: int, local: bool = False) -> dict[str, object]:
    t = time.perf_counter()
    tiny, _ = build(50, 150, seed)
    resolve(tiny)  # numba: compile, or load from its cache
    compile_s = time.perf_counter() - t

    t = time.perf_counter()
    graph, person = build(n, m, seed, local)
    build_s = time.perf_counter() - t

    ones = np.ones(m, dtype=np.bool_)
    t = time.perf_counter()
    csr = coo_matrix((ones, (graph.edge_a, graph.edge_b)), shape=(n, n)).tocsr()
    n_scipy, scipy_labels = connected_components(csr, directed=False)
    scipy_s = time.perf_counter() - t
    del csr, ones

    t = time.perf_counter()
    checked = IdentityGraph(**{f: getattr(graph, f) for f in graph.__dataclass_fields__})
    validate_s = time.perf_counter() - t
    t = time.perf_counter()
    res = resolve(checked)
    resolve_s = time.perf_counter() - t
    siyu_s = validate_s + resolve_s

    ours = pairwise_scores(res.labels, person)
    theirs = pairwise_scores(scipy_labels, person)
    return {
        "nodes": n,
        "edges": m,
        "seed": seed,
        "node_ids": "contiguous per person" if local else "shuffled",
        "build_s": round(build_s, 2),
        "scipy_s": round(scipy_s, 2),
        "siyu_compile_s": round(compile_s, 2),
        "siyu_validate_s": round(validate_s, 2),
        "siyu_resolve_s": round(resolve_s, 2),
        "siyu_s": round(siyu_s, 2),
        "ratio_scipy_over_siyu": round(scipy_s / siyu_s, 2),
        "components_scipy": int(n_scipy),
        "components_siyu": int(np.unique(res.labels).size),
        "conflict_edges": int(res.conflict_edges.size),
        "time_disjoint_edges": int(res.time_disjoint_edges.size),
        "weak_ambiguous": int(res.weak_ambiguous.size),
        "f1_scipy": round(theirs.f1, 4),
        "f1_siyu": round(ours.f1, 4),
        "precision_siyu": round(ours.precision, 4),
        "recall_siyu": round(ours.recall, 4),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000_000)
    parser.add_argument("--edges", type=int, default=30_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--local", action="store_true", help="keep one person's node ids contiguous (best case)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    r = run(args.nodes, args.edges, args.seed, args.local)
    if args.json:
        print(json.dumps(r))
        return
    print("| nodes | edges | scipy cc (s) | siyu resolve (s) | scipy / siyu | F1 scipy | F1 siyu |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {r['nodes']:,} | {r['edges']:,} | {r['scipy_s']} | {r['siyu_s']} "
        f"| {r['ratio_scipy_over_siyu']}x | {r['f1_scipy']} | {r['f1_siyu']} |"
    )
    print(
        f"\nsiyu: compile/cache {r['siyu_compile_s']} s (not counted), validate "
        f"{r['siyu_validate_s']} s, resolve {r['siyu_resolve_s']} s (sort included); "
        f"{r['conflict_edges']:,} conflicts, {r['time_disjoint_edges']:,} phone changes, "
        f"{r['weak_ambiguous']:,} ambiguous weak nodes; peak RSS {r['peak_rss_mb']:,} MB"
    )


if __name__ == "__main__":
    main()
