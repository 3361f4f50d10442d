"""The batch probabilistic pass: train on the group's member records, score candidate
pairs, and act on them by the OneID policy.

- at or above the auto threshold, the pair is recorded as an *evidence* link between the
  two members' oldest strong identities, and batch OneID (identity/resolve.py) merges
  them set-wise; its kernel refuses what strong identifiers forbid (two unionids, two
  verified phones in use at once), so a probability never beats a strong conflict. Each
  such merge is recorded (mode 'probabilistic') and undoable like every merge; undoing it
  blocks the link, and the review row becomes 'undone' so no later run proposes it again;
- between the review and auto thresholds, the pair waits in the review queue;
- pairs a reviewer rejected (or whose merge was undone) are skipped.

Runs nightly (`siyu identity match`); safe to repeat: pairs already decided stay decided.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Engine, insert, text

from siyu.identity import resolve as _resolve
from siyu.identity.follow import follow
from siyu.identity.matching.blocking import blocking_keys
from siyu.identity.matching.keys import write_match_keys
from siyu.identity.matching.model import MatchModel
from siyu.identity.matching.predict import predict
from siyu.identity.matching.records import load_records
from siyu.identity.matching.train import train
from siyu.identity.models import match_models
from siyu.privacy import Vault
from siyu.store.bulk import stage, unstage
from siyu.store.dialect import dialect_of
from siyu.store.times import stored_now

Step = Callable[[str], None]


@dataclass
class MatchReport:
    records: int = 0
    pairs_scored: int = 0
    auto_pairs: int = 0
    queued: int = 0
    skipped_decided: int = 0
    merges: int = 0
    refused: int = 0
    model_id: int = 0
    timings: dict[str, float] = field(default_factory=dict)


def run_matching(
    engine: Engine,
    vault: Vault,
    group_id: str,
    strong_types: tuple[str, ...],
    *,
    match_engine: str = "duckdb",
    spark: object | None = None,
    step: Step | None = None,
) -> MatchReport:
    report = MatchReport()
    clock = _Clock(report, step)
    with engine.connect() as conn:
        records = load_records(conn, vault, group_id)
    report.records = records.num_rows
    clock.lap("load")
    if records.num_rows < 2:
        return report
    model = train(records, engine=match_engine, spark=spark)
    clock.lap("train")
    pairs = predict(
        model, records, threshold=model.review_threshold, engine=match_engine, spark=spark
    )
    report.pairs_scored = pairs.num_rows
    clock.lap("score")
    before = _max_merge_id(engine)
    with engine.begin() as conn:
        dialect_of(conn).advisory_lock(conn, "siyu.oneid", group_id)
        # the members and identities may have been imported minutes ago: planned on the
        # statistics of an empty store, PostgreSQL looped over them per pair (30 s for
        # 4,000 pairs of 5,000 members)
        dialect_of(conn).refresh_statistics(conn, "members", "identities", "match_reviews")
        report.model_id = _save_model(conn, group_id, model, records.num_rows)
        auto = _record_pairs(conn, group_id, pairs, model, report.model_id, report)
        _link_evidence(conn, group_id, auto, strong_types)
        write_match_keys(conn, vault, group_id, blocking_keys(records))
    clock.lap("record")
    resolved = _resolve.resolve_all(engine, group_id, strong_types)
    report.refused = resolved.conflicts
    with engine.begin() as conn:
        report.merges = _label_merges(conn, group_id, before)
    follow(engine, group_id)
    clock.lap("merge")
    return report


class _Clock:
    def __init__(self, report: MatchReport, step: Step | None) -> None:
        self.report, self.step, self.t = report, step, time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.report.timings[name] = now - self.t
        self.t = now
        if self.step:
            self.step(name)


def _save_model(conn: Connection, group_id: str, model: MatchModel, n: int) -> int:
    return int(
        conn.execute(
            insert(match_models)
            .values(
                group_id=group_id,
                engine=model.engine,
                settings_json=model.settings_json,
                auto_threshold=model.auto_threshold,
                review_threshold=model.review_threshold,
                records=n,
                trained_at=stored_now(),
            )
            .returning(match_models.c.model_id)
        ).scalar_one()
    )


def _record_pairs(
    conn: Connection,
    group_id: str,
    pairs: pa.Table,
    model: MatchModel,
    model_id: int,
    report: MatchReport,
) -> list[tuple[int, int]]:
    """Upsert the scored pairs into match_reviews; returns the pairs to merge now.

    A pair already decided (accepted, rejected, merged, undone) keeps its decision: a
    rejection or an undone merge blocks the pair for every later run. A pending pair gets
    the new score, and is merged if it now clears the auto threshold."""
    if pairs.num_rows == 0:
        return []
    lo = pc.min_element_wise(pairs["id_l"], pairs["id_r"])
    hi = pc.max_element_wise(pairs["id_l"], pairs["id_r"])
    auto = pairs["match_probability"].to_numpy() >= model.auto_threshold
    now = stored_now()
    staged = stage(
        conn,
        "pairs",
        pa.table(
            {
                "member_a": lo,
                "member_b": hi,
                "weight": pairs["match_weight"],
                "probability": pairs["match_probability"],
                "fields": pairs["field_weights"],
                "status": pa.array(np.where(auto, "merged", "pending"), pa.string()),
                "at": pa.array([now] * pairs.num_rows, pa.timestamp("s")),
            }
        ),
    )
    # the staged pairs looped over first: SQLite would otherwise scan them once per
    # review row of the status it picked by index (measured 17 s for 10,000 pairs)
    join = f"""FROM {staged.name} s {dialect_of(conn).staged_join} match_reviews r
          ON r.group_id = :g AND r.member_a = s.member_a AND r.member_b = s.member_b"""
    report.skipped_decided = int(
        conn.execute(
            text(f"SELECT COUNT(*) {join} WHERE r.status <> 'pending'"), {"g": group_id}
        ).scalar_one()
    )
    conn.execute(
        text(f"""
        INSERT INTO match_reviews AS cur (group_id, member_a, member_b, match_weight,
            match_probability, field_weights, status, model_id, detected_at)
        SELECT :g, s.member_a, s.member_b, s.weight, s.probability, s.fields, s.status,
               :model, s.at
        FROM {staged.name} s WHERE 1 = 1
        ON CONFLICT (group_id, member_a, member_b) DO UPDATE SET
            match_weight = excluded.match_weight,
            match_probability = excluded.match_probability,
            field_weights = excluded.field_weights, status = excluded.status,
            model_id = excluded.model_id
        WHERE cur.status = 'pending'"""),
        {"g": group_id, "model": model_id},
    )
    # the reviews just written, and the staged pairs, seen by the planner (PostgreSQL
    # joined them as a nested loop over a one-row estimate: 10 s for 1,800 pairs)
    dialect_of(conn).refresh_statistics(conn, staged.name, "match_reviews")
    to_merge = [
        (int(a), int(b))
        for a, b in conn.execute(
            text(f"""SELECT r.member_a, r.member_b {join}
            WHERE r.status = 'merged' AND r.merge_id IS NULL AND s.status = 'merged'
            ORDER BY r.member_a, r.member_b"""),
            {"g": group_id},
        )
    ]
    unstage(conn, staged)
    report.auto_pairs = len(to_merge)
    report.queued = int(
        conn.execute(
            text("SELECT COUNT(*) FROM match_reviews WHERE group_id = :g AND status = 'pending'"),
            {"g": group_id},
        ).scalar_one()
    )
    return to_merge


def _link_evidence(
    conn: Connection, group_id: str, pairs: list[tuple[int, int]], strong_types: tuple[str, ...]
) -> int:
    """One evidence link per pair, between each member's oldest strong identity (the
    identity batch OneID will keep them together by). Returns the links written."""
    if not pairs:
        return 0
    staged = stage(
        conn,
        "evpairs",
        pa.table(
            {
                "member_a": pa.array([a for a, _ in pairs], pa.int64()),
                "member_b": pa.array([b for _, b in pairs], pa.int64()),
                "at": pa.array([stored_now()] * len(pairs), pa.timestamp("s")),
            }
        ),
    )
    strong = ", ".join(f"'{t}'" for t in strong_types if t.isidentifier())
    # each pair's two identities looked up by member (an index read per pair): joined as
    # a grouped subquery, SQLite re-ran the group-wide aggregate per pair (24 s for
    # 4,000 pairs of 5,000 members)
    rep = f"""(SELECT MIN(i.identity_id) FROM identities i WHERE i.member_id = s.member_{{side}}
               AND i.group_id = :g AND i.type IN ({strong}))"""
    written = conn.execute(
        text(f"""
        INSERT INTO identity_links (group_id, identity_a, identity_b, channel, verified,
            first_seen, last_seen, blocked, kind)
        SELECT :g, CASE WHEN p.ia < p.ib THEN p.ia ELSE p.ib END,
               CASE WHEN p.ia < p.ib THEN p.ib ELSE p.ia END,
               'oneid.match', 1 = 0, p.at, p.at, 1 = 0, 'evidence'
        FROM (SELECT {rep.format(side="a")} AS ia, {rep.format(side="b")} AS ib, s.at
              FROM {staged.name} s) p
        WHERE p.ia IS NOT NULL AND p.ib IS NOT NULL
        ON CONFLICT (group_id, identity_a, identity_b) DO NOTHING"""),
        {"g": group_id},
    ).rowcount
    unstage(conn, staged)
    return int(written)


def _max_merge_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT COALESCE(MAX(merge_id), 0) FROM merges")).scalar_one())


_MERGE_OF_PAIR = """(SELECT MIN(m.merge_id) FROM merges m
    WHERE m.group_id = :g AND m.merge_id > :before AND {which})"""
_EXACT = """((m.survivor_id = match_reviews.member_a AND m.merged_id = match_reviews.member_b)
    OR (m.survivor_id = match_reviews.member_b AND m.merged_id = match_reviews.member_a))"""
_ENDPOINT = "m.merged_id IN (match_reviews.member_a, match_reviews.member_b)"


def _label_merges(conn: Connection, group_id: str, before: int) -> int:
    """The merges batch OneID just made (the only links it had not seen were this run's
    evidence, written under the group lock) become mode 'probabilistic', and each
    auto-merged review row names its merge (the merge of its own pair, else the one that
    absorbed either member in a chain). A pair the policy
    refused (two unionids, two verified phones) is rejected by the policy: strong
    identifiers win over a probability, and the pair is not proposed again. Both members
    are read by primary key: with `member_id IN (a, b)` PostgreSQL scanned the group's
    active members per review row (20 s for 4,000 rows on a freshly imported store)."""
    params = {"g": group_id, "before": before}
    for which in (_EXACT, _ENDPOINT):
        conn.execute(
            text(f"""
            UPDATE match_reviews SET merge_id = {_MERGE_OF_PAIR.format(which=which)}
            WHERE group_id = :g AND status = 'merged' AND merge_id IS NULL"""),
            params,
        )
    conn.execute(
        text("""
        UPDATE match_reviews SET status = 'rejected', decided_by = 'oneid.policy',
            decided_at = :now
        WHERE group_id = :g AND status = 'merged' AND merge_id IS NULL
          AND EXISTS (SELECT 1 FROM members a WHERE a.member_id = match_reviews.member_a
                      AND a.group_id = :g AND a.status = 'active')
          AND EXISTS (SELECT 1 FROM members b WHERE b.member_id = match_reviews.member_b
                      AND b.group_id = :g AND b.status = 'active')"""),
        {"g": group_id, "now": stored_now()},
    )
    return int(
        conn.execute(
            text("""
            UPDATE merges SET mode = 'probabilistic', reason = :why
            WHERE group_id = :g AND merge_id > :before AND mode = 'batch'"""),
            {**params, "why": "probabilistic match above the auto threshold"},
        ).rowcount
    )
