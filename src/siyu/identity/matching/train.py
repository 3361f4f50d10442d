"""Training: lambda from deterministic rules, u by random sampling, m by EM.

The three estimates are Splink's unsupervised recipe (no labels): the probability that
two random records match (lambda) from pairs that exact rules agree on, scaled up by an
assumed recall; u (how often non-matches agree) from random pairs; m (how often matches
agree) by expectation maximisation within blocks, each block leaving the fields it
blocks on to other blocks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import splink.internals.expectation_maximisation as splink_em
from splink import Linker, block_on
from splink.internals.blocking_rule_creator import BlockingRuleCreator
from splink.internals.comparison_level import M_U_CLAMP_MIN

from siyu.errors import ValidationError
from siyu.identity.matching import engines
from siyu.identity.matching.blocking import rules_for, tail_key
from siyu.identity.matching.comparisons import present_fields
from siyu.identity.matching.model import (
    SIYU_KEY,
    MatchModel,
    settings_creator,
    trained_settings,
)
from siyu.identity.matching.standardise import standardise

# The share of true matches the deterministic rules are assumed to find: a prior, as in
# Splink's own demos (0.7 to 0.9); set once, never fitted to a labelled set.
DETERMINISTIC_RECALL = 0.7
# Random pairs for u: ten per record, at least a million (Splink's demos) and at most ten
# million (a minute on two cores); more records, rarer agreements worth measuring.
U_PAIRS_PER_RECORD = 10
U_MIN_PAIRS, U_MAX_PAIRS = 1e6, 1e7
EM_MAX_PAIRS = 2e6  # blocked pairs per EM session, sampled beyond that
# The m of a level that random pairs fall into (u known) but no pair of any EM block did:
# no likely match was seen there, so it is taken as rare as one match in ten thousand.
# Splink would leave its generic default (0.05 spread over the levels), which scores
# "same family name, another given name" as barely against a match: enough for two
# relatives sharing an address and a tablet to merge.
UNOBSERVED_M = 1e-4
SEED = 15  # u sampling is reproducible
# u from one pass over the sampled pairs per comparison. Splink 5 by default splits them
# into a probe and ten chunks and stops once every level was seen 100 times: a query per
# chunk, which on Spark is a job each (u took 95 s for 1,000 records, 33 s in one pass),
# and u then depends on how many chunks ran. On DuckDB a rare level (an exact name among
# strangers) kept every chunk running anyway (FEBRL3: eleven queries per comparison);
# measured at 200,000 synthetic members, the same F1 (0.9968) and train time.
U_CHUNKS = 1

# Exact agreements that a different person almost never shares (with the fields needed).
_DETERMINISTIC: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("given_pinyin", "family_pinyin", "birth_ymd"), ("name", "birth_date")),
    (("phone",), ("phone",)),
    (("email",), ("email",)),
    (("id_number",), ("id_number",)),
)
# EM blocks, tried in order until every field has been trained outside its own block.
# Each must hold mostly true matches whatever the size of the brand: blocked on a name
# alone, a million members hold far more namesakes (张伟) than duplicates, and EM then
# learns "namesake or relative" as its match class (measured: F1 0.87 at 1M members).
_EM_BLOCKS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("given_pinyin", "family_pinyin", "birth_ymd"), ("name", "birth_date")),
    (("phone",), ("phone",)),
    (("id_number",), ("id_number",)),
    (("email",), ("email",)),
    (("birth_ymd", "postcode"), ("birth_date", "address")),
    (("given_pinyin", "family_pinyin", "postcode"), ("name", "address")),
    ((tail_key("phone").sql,), ("phone",)),
)

Progress = Callable[[str], None]


def _deterministic_rules(fields: list[str]) -> list[str | BlockingRuleCreator]:
    return [block_on(*cols) for cols, need in _DETERMINISTIC if all(f in fields for f in need)]


def _has_pairs(standard: pa.Table | None, cols: tuple[str, ...]) -> bool:
    """Whether two records share the block's columns: Splink's EM refuses a block with no
    pairs (no e-mail typed twice), and a failed session leaves the linker unusable.
    Expressions (a phone's tail) are assumed to pair."""
    if standard is None or not all(c in standard.column_names for c in cols):
        return True
    table = standard.select(list(cols)).drop_null()
    if table.num_rows < 2:
        return False
    counts = table.group_by(list(cols)).aggregate([([], "count_all")])
    return bool(pc.max(counts.column("count_all")).as_py() >= 2)


def _em_blocks(
    fields: list[str], standard: pa.Table | None = None
) -> list[tuple[BlockingRuleCreator, tuple[str, ...]]]:
    """EM blocks until each field is trained in a block that does not block on it."""
    chosen, untrained = [], set(fields)
    for cols, blocked in _EM_BLOCKS:
        if not untrained:
            break
        if not all(f in fields for f in blocked) or not untrained - set(blocked):
            continue
        if not _has_pairs(standard, cols):
            continue
        chosen.append((block_on(*cols), blocked))
        untrained -= set(fields) - set(blocked)
    return chosen


def train(
    records: pa.Table,
    *,
    engine: str = "duckdb",
    spark: Any = None,
    progress: Progress | None = None,
) -> MatchModel:
    """Train a model on `records` (RAW_COLUMNS) without labels; the thresholds are the
    defaults (AUTO_THRESHOLD, REVIEW_THRESHOLD). `progress` is told each step's name."""
    step = progress or (lambda _: None)
    engines.check_engine(engine)
    step("standardise")
    standard = standardise(records)
    fields = present_fields(standard)
    if not fields or standard.num_rows < 2:
        raise ValidationError("records", "need at least two records carrying a compared field")
    rules = rules_for(fields)
    api = engines.db_api(engine, spark)
    frame = engines.register(api, standard)
    try:
        linker = Linker(frame, settings_creator(fields, rules), log_level=None)
        settings = _fit(linker, fields, standard, step)
    finally:
        engines.release(api, frame)
    settings[SIYU_KEY] = {"fields": fields, "rules": [r.name for r in rules]}
    # stored in DuckDB's SQL whatever the engine: real-time scoring always runs on DuckDB
    stored = trained_settings(settings, "duckdb") if engine != "duckdb" else settings
    step("done")
    return MatchModel(
        settings_json=json.dumps(stored, sort_keys=True),
        engine=engine,
        records=standard.num_rows,
    )


@contextmanager
def _zero_estimates_clamped() -> Iterator[None]:
    """Splink 5's EM can estimate an m of exactly 0.0 (a level no likely match falls in:
    in a small set, e-mails that never disagree within a birth-date block), and its own
    setter then refuses the value (ValueError: below M_U_CLAMP_MIN), ending the training.
    Splink clamps m and u to that same minimum when it turns them into weights, so siyu
    clamps the estimate where EM hands it over: the weight is the one Splink would
    compute. Only siyu's own EM sessions are affected; the module is restored after."""
    original = splink_em.m_u_records_to_lookup_dict

    def clamped(records: list[dict[str, Any]]) -> dict[str, dict[int, Any]]:
        lookup = original(records)
        for levels in lookup.values():
            for estimates in levels.values():
                for key, value in estimates.items():
                    if isinstance(value, int | float) and value < M_U_CLAMP_MIN:
                        estimates[key] = M_U_CLAMP_MIN
        return lookup

    splink_em.m_u_records_to_lookup_dict = clamped  # type: ignore[assignment]
    try:
        yield
    finally:
        splink_em.m_u_records_to_lookup_dict = original


def _fit(linker: Linker, fields: list[str], standard: pa.Table, step: Progress) -> dict[str, Any]:
    """Lambda, u and m on `linker`'s records; the trained settings."""
    engines.quiet_splink()
    step("lambda")
    deterministic = _deterministic_rules(fields)
    if deterministic:
        linker.training.estimate_probability_two_random_records_match(
            deterministic, recall=DETERMINISTIC_RECALL
        )
    step("u")
    u_pairs = min(max(U_PAIRS_PER_RECORD * standard.num_rows, U_MIN_PAIRS), U_MAX_PAIRS)
    linker.training.estimate_u_using_random_sampling(
        max_pairs=u_pairs, seed=SEED, min_count_per_level=None, num_chunks=U_CHUNKS
    )
    for rule, blocked in _em_blocks(fields, standard):
        step(f"em: {', '.join(blocked)}")
        with _zero_estimates_clamped():
            linker.training.estimate_parameters_using_expectation_maximisation(
                rule, max_pairs=EM_MAX_PAIRS
            )
    settings = linker.misc.save_model_to_json()
    settings.pop("linker_uid", None)
    for comparison in settings["comparisons"]:
        for level in comparison["comparison_levels"]:
            if "u_probability" in level and "m_probability" not in level:
                level["m_probability"] = UNOBSERVED_M
    return settings
