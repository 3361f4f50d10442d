"""QR scans follow OneID: run after every merge and unmerge, with balances, tags and
coupons.

A merge moves the absorbed member's scans to the survivor, both as the scanner
(`member_id`) and as the one who shared the code (`referrer_member_id`), so a scene's
acquired members and a star member's count are the same person's after the merge. A
scan is a fact about a person, not a holding, so there is nothing to give back: an
unmerge leaves the scans with the survivor (kept simple on purpose; after a merge no one
can tell which of the two scanned, and the reports stay traceable to a live member). A
member acquired by two scenes before the merge is credited to its earliest first-touch
scan by the reports.

Each statement is one UPDATE of members still merged into someone, so running it again
changes nothing; a chain (A into B, B into C) moves one link per round. The SQL names
the table (scenes.models) rather than importing it: scenes reads identity.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, text

MAX_ROUNDS = 32

_MOVE = """UPDATE qr_scans SET {column} = (
             SELECT m.survivor_id FROM merges m WHERE m.group_id = qr_scans.group_id
               AND m.merged_id = qr_scans.{column} AND m.undone_at IS NULL {only})
           WHERE group_id = :g AND {column} IN (
             SELECT m.merged_id FROM merges m
             WHERE m.group_id = :g AND m.undone_at IS NULL {only})"""


def follow_scans(engine: Engine, group_id: str, merge_ids: Sequence[int] | None = None) -> int:
    """Move scans along every merge (or along `merge_ids` only); returns the scan rows
    changed (a scan whose scanner and referrer both moved counts twice)."""
    only = (
        ""
        if merge_ids is None
        else f"AND m.merge_id IN ({','.join(map(str, map(int, merge_ids))) or 'NULL'})"
    )
    moved = 0
    with engine.begin() as conn:
        for _ in range(MAX_ROUNDS):
            taken = sum(
                conn.execute(text(_MOVE.format(column=c, only=only)), {"g": group_id}).rowcount
                for c in ("member_id", "referrer_member_id")
            )
            if not taken:
                break
            moved += taken
    return moved
