"""Merging two members and undoing it.

A merge moves every identity of the younger member to the older one (whose id therefore
stays stable for every channel that already knows it) and records which identities
moved, so `unmerge` can move exactly those back. Balances and history hang off
identities and member ids, so nothing is lost either way.

A merge that rests on no shared identifier (a person at HQ, a probabilistic match) is
bridged by an `evidence` link (`merge_as_one_person`): batch OneID rebuilds members from
identity links alone, and would otherwise split the pair again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
from sqlalchemy import Connection, Engine, bindparam, insert, select, text, update

from siyu.errors import NotFoundError
from siyu.identity.errors import MergeError, StrongConflict
from siyu.identity.models import identity_links, merges
from siyu.identity.policy import ClassMap, Held, clash
from siyu.store.bulk import stage, unstage
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


def merge_as_one_person(
    conn: Connection,
    group_id: str,
    member_a: int,
    member_b: int,
    reason: str,
    mode: str,
    *,
    channel: str,
    strong_types: tuple[str, ...],
) -> tuple[int, int]:
    """Merge two active members that share no identifier but are one person (a hand
    merge, a probabilistic match): `merge_members`, bridged by an evidence link on
    `channel` between a representative identity of each, recorded as the merge's link.
    Batch OneID keeps the pair together through that link, subject to the OneID policy
    (evidence yields to no unionid nor verified phone; callers refuse those first with
    `strong_conflict`), and `unmerge` blocks it. Returns (merge_id, survivor_id); the
    caller holds the transaction."""
    link_id = _evidence_link(conn, group_id, member_a, member_b, channel, strong_types)
    return merge_members(
        conn, group_id, member_a, member_b, reason[:200], [] if link_id is None else [link_id], mode
    )


def strong_conflict(conn: Connection, member_a: int, member_b: int) -> StrongConflict | None:
    """Why the OneID policy refuses to make one member of these two, or None. Cards are
    left out: a second card of one brand is the duplicate registration evidence may join
    (policy.py), so batch OneID keeps such a merge and reports it."""
    found = clash(_held(conn, member_a), _held(conn, member_b), ClassMap())
    if found is None:
        return None
    x, y = found
    return StrongConflict(member_a, member_b, x.type, x.identity_id, y.identity_id)


def _held(conn: Connection, member_id: int) -> list[Held]:
    d = dialect_of(conn)
    rows = conn.execute(
        text(
            f"SELECT identity_id, type, brand_id, verified, {d.epoch_seconds('first_seen')}, "
            f"{d.epoch_seconds('last_seen')} FROM identities "
            "WHERE member_id = :m AND type <> 'card'"
        ),
        {"m": member_id},
    ).all()
    return [Held(int(r[0]), r[1], r[2], bool(r[3]), int(r[4]), int(r[5])) for r in rows]


# A member's representative: its oldest strong identifier (a weak one never bridges two
# members in batch OneID, so a link from it would not hold), else its oldest identifier.
_REPRESENTATIVE = text(
    """SELECT identity_id FROM identities WHERE group_id = :g AND member_id = :m
       ORDER BY CASE WHEN type IN :strong THEN 0 ELSE 1 END, first_seen, identity_id
       LIMIT 1"""
).bindparams(bindparam("strong", expanding=True))


def _evidence_link(
    conn: Connection,
    group_id: str,
    member_a: int,
    member_b: int,
    channel: str,
    strong_types: tuple[str, ...],
) -> int | None:
    """The evidence link between the two members' representatives (written, or found and
    unblocked: the newest decision about the pair is this one); None when a member holds
    no identity at all."""
    reps = [
        conn.execute(_REPRESENTATIVE, {"g": group_id, "m": m, "strong": list(strong_types)})
        .scalars()
        .first()
        for m in (member_a, member_b)
    ]
    if reps[0] is None or reps[1] is None:
        return None
    low, high = sorted((int(reps[0]), int(reps[1])))
    now = stored_now()
    conn.execute(
        dialect_of(conn)
        .insert_ignore(identity_links)
        .values(
            group_id=group_id,
            identity_a=low,
            identity_b=high,
            channel=channel,
            verified=False,
            first_seen=now,
            last_seen=now,
            blocked=False,
            kind="evidence",
        )
    )
    link = identity_links.c
    where = (link.group_id == group_id, link.identity_a == low, link.identity_b == high)
    link_id = conn.execute(select(link.link_id).where(*where)).scalar_one()
    conn.execute(update(identity_links).where(*where).values(blocked=False, last_seen=now))
    return int(link_id)


def merge_many(
    conn: Connection, group_id: str, pairs: Sequence[tuple[int, int, str]], mode: str
) -> list[tuple[int, int]]:
    """Merge each pair (member, member, reason) of active members set-wise: what
    `merge_members` does for one pair, for thousands in a few statements. Pairs sharing a
    member form one group, whose oldest member (by registration, then id) survives; each
    other member of the group is merged into it with one `merges` row naming the
    identities it brought, so `unmerge` undoes it like any other. Returns (merged,
    survivor) per merge. Caller holds the transaction."""
    if not pairs:
        return []
    parent: dict[int, int] = {}

    def root(m: int) -> int:
        parent.setdefault(m, m)
        while parent[m] != m:
            parent[m] = parent[parent[m]]
            m = parent[m]
        return m

    reason_of: dict[int, str] = {}
    for a, b, reason in pairs:
        parent[root(a)] = root(b)
        reason_of.setdefault(a, reason)
        reason_of.setdefault(b, reason)
    d = dialect_of(conn)
    ids = stage(conn, "merging_ids", pa.table({"member_id": pa.array(sorted(parent), pa.int64())}))
    rows = conn.execute(
        text(
            "SELECT member_id, registered_at, status FROM members WHERE group_id = :g "
            f"AND member_id IN (SELECT member_id FROM {ids.name}) "
            + d.lock_rows_in_order("member_id")
        ),
        {"g": group_id},
    ).all()
    unstage(conn, ids)
    if len(rows) != len(parent) or any(r.status != "active" for r in rows):
        raise MergeError(f"members to merge must all be active in {group_id}")
    survivor: dict[int, tuple[object, int]] = {}
    for r in rows:
        group = root(int(r.member_id))
        if group not in survivor or (r.registered_at, r.member_id) < survivor[group]:
            survivor[group] = (r.registered_at, int(r.member_id))
    plan = sorted((m, survivor[root(m)][1]) for m in parent if m != survivor[root(m)][1])
    staged = stage(
        conn,
        "merging",
        pa.table(
            {
                "merged_id": pa.array([m for m, _ in plan], pa.int64()),
                "survivor_id": pa.array([s for _, s in plan], pa.int64()),
            }
        ),
    )
    moved: dict[int, list[int]] = {m: [] for m, _ in plan}
    for identity_id, member_id in conn.execute(
        text(
            f"SELECT i.identity_id, i.member_id FROM {staged.name} s {d.staged_join} "
            "identities i ON i.member_id = s.merged_id ORDER BY i.member_id, i.identity_id"
        )
    ):
        moved[int(member_id)].append(int(identity_id))
    now = now_utc()
    conn.execute(
        text(
            f"UPDATE identities SET member_id = s.survivor_id FROM {staged.name} s "
            "WHERE identities.member_id = s.merged_id"
        )
    )
    conn.execute(
        text(
            "UPDATE members SET status = 'merged', merged_into = s.survivor_id, updated_at = :now "
            f"FROM {staged.name} s WHERE members.member_id = s.merged_id"
        ),
        {"now": now},
    )
    for table in ("orders", "events"):
        # Member ids are unique across groups, so no group term: SQLite would walk the
        # group's index with it, once per merged member.
        conn.execute(
            text(
                f"UPDATE {table} SET member_id = s.survivor_id FROM {staged.name} s "
                f"WHERE {table}.member_id = s.merged_id"
            )
        )
    unstage(conn, staged)
    conn.execute(
        insert(merges),
        [
            {
                "group_id": group_id,
                "survivor_id": s,
                "merged_id": m,
                "mode": mode,
                "reason": reason_of[m][:200],
                "evidence": json.dumps({"identities": moved[m], "links": []}),
                "created_at": now,
            }
            for m, s in plan
        ],
    )
    return plan


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
