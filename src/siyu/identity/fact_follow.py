"""Facts about a person follow OneID: run after every merge and unmerge, with balances,
tags and coupons.

QR scans (as the scanner and as the one who shared the code) and receipts are facts, not
holdings: a merge moves the absorbed member's rows to the survivor, so a scene's acquired
members, a star member's count and a member's receipts are the same person's after the
merge. There is nothing to give back: an unmerge leaves them with the survivor (kept
simple on purpose; after a merge no one can tell which of the two scanned or uploaded, and
the reports stay traceable to a live member). A member acquired by two scenes before the
merge is credited to its earliest first-touch scan by the reports.

Each statement is one UPDATE of members still merged into someone, so running it again
changes nothing; a chain (A into B, B into C) moves one link per round. The SQL names the
tables (scenes.models, receipts.models) rather than importing them: both read identity.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, text

MAX_ROUNDS = 32
# table -> the columns that name a member
FACTS = {
    "qr_scans": ("member_id", "referrer_member_id"),
    "receipts": ("member_id",),
}

_MOVE = """UPDATE {table} SET {column} = (
             SELECT m.survivor_id FROM merges m WHERE m.group_id = {table}.group_id
               AND m.merged_id = {table}.{column} AND m.undone_at IS NULL {only})
           WHERE group_id = :g AND {column} IN (
             SELECT m.merged_id FROM merges m
             WHERE m.group_id = :g AND m.undone_at IS NULL {only})"""


def follow_facts(engine: Engine, group_id: str, merge_ids: Sequence[int] | None = None) -> int:
    """Move scans and receipts along every merge (or along `merge_ids` only); returns the
    member references changed (a scan whose scanner and referrer both moved counts twice)."""
    only = (
        ""
        if merge_ids is None
        else f"AND m.merge_id IN ({','.join(map(str, map(int, merge_ids))) or 'NULL'})"
    )
    moved = 0
    with engine.begin() as conn:
        for _ in range(MAX_ROUNDS):
            taken = sum(
                conn.execute(
                    text(_MOVE.format(table=table, column=column, only=only)), {"g": group_id}
                ).rowcount
                for table, columns in FACTS.items()
                for column in columns
            )
            if not taken:
                break
            moved += taken
    return moved
