"""Member records at import: the two cases batch OneID cannot settle by itself.

A member record (one row of a member master) becomes a `members` row and observations of
the identifiers typed with it. OneID sees members only through their identities, so:

- **A duplicate record** (every identifier it names is already another member's) would
  be an active member holding nothing, which no resolution ever merges and no channel
  ever reaches. It is merged, mode `import`, into the member holding its card (a card is
  issued to one member by its brand; a phone is often a family's), else its phone. The
  link between its card and phone stays as evidence: OneID joins the two holders through
  it, or refuses and records the conflict. A record holding an identifier of its own is
  left to OneID, which applies the policy over the whole graph; deciding it here could
  disagree with the next resolution, which would then split it off to a new member.
- **A card change**: a known member re-imported with a card it did not hold. The member
  moves to the new card; the earlier card stays its own (its orders stay the member's
  history and a till scanning it still finds the member), linked to the new one and
  recorded as an accepted `card_change`, so the rule "one card per brand" counts only the
  current card (`retired_cards`). Not a merge: nobody else is involved.

Both run set-wise inside the import's transaction, from what the batch wrote (the ids
above its high-water mark), so a first import pays two key-range scans and no probe.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, text

from siyu.identity.merge import merge_many, now_utc
from siyu.store.bulk import stage, unstage

CARD_CHANGE_DETAIL = "accepted: a re-import gave the member a new card; the earlier card stays its"
# A merge chain (A into B, B into C) is followed one link per round.
MAX_CHAIN = 16
# The batch's new rows are found by their key range (`Written`). In the statements below,
# `|| ''` and `+ 0` keep the planners on that range: without statistics (SQLite always,
# PostgreSQL in the middle of an import) they would walk the whole group's index for an
# equality on group_id or status, once per batch.


@dataclass(frozen=True)
class Written:
    """The ids a batch wrote: members in (members_from, members_to], identities in
    (identities_from, identities_to]. Ids only grow, so a key range finds them without a
    scan of the group; both bounds are given so that PostgreSQL's planner, which may not
    have statistics yet in the middle of an import, still takes the range."""

    members_from: int
    identities_from: int
    members_to: int = 0
    identities_to: int = 0

    @classmethod
    def start(cls, conn: Connection) -> Written:
        """Before the batch writes its members."""
        return cls(*_tops(conn))

    def end(self, conn: Connection) -> Written:
        """After the batch wrote its members and identities."""
        members_to, identities_to = _tops(conn)
        return Written(self.members_from, self.identities_from, members_to, identities_to)

    @property
    def params(self) -> dict[str, int]:
        return {
            "m0": self.members_from,
            "m1": self.members_to,
            "i0": self.identities_from,
            "i1": self.identities_to,
        }


def _tops(conn: Connection) -> tuple[int, int]:
    top = conn.execute(
        text(
            "SELECT (SELECT COALESCE(MAX(member_id), 0) FROM members), "
            "(SELECT COALESCE(MAX(identity_id), 0) FROM identities)"
        )
    ).one()
    return int(top[0]), int(top[1])


def follow_merges(conn: Connection, group_id: str, written: Written) -> int:
    """New identities observed for a record whose member was merged since (by an import
    or by OneID) belong to the survivor, not to the merged member; returns how many were
    re-pointed. Only identities of members known before the batch can need it."""
    moved = 0
    for _ in range(MAX_CHAIN):
        n = conn.execute(
            text("""
            UPDATE identities SET member_id = m.merged_into FROM members m
            WHERE identities.identity_id > :i0 AND identities.identity_id <= :i1
              AND identities.group_id || '' = :g AND identities.member_id + 0 <= :m0
              AND m.member_id = identities.member_id
              AND m.status = 'merged' AND m.merged_into IS NOT NULL"""),
            {"g": group_id, **written.params},
        ).rowcount
        if not n:
            break
        moved += int(n)
    return moved


def merge_duplicate_records(
    conn: Connection, group_id: str, written: Written, records: pa.Table
) -> int:
    """Merge every member the batch created that holds no identity into the member
    holding its record's card, else its phone (mode `import`); returns how many were
    merged. `records` has the batch's accepted rows: member_ref, card_key, phone_key.
    A member restored by undoing such a merge is not the batch's, so it stays as the
    operator left it."""
    found = conn.execute(
        text("""
        SELECT m.member_id, m.source_ref FROM members m
        WHERE m.member_id > :m0 AND m.member_id <= :m1
          AND m.group_id || '' = :g AND m.status || '' = 'active'
          AND m.member_id NOT IN (SELECT i.member_id FROM identities i
                                  WHERE i.identity_id > :i0 AND i.identity_id <= :i1
                                    AND i.member_id IS NOT NULL)
          AND NOT EXISTS (SELECT 1 FROM identities i WHERE i.member_id = m.member_id)
        ORDER BY m.member_id"""),
        {"g": group_id, **written.params},
    ).all()
    if not found:
        return 0
    member_of = {str(ref): int(member) for member, ref in found}
    rows = records.filter(pc.is_in(records["member_ref"], pa.array(list(member_of))))
    rows = rows.group_by("member_ref").aggregate([("card_key", "min"), ("phone_key", "min")])
    ghosts = stage(
        conn,
        "ghosts",
        pa.table(
            {
                "member_id": pa.array(
                    [member_of[r] for r in rows["member_ref"].to_pylist()], pa.int64()
                ),
                "card_key": rows["card_key_min"],
                "phone_key": rows["phone_key_min"],
            }
        ),
    )
    holders = conn.execute(
        text(f"""
        SELECT g.member_id, hc.member_id, hp.member_id FROM {ghosts.name} g
        LEFT JOIN identities hc
          ON hc.group_id = :g AND hc.type = 'card' AND hc.value_key = g.card_key
        LEFT JOIN identities hp
          ON hp.group_id = :g AND hp.type = 'phone' AND hp.value_key = g.phone_key
        ORDER BY g.member_id"""),
        {"g": group_id},
    ).all()
    unstage(conn, ghosts)
    pairs = []
    for member, by_card, by_phone in holders:
        holder, what = (by_card, "card") if by_card is not None else (by_phone, "phone")
        if holder is not None and holder != member:
            reason = f"duplicate member record: its {what} is already member {holder}'s"
            pairs.append((int(member), int(holder), reason))
    return len(merge_many(conn, group_id, pairs, "import"))


_MOVES = pa.schema(
    [
        ("member_id", pa.int64()),
        ("old_id", pa.int64()),
        ("new_id", pa.int64()),
        ("registered_at", pa.timestamp("s")),
        ("channel", pa.string()),
    ]
)


def move_to_new_cards(conn: Connection, group_id: str, written: Written) -> tuple[int, int]:
    """Members known before the batch that it gave a card new to the store beside a
    current card of the same brand: the new card is the member's now, the older ones are
    retired (linked to it, recorded as `card_change`). A card the member already held is
    no change, so importing an older file never moves it back. Returns (members moved,
    links written)."""
    staged_moves = stage(conn, "moves", _MOVES.empty_table())
    conn.execute(
        text(f"""
        INSERT INTO {staged_moves.name} (member_id, old_id, new_id, registered_at, channel)
        SELECT DISTINCT cur.member_id, old.identity_id, cur.identity_id, cur.first_seen,
               cur.source_channel
        FROM identities cur
        JOIN identities old
          ON old.member_id = cur.member_id AND old.type = 'card'
         AND old.identity_id < cur.identity_id
         AND COALESCE(old.brand_id, '') = COALESCE(cur.brand_id, '')
        WHERE cur.identity_id > :i0 AND cur.identity_id <= :i1
          AND cur.group_id || '' = :g AND cur.type || '' = 'card' AND cur.member_id + 0 <= :m0
          AND NOT EXISTS (SELECT 1 FROM identity_conflicts c WHERE c.group_id = :g
                          AND c.kind = 'card_change' AND c.identity_x = old.identity_id)"""),
        {"g": group_id, **written.params},
    )
    moved = int(
        conn.execute(
            text(f"SELECT COUNT(DISTINCT member_id) FROM {staged_moves.name}")
        ).scalar_one()
    )
    if moved == 0:
        unstage(conn, staged_moves)
        return 0, 0
    # The old card is always the older identity, so (old, new) is the stored (a, b) order.
    links = conn.execute(
        text(f"""
        INSERT INTO identity_links (group_id, identity_a, identity_b, channel, verified,
            first_seen, last_seen, blocked)
        SELECT :g, v.old_id, v.new_id, MIN(v.channel), 1 = 0, MIN(v.registered_at),
               MAX(v.registered_at), 1 = 0
        FROM {staged_moves.name} v WHERE 1 = 1
        GROUP BY v.old_id, v.new_id
        ON CONFLICT (group_id, identity_a, identity_b) DO NOTHING"""),
        {"g": group_id},
    ).rowcount
    conn.execute(
        text(f"""
        INSERT INTO identity_conflicts (group_id, kind, link_id, identity_x, identity_y,
            detail, status, detected_at)
        SELECT DISTINCT :g, 'card_change', l.link_id, v.old_id, v.new_id, :detail, 'open', :now
        FROM {staged_moves.name} v
        JOIN identity_links l ON l.group_id = :g AND l.identity_a = v.old_id
         AND l.identity_b = v.new_id
        WHERE 1 = 1
        ON CONFLICT (group_id, kind, identity_x, identity_y) DO NOTHING"""),
        {"g": group_id, "detail": CARD_CHANGE_DETAIL, "now": now_utc()},
    )
    unstage(conn, staged_moves)
    return moved, int(links)


def retired_cards(conn: Connection, group_id: str) -> np.ndarray:
    """Identity ids of cards replaced by a newer card of their member (sorted): OneID's
    one-card-per-brand rule no longer counts them."""
    rows = conn.execute(
        text(
            "SELECT DISTINCT identity_x FROM identity_conflicts "
            "WHERE group_id = :g AND kind = 'card_change' ORDER BY identity_x"
        ),
        {"g": group_id},
    ).scalars()
    return np.fromiter((int(r) for r in rows), dtype=np.int64)
