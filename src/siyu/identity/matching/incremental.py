"""Incremental probabilistic matching: one member record against the candidates its
blocking keys find, in one call, with the newest trained model.

Splink cannot add records to existing clusters (splink#1112), so this is siyu's own
step around Splink's real-time scoring: find candidates through the stored blocking keys
(keys.py), score the record against them with the trained model, and act by the same
policy as the batch pass: merge the best candidate at or above the auto threshold
(unless a rejection or a strong-identifier conflict forbids it), queue the pairs between
the thresholds for review, and store the record's own keys for the records that follow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection, Engine, text

from siyu.config import DEFAULT_STRONG_TYPES
from siyu.errors import NotFoundError
from siyu.identity.follow import follow
from siyu.identity.matching.blocking import blocking_keys
from siyu.identity.matching.keys import add_match_keys, candidate_members
from siyu.identity.matching.merge import merge_matched
from siyu.identity.matching.model import MatchModel
from siyu.identity.matching.realtime import score_against
from siyu.identity.matching.records import load_records
from siyu.identity.matching.review import UNDONE_MERGES
from siyu.identity.merge import strong_conflict
from siyu.privacy import Vault
from siyu.store.dialect import dialect_of
from siyu.store.times import stored_now


@dataclass
class MatchResult:
    member_id: int
    model_id: int | None = None  # None: no model trained yet (run the batch pass first)
    candidates: int = 0
    merged_into: int | None = None
    merge_id: int | None = None
    queued: list[int] = field(default_factory=list)  # review ids
    refused: list[int] = field(default_factory=list)  # candidates a conflict or rejection ruled out


@lru_cache(maxsize=8)
def _model(model_id: int, settings_json: str, auto: float, review: float) -> MatchModel:
    """Models are immutable rows: parse each once per process."""
    return MatchModel(
        settings_json=settings_json, engine="duckdb", records=0,
        auto_threshold=auto, review_threshold=review,
    )  # fmt: skip


def latest_model(conn: Connection, group_id: str) -> tuple[int, MatchModel] | None:
    row = conn.execute(
        text(
            "SELECT model_id, settings_json, auto_threshold, review_threshold FROM match_models "
            "WHERE group_id = :g ORDER BY model_id DESC LIMIT 1"
        ),
        {"g": group_id},
    ).first()
    if row is None:
        return None
    return int(row[0]), _model(int(row[0]), row[1], float(row[2]), float(row[3]))


def match_member(
    engine: Engine,
    vault: Vault,
    group_id: str,
    member_id: int,
    strong_types: tuple[str, ...] = DEFAULT_STRONG_TYPES,
) -> MatchResult:
    """Score one active member against its candidates and act on the result."""
    result = MatchResult(member_id)
    with engine.begin() as conn:
        dialect_of(conn).advisory_lock(conn, "siyu.oneid", group_id, shared=True)
        found = latest_model(conn, group_id)
        record = load_records(conn, vault, group_id, [member_id])
        if record.num_rows == 0:
            raise NotFoundError(f"member_id: no active member {member_id} in {group_id}")
        keys = blocking_keys(record)
        if found is None:
            add_match_keys(conn, vault, group_id, keys)
            return result
        result.model_id, model = found
        candidates = candidate_members(conn, vault, group_id, keys, exclude=member_id)
        result.candidates = len(candidates)
        if candidates:
            scored = score_against(model, record, load_records(conn, vault, group_id, candidates))
            _act(conn, group_id, member_id, model, result, scored, strong_types)
        survivor = result.merged_into or member_id
        add_match_keys(conn, vault, group_id, _rekey(keys, survivor))
    if result.merge_id is not None:  # its own merge only: the group's are settled already
        follow(engine, group_id, [result.merge_id])
    return result


def _rekey(keys: pa.Table, member_id: int) -> pa.Table:
    return keys.set_column(
        keys.schema.get_field_index("record_id"),
        "record_id",
        pa.array([member_id] * keys.num_rows, pa.int64()),
    )


def _act(
    conn: Connection,
    group_id: str,
    member_id: int,
    model: MatchModel,
    result: MatchResult,
    scored: pa.Table,
    strong_types: tuple[str, ...],
) -> None:
    """Merge the best candidate at or above the auto threshold, queue the candidates
    between the thresholds; rejections and strong conflicts rule a candidate out."""
    rows = sorted(scored.to_pylist(), key=lambda r: -r["match_probability"])
    blocked = _decided(conn, group_id, member_id)
    for row in rows:
        other = int(row["id_r"] if int(row["id_l"]) == member_id else row["id_l"])
        pair = (min(member_id, other), max(member_id, other))
        if pair in blocked:
            result.refused.append(other)
            continue
        probability = float(row["match_probability"])
        if probability >= model.auto_threshold and result.merged_into is None:
            if strong_conflict(conn, member_id, other) is not None:
                result.refused.append(other)
                continue
            review_id = _review(conn, group_id, pair, row)
            done = merge_matched(
                conn, group_id, pair[0], pair[1], "probabilistic", review_id=review_id,
                decided_by="oneid.match", strong_types=strong_types,
            )  # fmt: skip
            result.merged_into, result.merge_id = done.survivor_id, done.merge_id
        elif probability >= model.review_threshold:
            result.queued.append(_review(conn, group_id, pair, row))


def _decided(conn: Connection, group_id: str, member_id: int) -> set[tuple[int, int]]:
    """Pairs with this member a reviewer rejected or whose merge (matched or by hand) was
    undone."""
    rows = conn.execute(
        text(
            "SELECT member_a, member_b FROM match_reviews WHERE group_id = :g "
            "AND status IN ('rejected', 'undone') AND (member_a = :m OR member_b = :m) "
            f"UNION {UNDONE_MERGES} AND (survivor_id = :m OR merged_id = :m)"
        ),
        {"g": group_id, "m": member_id},
    )
    return {(int(a), int(b)) for a, b in rows}


def _review(conn: Connection, group_id: str, pair: tuple[int, int], row: dict[str, Any]) -> int:
    """Insert or refresh the pair's pending review row; returns its id."""
    weights = row["field_weights"]
    params = {
        "g": group_id, "a": pair[0], "b": pair[1], "w": float(row["match_weight"]),
        "p": float(row["match_probability"]), "f": weights if isinstance(weights, str)
        else json.dumps(weights), "s": "pending", "at": stored_now(),
    }  # fmt: skip
    conn.execute(
        text("""
        INSERT INTO match_reviews AS cur (group_id, member_a, member_b, match_weight,
            match_probability, field_weights, status, detected_at)
        VALUES (:g, :a, :b, :w, :p, :f, :s, :at)
        ON CONFLICT (group_id, member_a, member_b) DO UPDATE SET
            match_weight = excluded.match_weight,
            match_probability = excluded.match_probability,
            field_weights = excluded.field_weights, status = excluded.status
        WHERE cur.status = 'pending'"""),
        params,
    )
    return int(
        conn.execute(
            text(
                "SELECT review_id FROM match_reviews WHERE group_id = :g AND member_a = :a "
                "AND member_b = :b"
            ),
            params,
        ).scalar_one()
    )
