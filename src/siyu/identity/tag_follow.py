"""Tags follow OneID, as balances do (`ledger.merges`): run after every merge and unmerge.

A merge moves the absorbed member's manual and imported tags to the survivor (the
survivor keeps its own value where it holds the tag already) and takes every tag from
the absorbed member; automatic tags are not moved, their next refresh decides. History
says so: a `leave` of the absorbed member and an `enter` of the survivor, both by
`merge:<id>`.

An unmerge gives the restored member back the manual and imported tags it held when it
was merged (by `unmerge:<id>`); the survivor keeps them too, since after the merge no
one can tell which of the two a tag set on the survivor was meant for. Kept simple on
purpose: a tag removed from the survivor in between still comes back to the restored
member.

The SQL names the tags tables (segments.models) rather than importing them: segments
reads identity, so identity may not import segments. Every statement is set-based and
written so that running it again changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, text

from siyu.store.times import stored_now

MAX_ROUNDS = 32  # a chain (A into B, B into C) moves one link per round

_ACTIVE = """JOIN merges m ON m.group_id = mt.group_id AND m.merged_id = mt.member_id
             AND m.undone_at IS NULL {only}"""
_MOVES = f"""SELECT mt.group_id, mt.tag_id, m.survivor_id, MIN(mt.value) AS value,
                    'merge:' || MIN(m.merge_id) AS by
             FROM member_tags mt {_ACTIVE}
             JOIN tags t ON t.tag_id = mt.tag_id AND t.kind <> 'automatic'
             WHERE mt.group_id = :g AND NOT EXISTS (
               SELECT 1 FROM member_tags held WHERE held.group_id = mt.group_id
                 AND held.tag_id = mt.tag_id AND held.member_id = m.survivor_id)
             GROUP BY mt.group_id, mt.tag_id, m.survivor_id"""
_LEAVES = f"""INSERT INTO member_tag_history (group_id, tag_id, member_id, change, value, by, at)
              SELECT mt.group_id, mt.tag_id, mt.member_id, 'leave', mt.value,
                     'merge:' || m.merge_id, :at
              FROM member_tags mt {_ACTIVE} WHERE mt.group_id = :g"""
_DROP = """DELETE FROM member_tags WHERE group_id = :g AND member_id IN (
             SELECT merged_id FROM merges m WHERE group_id = :g AND undone_at IS NULL {only})"""

_GIVE_BACK = """INSERT INTO member_tags (group_id, tag_id, member_id, value, set_by, set_at)
    SELECT h.group_id, h.tag_id, h.member_id, MIN(h.value), 'unmerge:' || m.merge_id, :at
    FROM member_tag_history h
    JOIN merges m ON m.group_id = h.group_id AND m.merged_id = h.member_id
      AND h.by = 'merge:' || m.merge_id AND m.undone_at IS NOT NULL {only}
    JOIN tags t ON t.tag_id = h.tag_id AND t.kind <> 'automatic' AND t.archived_at IS NULL
    WHERE h.group_id = :g AND h.change = 'leave'
      AND NOT EXISTS (SELECT 1 FROM member_tags held WHERE held.group_id = h.group_id
                      AND held.tag_id = h.tag_id AND held.member_id = h.member_id)
      AND NOT EXISTS (SELECT 1 FROM member_tag_history done WHERE done.group_id = h.group_id
                      AND done.tag_id = h.tag_id AND done.member_id = h.member_id
                      AND done.by = 'unmerge:' || m.merge_id)
    GROUP BY h.group_id, h.tag_id, h.member_id, m.merge_id"""
_GIVEN_BACK = """INSERT INTO member_tag_history (group_id, tag_id, member_id, change, value, by, at)
    SELECT mt.group_id, mt.tag_id, mt.member_id, 'enter', mt.value, mt.set_by, mt.set_at
    FROM member_tags mt
    WHERE mt.group_id = :g AND mt.set_by LIKE 'unmerge:%' AND NOT EXISTS (
      SELECT 1 FROM member_tag_history done WHERE done.group_id = mt.group_id
        AND done.tag_id = mt.tag_id AND done.member_id = mt.member_id
        AND done.by = mt.set_by)"""


def follow_merges(
    engine: Engine, group_id: str, merge_ids: Sequence[int] | None = None
) -> tuple[int, int]:
    """Move tags along every merge, give them back along every unmerge (or along
    `merge_ids` only: one member's match follows its own merge without reading the
    group's); returns (tags taken from absorbed members, tags given back to restored
    members)."""
    only = (
        ""
        if merge_ids is None
        else f"AND m.merge_id IN ({','.join(map(str, map(int, merge_ids))) or 'NULL'})"
    )
    moves, leaves, drop = (q.replace("{only}", only) for q in (_MOVES, _LEAVES, _DROP))
    give_back = _GIVE_BACK.replace("{only}", only)
    moved = given = 0
    with engine.begin() as conn:
        for _ in range(MAX_ROUNDS):
            p = {"g": group_id, "at": stored_now()}
            conn.execute(
                text(f"""INSERT INTO member_tags
                           (group_id, tag_id, member_id, value, set_by, set_at)
                         SELECT group_id, tag_id, survivor_id, value, by, :at
                         FROM ({moves}) x"""),
                p,
            )
            taken = conn.execute(text(leaves), p).rowcount
            if not taken:
                break
            # the survivor's enters: the rows just inserted, whose set_by names the merge
            conn.execute(
                text("""INSERT INTO member_tag_history
                          (group_id, tag_id, member_id, change, value, by, at)
                        SELECT mt.group_id, mt.tag_id, mt.member_id, 'enter', mt.value,
                               mt.set_by, mt.set_at
                        FROM member_tags mt WHERE mt.group_id = :g
                          AND mt.set_by LIKE 'merge:%' AND NOT EXISTS (
                            SELECT 1 FROM member_tag_history done
                            WHERE done.group_id = mt.group_id AND done.tag_id = mt.tag_id
                              AND done.member_id = mt.member_id AND done.by = mt.set_by)"""),
                p,
            )
            conn.execute(text(drop), p)
            moved += taken
        p = {"g": group_id, "at": stored_now()}
        given = conn.execute(text(give_back), p).rowcount
        if given:
            conn.execute(text(_GIVEN_BACK), p)
    return moved, given
