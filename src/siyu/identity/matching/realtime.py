"""Incremental scoring: new records against the candidates their blocking keys found.

Splink's clusters cannot grow by one record (splink#1112), so a new identity is scored
against candidate members here and the caller attaches it to the best one. The scoring
is Splink's: the comparison levels are the CASE statements Splink generates from the
model, and the weights are Splink's match weights (log2 m/u, plus the prior). What is
not Splink's is the plumbing. `splink.internals.realtime.compare_records` re-registers
two tables under fresh names and runs the whole predict pipeline on every call, about
15 ms of DuckDB planning for twenty pairs (bench/bench_matching.py measures it); siyu
builds the comparison SQL once per model and thread, runs only that part on DuckDB in
memory, and adds the weights up in numpy, a few milliseconds in all.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
from splink import SettingsCreator
from splink.internals.misc import prob_to_match_weight

from siyu.identity.matching.columns import UNIQUE_ID
from siyu.identity.matching.model import MatchModel, for_splink
from siyu.identity.matching.predict import PAIR_SCHEMA, level_labels
from siyu.identity.matching.standardise import standardise

_local = threading.local()  # a DuckDB connection serves one query at a time


@dataclass(frozen=True)
class _Scorer:
    sql: str  # ids and one gamma column per comparison, for siyu_left x siyu_right
    fields: tuple[str, ...]
    weights: tuple[dict[int, float], ...]  # per comparison: gamma -> match weight
    labels: tuple[dict[int, str], ...]
    prior: float  # the prior match weight, log2(lambda / (1 - lambda))


def _scorer(model: MatchModel) -> _Scorer:
    settings = model.settings
    splink = SettingsCreator.from_path_or_dict(for_splink(settings)).get_settings("duckdb")
    splink._retain_matching_columns = False
    blocked = ", ".join(splink._columns_to_select_for_blocking)
    gammas = ", ".join(c._case_statement for c in splink.comparisons)
    sql = (
        f"WITH pairs AS (SELECT {blocked} FROM siyu_left AS l JOIN siyu_right AS r "
        f"ON l.{UNIQUE_ID} <> r.{UNIQUE_ID}) "
        f"SELECT {UNIQUE_ID}_l, {UNIQUE_ID}_r, {gammas} FROM pairs"
    )
    labels = level_labels(settings)
    fields = tuple(c.output_column_name for c in splink.comparisons)
    weights = tuple(
        {
            level.comparison_vector_value: float(level._match_weight or 0.0)
            for level in comparison.comparison_levels
        }
        for comparison in splink.comparisons
    )
    return _Scorer(
        sql=sql,
        fields=fields,
        weights=weights,
        labels=tuple(labels[f] for f in fields),
        prior=prob_to_match_weight(splink._probability_two_random_records_match),
    )


def _round3(weight: float) -> float:
    """Three decimals rounded half away from zero, as DuckDB's round() does in predict
    (Python's round() would round half to even)."""
    return math.copysign(math.floor(abs(weight * 1000.0) + 0.5), weight) / 1000.0


def _connection_and_scorer(model: MatchModel) -> tuple[duckdb.DuckDBPyConnection, _Scorer]:
    if getattr(_local, "con", None) is None:
        _local.con = duckdb.connect()
        _local.con.execute("SET threads = 1")  # twenty pairs: threads only cost
        _local.scorers = {}
    key = hashlib.sha256(model.settings_json.encode()).hexdigest()
    if key not in _local.scorers:
        _local.scorers[key] = _scorer(model)
    return _local.con, _local.scorers[key]


def score_against(model: MatchModel, new: pa.Table, candidates: pa.Table) -> pa.Table:
    """Score each record of `new` against each of `candidates` (both RAW_COLUMNS), pairs
    of a record with itself left out: PAIR_SCHEMA rows, every pair, unthresholded."""
    if new.num_rows == 0 or candidates.num_rows == 0:
        return PAIR_SCHEMA.empty_table()
    con, scorer = _connection_and_scorer(model)
    con.register("siyu_left", standardise(new))
    con.register("siyu_right", standardise(candidates))
    try:
        rows = con.execute(scorer.sql).fetchall()
    finally:
        con.unregister("siyu_left")
        con.unregister("siyu_right")
    if not rows:
        return PAIR_SCHEMA.empty_table()
    ids = np.array([row[:2] for row in rows], dtype=np.int64)
    gammas = [row[2:] for row in rows]
    parts = np.array(
        [[scorer.weights[i][g] for i, g in enumerate(pair)] for pair in gammas], dtype=np.float64
    )
    match_weight = scorer.prior + parts.sum(axis=1)
    # as Splink computes it: 1 / (1 + 2^-w), written so that 2^w never overflows
    odds = np.exp2(-np.abs(match_weight))
    probability = np.where(match_weight >= 0, 1.0 / (1.0 + odds), odds / (1.0 + odds))
    field_weights = [
        json.dumps(
            [
                {"field": f, "level": scorer.labels[i][g], "weight": _round3(float(w))}
                for i, (f, g, w) in enumerate(zip(scorer.fields, pair, weights, strict=True))
            ],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        for pair, weights in zip(gammas, parts, strict=True)
    ]
    table = pa.table(
        {
            "id_l": np.minimum(ids[:, 0], ids[:, 1]),
            "id_r": np.maximum(ids[:, 0], ids[:, 1]),
            "match_weight": match_weight,
            "match_probability": probability,
            "field_weights": pa.array(field_weights, pa.string()),
        },
        schema=PAIR_SCHEMA,
    )
    return table.sort_by([("id_l", "ascending"), ("id_r", "ascending")])
