"""Batch scoring: every blocked pair of a set of records, with the weight of each field.

A scored pair carries ids, the match weight and probability, and per field the label of
the level it fell in and that level's weight (log2 of its Bayes factor): enough for a
reviewer to see why, and no record value.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa
from splink import Linker

from siyu.identity.matching import engines
from siyu.identity.matching.columns import UNIQUE_ID
from siyu.identity.matching.model import MatchModel, for_splink, trained_settings
from siyu.identity.matching.standardise import standardise

PAIR_SCHEMA = pa.schema(
    [
        pa.field("id_l", pa.int64(), nullable=False),
        pa.field("id_r", pa.int64(), nullable=False),
        pa.field("match_weight", pa.float64()),
        pa.field("match_probability", pa.float64()),
        pa.field("field_weights", pa.string()),
    ]
)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def level_labels(settings: dict[str, Any]) -> dict[str, dict[int, str]]:
    """Per comparison, its comparison vector values (gamma) -> level labels. Splink
    numbers the null level -1 and the others from the most to the least similar, down
    to 0 for "else"."""
    labels: dict[str, dict[int, str]] = {}
    for comparison in settings["comparisons"]:
        levels = comparison["comparison_levels"]
        others = [lv for lv in levels if not lv.get("is_null_level")]
        by_gamma = {len(others) - 1 - i: lv["label_for_charts"] for i, lv in enumerate(others)}
        by_gamma[-1] = next(
            (lv["label_for_charts"] for lv in levels if lv.get("is_null_level")), "missing"
        )
        labels[comparison["output_column_name"]] = by_gamma
    return labels


def pairs_sql(settings: dict[str, Any], source: str) -> str:
    """SQL (DuckDB) turning Splink's predictions in `source` into PAIR_SCHEMA."""
    fields = []
    for name, by_gamma in level_labels(settings).items():
        cases = " ".join(f"WHEN {g} THEN {_quote(label)}" for g, label in by_gamma.items())
        fields.append(
            f"struct_pack(field := {_quote(name)}, level := CASE gamma_{name} {cases} END, "
            f"weight := round(coalesce(mw_{name}, 0), 3))"
        )
    return f"""
        SELECT least({UNIQUE_ID}_l, {UNIQUE_ID}_r)::BIGINT AS id_l,
               greatest({UNIQUE_ID}_l, {UNIQUE_ID}_r)::BIGINT AS id_r,
               match_weight::DOUBLE AS match_weight,
               match_probability::DOUBLE AS match_probability,
               to_json(list_value({", ".join(fields)}))::VARCHAR AS field_weights
        FROM {source}
        ORDER BY id_l, id_r
    """


def to_pairs(settings: dict[str, Any], predictions: pa.Table) -> pa.Table:
    con = duckdb.connect()
    try:
        con.register("predictions", predictions)
        return con.sql(pairs_sql(settings, "predictions")).to_arrow_table().cast(PAIR_SCHEMA)
    finally:
        con.close()


def predict(
    model: MatchModel,
    records: pa.Table,
    *,
    threshold: float | None = None,
    engine: str = "duckdb",
    spark: Any = None,
) -> pa.Table:
    """Score every pair of `records` that a blocking rule finds; keep those at or above
    `threshold` (a match probability; default the model's review threshold)."""
    engines.check_engine(engine)
    standard = standardise(records)
    settings = model.settings
    dialected = trained_settings(settings, engine) if engine != "duckdb" else settings
    cut = model.review_threshold if threshold is None else threshold
    api = engines.db_api(engine, spark)
    frame = engines.register(api, standard)
    try:
        linker = Linker(frame, for_splink(dialected), log_level=None)
        engines.quiet_splink()
        predictions = linker.inference.predict(
            threshold_match_probability=cut, warning_mode="never"
        )
        return to_pairs(settings, engines.to_arrow(predictions))
    finally:
        engines.release(api, frame)
