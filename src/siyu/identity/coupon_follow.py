"""Coupons follow OneID, as balances and tags do: run after every merge and unmerge.

A merge moves every coupon of the absorbed member to the survivor (its history with it);
an unmerge gives back the coupons that merge moved and that are not redeemed (a coupon
the survivor used stays on the order that used it). Each move is a `moved` event whose
key names the merge and the coupon, so running this again moves nothing twice; a moved
event leaves liability as it is.

The SQL names the coupons tables (coupons.models) rather than importing them: coupons
reads identity (a redemption links the identifier presented), so identity may not import
coupons.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import DateTime, Engine, bindparam, text

from siyu.store.times import stored_now

MAX_ROUNDS = 32  # a chain (A into B, B into C) moves one link per round

_ACTIVE = """JOIN merges m ON m.group_id = c.group_id AND m.merged_id = c.member_id
             AND m.undone_at IS NULL {only}"""
_MOVED = """INSERT INTO coupon_events (group_id, idempotency_key, request_sha256, coupon_id,
                member_id, template_code, campaign, kind, off_fen, face_value_fen, cost_fen,
                reference, at)
            SELECT c.group_id, 'merge:' || m.merge_id || ':' || c.coupon_id, '', c.coupon_id,
                   m.survivor_id, c.template_code, c.campaign, 'moved', 0, 0, 0,
                   'merge:' || m.merge_id, :at
            FROM coupons c {active} WHERE c.group_id = :g
            ON CONFLICT (group_id, idempotency_key) DO NOTHING"""
_MOVE = """UPDATE coupons SET member_id = (
             SELECT m.survivor_id FROM merges m WHERE m.group_id = coupons.group_id
               AND m.merged_id = coupons.member_id AND m.undone_at IS NULL {only})
           WHERE group_id = :g AND member_id IN (
             SELECT m.merged_id FROM merges m
             WHERE m.group_id = :g AND m.undone_at IS NULL {only})"""
_GIVE_BACK = """SELECT c.coupon_id, m.merge_id, m.merged_id
                FROM coupons c
                JOIN coupon_events e ON e.group_id = c.group_id AND e.coupon_id = c.coupon_id
                  AND e.kind = 'moved'
                JOIN merges m ON m.group_id = c.group_id AND e.reference = 'merge:' || m.merge_id
                  AND m.undone_at IS NOT NULL {only}
                WHERE c.group_id = :g AND c.member_id = m.survivor_id AND c.status <> 'redeemed'
                  AND NOT EXISTS (SELECT 1 FROM coupon_events done
                    WHERE done.group_id = c.group_id
                      AND done.idempotency_key = 'unmerge:' || m.merge_id || ':' || c.coupon_id)
                ORDER BY m.merge_id, c.coupon_id"""


def follow_coupons(
    engine: Engine, group_id: str, merge_ids: Sequence[int] | None = None
) -> tuple[int, int]:
    """Move coupons along every merge, give them back along every unmerge (or along
    `merge_ids` only); returns (coupons moved to survivors, coupons given back)."""
    only = (
        ""
        if merge_ids is None
        else f"AND m.merge_id IN ({','.join(map(str, map(int, merge_ids))) or 'NULL'})"
    )
    moved = given = 0
    with engine.begin() as conn:
        for _ in range(MAX_ROUNDS):
            p = {"g": group_id, "at": stored_now()}
            moved_sql = text(_MOVED.format(active=_ACTIVE.format(only=only)))
            conn.execute(moved_sql.bindparams(bindparam("at", type_=DateTime())), p)
            taken = conn.execute(text(_MOVE.format(only=only)), p).rowcount
            if not taken:
                break
            moved += taken
        back = conn.execute(text(_GIVE_BACK.format(only=only)), {"g": group_id}).all()
        if back:
            now = stored_now()
            conn.execute(
                text("""INSERT INTO coupon_events (group_id, idempotency_key, request_sha256,
                          coupon_id, member_id, template_code, campaign, kind, off_fen,
                          face_value_fen, cost_fen, reference, at)
                        SELECT group_id, :k, '', coupon_id, :m, template_code, campaign,
                               'moved', 0, 0, 0, :ref, :at
                        FROM coupons WHERE coupon_id = :c""").bindparams(
                    bindparam("at", type_=DateTime())
                ),
                [
                    {
                        "k": f"unmerge:{merge_id}:{coupon_id}",
                        "m": member,
                        "ref": f"unmerge:{merge_id}",
                        "at": now,
                        "c": coupon_id,
                    }
                    for coupon_id, merge_id, member in back
                ],
            )
            conn.execute(
                text("UPDATE coupons SET member_id = :m WHERE coupon_id = :c"),
                [{"m": member, "c": coupon_id} for coupon_id, _, member in back],
            )
            given = len(back)
    return moved, given
