"""Replacing a whole member set at once, with history: a tag's holders, a segment's members.

Both keep who is in now (`member_tags`, `segment_members`) and every enter and leave
(`member_tag_history`, `segment_member_history`); a tag's holders also carry a value, so
for tags a value change is a third kind of delta. One writer for both, so the two cannot
drift: the members go into a staging table (COPY on PostgreSQL, `store.bulk.stage`) and
a few set-based statements write the leaves, the value changes and the enters, so a set
of ten million members costs no Python per member.

The caller holds the transaction and has locked the owning row (the tag, the segment), so
two writers of one set take turns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
from sqlalchemy import Connection, text

from siyu.store.bulk import stage, unstage

# Two nullable values differ (portable `IS DISTINCT FROM`).
DIFFERS = "(COALESCE({a}, '') <> COALESCE({b}, '') OR ({a} IS NULL) <> ({b} IS NULL))"


@dataclass(frozen=True)
class MemberSet:
    """The two tables of one kind of set. `current` has (group_id, <key>, member_id,
    [value,] set_by, set_at); `history` has (group_id, <key>, member_id, change, [value,]
    by, at)."""

    current: str
    history: str
    key: str
    valued: bool


@dataclass(frozen=True)
class Applied:
    """What a replacement changed: members that entered, left, or changed value."""

    entered: int
    left: int
    changed: int


TAG_HOLDERS = MemberSet("member_tags", "member_tag_history", "tag_id", valued=True)
SEGMENT_MEMBERS = MemberSet("segment_members", "segment_member_history", "segment_id", valued=False)


def unique_members(
    member_ids: pa.Array | pa.ChunkedArray | np.ndarray, values: pa.Array | None = None
) -> tuple[np.ndarray, pa.Array | None]:
    """Sorted distinct member ids, and each one's value (a repeated member keeps the value
    of its first occurrence)."""
    ids = np.asarray(
        member_ids.to_numpy() if isinstance(member_ids, pa.ChunkedArray) else member_ids,
        dtype=np.int64,
    )
    ids, first = np.unique(ids, return_index=True)
    if values is None:
        return ids, None
    return ids, values.take(pa.array(first, pa.int64())).cast(pa.string())


def replace_members(
    conn: Connection,
    spec: MemberSet,
    group_id: str,
    key: int,
    ids: np.ndarray,
    values: pa.Array | None,
    by: str,
    at: datetime,
) -> Applied:
    """Make `ids` (distinct, see `unique_members`) the set's members: those not in it
    leave, new ones enter, and (valued sets) those whose value differs change value."""
    columns: dict[str, pa.Array] = {"member_id": pa.array(ids, pa.int64())}
    if spec.valued:
        columns["value"] = values if values is not None else pa.nulls(len(ids), pa.string())
    staged = stage(conn, spec.current, pa.table(columns))
    # :gv and :kv are :g and :k as values, apart: PostgreSQL types each parameter once
    p = {"g": group_id, "k": key, "gv": group_id, "kv": key, "by": by, "at": at}
    s, cur, hist, k = staged.name, spec.current, spec.history, spec.key
    # Without an index and statistics PostgreSQL plans the anti-joins below as nested
    # loops over the staging table (a million members: minutes instead of seconds).
    conn.execute(text(f"CREATE UNIQUE INDEX ix_{s} ON {s} (member_id)"))
    conn.execute(text(f"ANALYZE {s}"))
    same_member = "s.member_id = mt.member_id"
    in_set = f"mt.group_id = :g AND mt.{k} = :k"
    v = ", value" if spec.valued else ""
    left = conn.execute(
        text(f"""INSERT INTO {hist} (group_id, {k}, member_id, change{v}, by, at)
                 SELECT mt.group_id, mt.{k}, mt.member_id, 'leave'{", NULL" if v else ""},
                        :by, :at
                 FROM {cur} mt WHERE {in_set}
                   AND NOT EXISTS (SELECT 1 FROM {s} s WHERE {same_member})"""),
        p,
    ).rowcount
    if left:
        conn.execute(
            text(f"""DELETE FROM {cur} WHERE group_id = :g AND {k} = :k
                     AND NOT EXISTS (SELECT 1 FROM {s} s WHERE s.member_id = {cur}.member_id)"""),
            p,
        )
    changed = 0
    if spec.valued:
        changed = conn.execute(
            text(f"""INSERT INTO {hist} (group_id, {k}, member_id, change, value, by, at)
                     SELECT mt.group_id, mt.{k}, mt.member_id, 'value', s.value, :by, :at
                     FROM {cur} mt JOIN {s} s ON {same_member}
                     WHERE {in_set} AND {DIFFERS.format(a="mt.value", b="s.value")}"""),
            p,
        ).rowcount
        if changed:
            conn.execute(
                text(f"""UPDATE {cur} SET set_by = :by, set_at = :at,
                           value = (SELECT s.value FROM {s} s
                                    WHERE s.member_id = {cur}.member_id)
                         WHERE group_id = :g AND {k} = :k AND EXISTS (
                           SELECT 1 FROM {s} s WHERE s.member_id = {cur}.member_id
                             AND {DIFFERS.format(a=f"{cur}.value", b="s.value")})"""),
                p,
            )
    new = f"NOT EXISTS (SELECT 1 FROM {cur} mt WHERE {in_set} AND {same_member})"
    sv = ", s.value" if spec.valued else ""
    entered = conn.execute(
        text(f"""INSERT INTO {hist} (group_id, {k}, member_id, change{v}, by, at)
                 SELECT :gv, :kv, s.member_id, 'enter'{sv}, :by, :at FROM {s} s
                 WHERE {new}"""),
        p,
    ).rowcount
    if entered:
        conn.execute(
            text(f"""INSERT INTO {cur} (group_id, {k}, member_id{v}, set_by, set_at)
                     SELECT :gv, :kv, s.member_id{sv}, :by, :at FROM {s} s WHERE {new}"""),
            p,
        )
    unstage(conn, staged)  # on failure the rollback drops it with the rest
    return Applied(entered=int(entered), left=int(left), changed=int(changed))


def update_members_within(
    conn: Connection,
    spec: MemberSet,
    group_id: str,
    key: int,
    considered: np.ndarray,
    selected: np.ndarray,
    by: str,
    at: datetime,
) -> Applied:
    """Within `considered` members only (distinct ids), make the set hold exactly those in
    `selected`: the others of `considered` leave, the selected enter; members outside
    `considered` are untouched. A real-time pass uses it for the members whose facts just
    changed. Sets without values only."""
    assert not spec.valued, "a value change needs replace_members"
    inside = np.isin(considered, selected)
    staged = stage(
        conn,
        spec.current,
        pa.table(
            {
                "member_id": pa.array(considered, pa.int64()),
                "inside": pa.array(inside.astype(np.int64), pa.int64()),
            }
        ),
    )
    p = {"g": group_id, "k": key, "gv": group_id, "kv": key, "by": by, "at": at}
    s, cur, hist, k = staged.name, spec.current, spec.history, spec.key
    conn.execute(text(f"CREATE UNIQUE INDEX ix_{s} ON {s} (member_id)"))
    in_set = f"mt.group_id = :g AND mt.{k} = :k"
    left = conn.execute(
        text(f"""INSERT INTO {hist} (group_id, {k}, member_id, change, by, at)
                 SELECT mt.group_id, mt.{k}, mt.member_id, 'leave', :by, :at
                 FROM {cur} mt JOIN {s} s ON s.member_id = mt.member_id
                 WHERE {in_set} AND s.inside = 0"""),
        p,
    ).rowcount
    if left:
        conn.execute(
            text(f"""DELETE FROM {cur} WHERE group_id = :g AND {k} = :k AND member_id IN
                     (SELECT member_id FROM {s} WHERE inside = 0)"""),
            p,
        )
    new = (
        f"s.inside = 1 AND NOT EXISTS (SELECT 1 FROM {cur} mt WHERE {in_set} "
        "AND mt.member_id = s.member_id)"
    )
    entered = conn.execute(
        text(f"""INSERT INTO {hist} (group_id, {k}, member_id, change, by, at)
                 SELECT :gv, :kv, s.member_id, 'enter', :by, :at FROM {s} s WHERE {new}"""),
        p,
    ).rowcount
    if entered:
        conn.execute(
            text(f"""INSERT INTO {cur} (group_id, {k}, member_id, set_by, set_at)
                     SELECT :gv, :kv, s.member_id, :by, :at FROM {s} s WHERE {new}"""),
            p,
        )
    unstage(conn, staged)
    return Applied(entered=int(entered), left=int(left), changed=0)
