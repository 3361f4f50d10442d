"""Marketing consent follows OneID: run after every merge and unmerge, with balances,
tags, coupons and facts.

A merge folds the absorbed member's consent state (`member_consents`: the last grant and
the last withdrawal per purpose and channel) into the survivor's, each time the later of
the two: any withdrawal after the person's last grant wins, the most restrictive reading
of what one person said through two identities. Folding is idempotent and order-free, so
running it again changes nothing; a chain (A into B, B into C) folds one link per round.

An unmerge recomputes the survivor's state from its own append-only `consent_events`,
then folds in the members still merged into it: what the member given back said leaves
with it. The consent events themselves never change.

The SQL names messaging's tables rather than importing them: messaging reads identity.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, text

MAX_ROUNDS = 32
_LATER = "CASE WHEN {old} IS NULL OR {new} > {old} THEN {new} ELSE {old} END"
_MOVED = "({new} IS NOT NULL AND ({old} IS NULL OR {new} > {old}))"
_G = ("member_consents.last_grant_at", "excluded.last_grant_at")
_W = ("member_consents.last_withdrawal_at", "excluded.last_withdrawal_at")

_FOLD = f"""INSERT INTO member_consents
      (group_id, member_id, purpose, channel, last_grant_at, last_withdrawal_at)
    SELECT c.group_id, m.survivor_id, c.purpose, c.channel,
           MAX(c.last_grant_at), MAX(c.last_withdrawal_at)
    FROM member_consents c
    JOIN merges m ON m.group_id = c.group_id AND m.merged_id = c.member_id
      AND m.undone_at IS NULL {{only}}
    WHERE c.group_id = :g
    GROUP BY c.group_id, m.survivor_id, c.purpose, c.channel
    ON CONFLICT (group_id, member_id, purpose, channel) DO UPDATE SET
      last_grant_at = {_LATER.format(old=_G[0], new=_G[1])},
      last_withdrawal_at = {_LATER.format(old=_W[0], new=_W[1])}
    WHERE {_MOVED.format(old=_G[0], new=_G[1])} OR {_MOVED.format(old=_W[0], new=_W[1])}"""

_UNDONE = """SELECT DISTINCT m.survivor_id FROM merges m
    WHERE m.group_id = :g AND m.undone_at IS NOT NULL {only}"""
_FROM_EVENTS = """INSERT INTO member_consents
      (group_id, member_id, purpose, channel, last_grant_at, last_withdrawal_at)
    SELECT group_id, member_id, purpose, channel,
           MAX(CASE WHEN action = 'grant' THEN at END),
           MAX(CASE WHEN action = 'withdraw' THEN at END)
    FROM consent_events WHERE group_id = :g AND member_id = :m
    GROUP BY group_id, member_id, purpose, channel"""


def follow_consents(engine: Engine, group_id: str, merge_ids: Sequence[int] | None = None) -> int:
    """Recompute survivors of undone merges, then fold consent along every active merge
    (or along `merge_ids` only); returns the consent rows changed."""
    only = (
        ""
        if merge_ids is None
        else f"AND m.merge_id IN ({','.join(map(str, map(int, merge_ids))) or 'NULL'})"
    )
    changed = 0
    with engine.begin() as conn:
        undone = conn.execute(text(_UNDONE.format(only=only)), {"g": group_id}).scalars().all()
        for survivor in undone:
            p = {"g": group_id, "m": int(survivor)}
            conn.execute(
                text("DELETE FROM member_consents WHERE group_id = :g AND member_id = :m"), p
            )
            changed += conn.execute(text(_FROM_EVENTS), p).rowcount
        # after an unmerge, the survivor folds in everything still merged into it
        fold = text(_FOLD.format(only="" if undone else only))
        for _ in range(MAX_ROUNDS):
            taken = conn.execute(fold, {"g": group_id}).rowcount
            if not taken:
                break
            changed += taken
    return changed
