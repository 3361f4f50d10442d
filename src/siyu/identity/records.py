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

Both run set-wise on the batch's staged rows, inside the import's transaction.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from sqlalchemy import Connection, Table, text

from siyu.identity.merge import merge_many, now_utc
from siyu.store.bulk import stage, unstage
from siyu.store.dialect import dialect_of

# The staged batch these functions read: one row per accepted record.
STAGED_COLUMNS = ("member_ref", "card_key", "phone_key", "registered_at", "channel")
CARD_CHANGE_DETAIL = "accepted: a re-import gave the member a new card; the earlier card stays its"


def merge_duplicate_records(conn: Connection, group_id: str, staged: Table) -> int:
    """Merge every member of the batch that holds no identity into the member holding
    its card, else its phone (mode `import`); returns how many were merged. A member
    brought back by undoing such a merge stays as the operator left it."""
    d = dialect_of(conn)
    found = conn.execute(
        text(f"""
        SELECT DISTINCT m.member_id, hc.member_id AS by_card, hp.member_id AS by_phone
        FROM {staged.name} s {d.staged_join} members m
          ON m.group_id = :g AND m.source_ref = s.member_ref
        LEFT JOIN identities hc
          ON hc.group_id = :g AND hc.type = 'card' AND hc.value_key = s.card_key
        LEFT JOIN identities hp
          ON hp.group_id = :g AND hp.type = 'phone' AND hp.value_key = s.phone_key
        WHERE m.status = 'active'
          AND NOT EXISTS (SELECT 1 FROM identities i WHERE i.member_id = m.member_id)
          AND NOT EXISTS (SELECT 1 FROM merges u
                          WHERE u.merged_id = m.member_id AND u.undone_at IS NOT NULL)
        ORDER BY m.member_id"""),
        {"g": group_id},
    ).all()
    pairs = []
    for member, by_card, by_phone in found:
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


def move_to_new_cards(
    conn: Connection, group_id: str, staged: Table, newer_than: int
) -> tuple[int, int]:
    """Members of the batch given a card new to the store (identity id above
    `newer_than`) beside a current card of the same brand: the record's card is the new
    one, the others are retired (linked to it, recorded as `card_change`). A card the
    member already held is no change, so importing an older file never moves it back.
    Returns (members moved, links written)."""
    d = dialect_of(conn)
    staged_moves = stage(conn, "moves", _MOVES.empty_table())
    conn.execute(
        text(f"""
        INSERT INTO {staged_moves.name} (member_id, old_id, new_id, registered_at, channel)
        SELECT DISTINCT m.member_id, old.identity_id, cur.identity_id, s.registered_at,
               s.channel
        FROM {staged.name} s {d.staged_join} members m
          ON m.group_id = :g AND m.source_ref = s.member_ref
        JOIN identities cur
          ON cur.group_id = :g AND cur.type = 'card' AND cur.value_key = s.card_key
         AND cur.member_id = m.member_id AND cur.identity_id > :newer_than
        JOIN identities old
          ON old.member_id = m.member_id AND old.type = 'card'
         AND old.identity_id <> cur.identity_id
         AND COALESCE(old.brand_id, '') = COALESCE(cur.brand_id, '')
        WHERE NOT EXISTS (SELECT 1 FROM identity_conflicts c WHERE c.group_id = :g
                          AND c.kind = 'card_change' AND c.identity_x = old.identity_id)"""),
        {"g": group_id, "newer_than": newer_than},
    )
    moved = int(
        conn.execute(
            text(f"SELECT COUNT(DISTINCT member_id) FROM {staged_moves.name}")
        ).scalar_one()
    )
    if moved == 0:
        unstage(conn, staged_moves)
        return 0, 0
    low = "CASE WHEN v.old_id < v.new_id THEN v.old_id ELSE v.new_id END"
    high = "CASE WHEN v.old_id < v.new_id THEN v.new_id ELSE v.old_id END"
    links = conn.execute(
        text(f"""
        INSERT INTO identity_links (group_id, identity_a, identity_b, channel, verified,
            first_seen, last_seen, blocked)
        SELECT :g, {low}, {high}, MIN(v.channel), 1 = 0, MIN(v.registered_at),
               MAX(v.registered_at), 1 = 0
        FROM {staged_moves.name} v WHERE 1 = 1
        GROUP BY {low}, {high}
        ON CONFLICT (group_id, identity_a, identity_b) DO NOTHING"""),
        {"g": group_id},
    ).rowcount
    conn.execute(
        text(f"""
        INSERT INTO identity_conflicts (group_id, kind, link_id, identity_x, identity_y,
            detail, status, detected_at)
        SELECT DISTINCT :g, 'card_change', l.link_id, v.old_id, v.new_id, :detail, 'open', :now
        FROM {staged_moves.name} v
        JOIN identity_links l ON l.group_id = :g AND l.identity_a = {low}
         AND l.identity_b = {high}
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
