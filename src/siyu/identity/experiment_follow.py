"""Experiment assignments follow OneID: run after every merge and unmerge, with balances,
tags, coupons and facts.

A person keeps one assignment per experiment, so the arms stay what the hash made them
and nobody is counted twice. After a merge the survivor keeps its own row if it had one;
else it gets a copy of the earliest-assigned absorbed member's row (variant, bucket,
stage, assignment and exposure times; `inherited_by` = the merge). Every absorbed
member's row is kept, marked `merged_into` the survivor and `merged_by` the merge, and
leaves the results (they read rows with `merged_into IS NULL`). An unmerge clears the
marks of the rows that merge absorbed and deletes the copies it made, so both members
are back in their own variants.

Each statement changes only rows not yet moved, so running it again changes nothing; a
chain (A into B, B into C) moves one link per round. Not handled: undoing the first link
of a chain whose second still stands (A into B undone while B into C holds) gives A its
row back and leaves C the copy it inherited through B, so A's assignment is read twice
until the second merge is undone too.

The SQL names the table (experiments.models) rather than importing it: experiments reads
identity, so identity may not import experiments.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, text

MAX_ROUNDS = 32

_INHERIT = """
INSERT INTO experiment_members (group_id, experiment_id, member_id, variant, bucket, stage,
                                assigned_at, exposed_at, inherited_by)
SELECT em.group_id, em.experiment_id, m.survivor_id, em.variant, em.bucket, em.stage,
       em.assigned_at, em.exposed_at, m.merge_id
FROM experiment_members em
JOIN merges m ON m.group_id = em.group_id AND m.merged_id = em.member_id
  AND m.undone_at IS NULL {only}
WHERE em.group_id = :g AND em.merged_into IS NULL
  AND NOT EXISTS (SELECT 1 FROM experiment_members own WHERE own.group_id = em.group_id
                  AND own.experiment_id = em.experiment_id AND own.member_id = m.survivor_id)
  AND NOT EXISTS (
    SELECT 1 FROM experiment_members earlier
    JOIN merges m2 ON m2.group_id = earlier.group_id AND m2.merged_id = earlier.member_id
      AND m2.undone_at IS NULL AND m2.survivor_id = m.survivor_id {only2}
    WHERE earlier.group_id = em.group_id AND earlier.experiment_id = em.experiment_id
      AND earlier.merged_into IS NULL
      AND (earlier.assigned_at < em.assigned_at
           OR (earlier.assigned_at = em.assigned_at AND earlier.member_id < em.member_id)))
"""
_ABSORB = """
UPDATE experiment_members SET
  merged_into = (SELECT m.survivor_id FROM merges m WHERE m.group_id = experiment_members.group_id
                 AND m.merged_id = experiment_members.member_id AND m.undone_at IS NULL {only}),
  merged_by = (SELECT m.merge_id FROM merges m WHERE m.group_id = experiment_members.group_id
               AND m.merged_id = experiment_members.member_id AND m.undone_at IS NULL {only})
WHERE group_id = :g AND merged_into IS NULL AND member_id IN (
  SELECT m.merged_id FROM merges m WHERE m.group_id = :g AND m.undone_at IS NULL {only})
"""
_UNDONE = "SELECT m.merge_id FROM merges m WHERE m.group_id = :g AND m.undone_at IS NOT NULL {only}"
_DROP_COPIES = f"""DELETE FROM experiment_members WHERE group_id = :g AND merged_into IS NULL
                  AND inherited_by IN ({_UNDONE})"""
_RESTORE = f"""UPDATE experiment_members SET merged_into = NULL, merged_by = NULL
               WHERE group_id = :g AND merged_into IS NOT NULL AND merged_by IN ({_UNDONE})"""


def follow_experiments(
    engine: Engine, group_id: str, merge_ids: Sequence[int] | None = None
) -> tuple[int, int]:
    """Keep one assignment per person along every merge and give each member its own back
    along every unmerge (or along `merge_ids` only); returns (rows absorbed, rows
    restored)."""
    ids = None if merge_ids is None else ",".join(map(str, map(int, merge_ids))) or "NULL"
    only = "" if ids is None else f"AND m.merge_id IN ({ids})"
    only2 = "" if ids is None else f"AND m2.merge_id IN ({ids})"
    p = {"g": group_id}
    absorbed = restored = 0
    with engine.begin() as conn:
        # unmerges first: a member merged, unmerged and merged again ends merged
        conn.execute(text(_DROP_COPIES.format(only=only)), p)
        restored = conn.execute(text(_RESTORE.format(only=only)), p).rowcount
        for _ in range(MAX_ROUNDS):
            conn.execute(text(_INHERIT.format(only=only, only2=only2)), p)
            taken = conn.execute(text(_ABSORB.format(only=only)), p).rowcount
            if not taken:
                break
            absorbed += taken
    return absorbed, restored
