"""Merging two members and undoing it.

A merge moves every identity of the younger member to the older one (whose id therefore
stays stable for every channel that already knows it) and records which identities
moved, so `unmerge` can move exactly those back. Balances and history hang off
identities and member ids, so nothing is lost either way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, insert, text

from siyu.errors import NotFoundError
from siyu.identity.errors import MergeError
from siyu.identity.models import merges
from siyu.store.dialect import dialect_of
from siyu.store.times import stored_now


@dataclass(frozen=True)
class UnmergeResult:
    merge_id: int
    restored_member_id: int
    identities_moved_back: int
    links_blocked: int


now_utc = stored_now  # kept: identity's modules import it from here


def merge_members(
    conn: Connection,
    group_id: str,
    member_a: int,
    member_b: int,
    reason: str,
    links: list[int],
    mode: str = "incremental",
) -> tuple[int, int]:
    """Merge two active members; returns (merge_id, survivor_id). Caller holds the
    transaction. Rows are locked in member_id order so two concurrent merges of
    overlapping pairs cannot deadlock."""
    rows = conn.execute(
        text(
            "SELECT member_id, registered_at, status FROM members "
            "WHERE group_id = :g AND member_id IN (:a, :b) "
            + dialect_of(conn).lock_rows_in_order("member_id")
        ),
        {"g": group_id, "a": member_a, "b": member_b},
    ).all()
    if len(rows) != 2 or any(r.status != "active" for r in rows):
        raise MergeError(f"members {member_a} and {member_b} must both be active in {group_id}")
    survivor, merged = sorted(rows, key=lambda r: (r.registered_at, r.member_id))
    moved = (
        conn.execute(
            text("SELECT identity_id FROM identities WHERE member_id = :m ORDER BY identity_id"),
            {"m": merged.member_id},
        )
        .scalars()
        .all()
    )
    now = now_utc()
    conn.execute(
        text("UPDATE identities SET member_id = :s WHERE member_id = :m"),
        {"s": survivor.member_id, "m": merged.member_id},
    )
    conn.execute(
        text(
            "UPDATE members SET status = 'merged', merged_into = :s, updated_at = :now "
            "WHERE member_id = :m"
        ),
        {"s": survivor.member_id, "m": merged.member_id, "now": now},
    )
    for table in ("orders", "events"):
        conn.execute(
            text(f"UPDATE {table} SET member_id = :s WHERE group_id = :g AND member_id = :m"),
            {"s": survivor.member_id, "m": merged.member_id, "g": group_id},
        )
    merge_id = conn.execute(
        insert(merges)
        .values(
            group_id=group_id,
            survivor_id=survivor.member_id,
            merged_id=merged.member_id,
            mode=mode,
            reason=reason,
            evidence=json.dumps({"identities": list(moved), "links": links}),
            created_at=now,
        )
        .returning(merges.c.merge_id)
    ).scalar_one()
    return int(merge_id), int(survivor.member_id)


def unmerge(engine: Engine, group_id: str, merge_id: int, reason: str) -> UnmergeResult:
    """Undo a merge: the merged member is active again with the identities it brought,
    and the links that bridged the two are blocked so no later resolution re-merges
    them (an operator has said they are different people)."""
    with engine.begin() as conn:
        row = conn.execute(
            text(
                "SELECT merge_id, survivor_id, merged_id, evidence, undone_at FROM merges "
                "WHERE group_id = :g AND merge_id = :id"
            ),
            {"g": group_id, "id": merge_id},
        ).first()
        if row is None:
            raise NotFoundError(f"merge_id: no merge {merge_id} in brand group {group_id}")
        if row.undone_at is not None:
            raise MergeError(f"merge_id: merge {merge_id} was already undone at {row.undone_at}")
        ids = [int(i) for i in json.loads(row.evidence)["identities"]]
        now = now_utc()
        blocked = 0
        if ids:
            staged_ids = ",".join(str(i) for i in ids)  # integers from our own JSON
            blocked = conn.execute(
                text(f"""
                UPDATE identity_links SET blocked = (1 = 1)
                WHERE group_id = :g AND NOT blocked AND (
                  (identity_a IN ({staged_ids}) AND identity_b NOT IN ({staged_ids}))
                  OR (identity_b IN ({staged_ids}) AND identity_a NOT IN ({staged_ids})))
                  AND (SELECT member_id FROM identities WHERE identity_id = identity_a)
                    = (SELECT member_id FROM identities WHERE identity_id = identity_b)"""),
                {"g": group_id},
            ).rowcount
            conn.execute(
                text(f"UPDATE identities SET member_id = :m WHERE identity_id IN ({staged_ids})"),
                {"m": row.merged_id},
            )
            for table, column in (("orders", "buyer_identity_id"), ("events", "identity_id")):
                conn.execute(
                    text(
                        f"UPDATE {table} SET member_id = :m WHERE group_id = :g "
                        f"AND {column} IN ({staged_ids})"
                    ),
                    {"m": row.merged_id, "g": group_id},
                )
        conn.execute(
            text(
                "UPDATE members SET status = 'active', merged_into = NULL, updated_at = :now "
                "WHERE member_id = :m"
            ),
            {"m": row.merged_id, "now": now},
        )
        conn.execute(
            text("UPDATE merges SET undone_at = :now, undo_reason = :r WHERE merge_id = :id"),
            {"now": now, "r": reason[:200], "id": merge_id},
        )
        # A merge a reviewer accepted or a match made: its pair is blocked like a rejection.
        conn.execute(
            text(
                "UPDATE match_reviews SET status = 'undone' WHERE group_id = :g AND merge_id = :id"
            ),
            {"g": group_id, "id": merge_id},
        )
    return UnmergeResult(merge_id, int(row.merged_id), len(ids), int(blocked))
