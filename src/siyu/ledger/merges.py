"""Balances follow OneID: a merge moves the absorbed member's value to the survivor, an
unmerge moves it back. Both are ordinary postings (kind `merge` / `unmerge`) whose keys
name the merge, so settling is safe to run any number of times, and a crash between the
identity merge and the ledger move is repaired by the next run.

A merge moves every balance and re-homes the absorbed member's point lots (their ids go
in the posting, so the unmerge knows them). An unmerge gives back what is left: the
remaining points of those lots, and the stored value moved, up to what the survivor
still holds; a shortfall (the survivor spent it in between) is written in the posting.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, text

from siyu.ledger.models import ASSETS, POINTS, SV_BONUS, SV_PRINCIPAL
from siyu.ledger.posting import Plan, Request, post

MAX_ROUNDS = 32  # a merge chain (A into B, B into C) settles one link per round


def settle_merges(
    engine: Engine, group_id: str, merge_ids: Sequence[int] | None = None
) -> tuple[int, int]:
    """Post the ledger side of every merge and unmerge not yet settled (or of `merge_ids`
    only: one member's match settles its own merge without scanning the group's, which
    at a million members was most of its time); returns (merges settled, unmerges
    settled)."""
    merged = unmerged = 0
    for _ in range(MAX_ROUNDS):
        pending = _pending(engine, group_id, merge_ids)
        if not pending:
            break
        for merge_id, survivor, absorbed, undone in pending:
            if undone:
                _unmerge(engine, group_id, merge_id, survivor, absorbed)
                unmerged += 1
            else:
                _merge(engine, group_id, merge_id, survivor, absorbed)
                merged += 1
    return merged, unmerged


def _pending(
    engine: Engine, group_id: str, merge_ids: Sequence[int] | None
) -> list[tuple[int, int, int, bool]]:
    """Merges whose absorbed member holds ledger accounts and have no merge posting, and
    undone merges with a merge posting but no unmerge posting; oldest first."""
    only = (
        ""
        if merge_ids is None
        else f" AND m.merge_id IN ({','.join(map(str, map(int, merge_ids))) or 'NULL'})"
    )
    with engine.connect() as conn:
        rows = conn.execute(
            text(f"""SELECT m.merge_id, m.survivor_id, m.merged_id, 0 AS undone
                    FROM merges m
                    WHERE m.group_id = :g AND m.undone_at IS NULL {only}
                      AND EXISTS (SELECT 1 FROM ledger_accounts a WHERE a.group_id = :g
                                  AND a.owner = 'member' AND a.member_id = m.merged_id)
                      AND NOT EXISTS (SELECT 1 FROM ledger_postings p WHERE p.group_id = :g
                                  AND p.kind = 'merge' AND p.reference = 'merge:' || m.merge_id)
                    UNION ALL
                    SELECT m.merge_id, m.survivor_id, m.merged_id, 1 AS undone
                    FROM merges m
                    WHERE m.group_id = :g AND m.undone_at IS NOT NULL {only}
                      AND EXISTS (SELECT 1 FROM ledger_postings p WHERE p.group_id = :g
                                  AND p.kind = 'merge' AND p.reference = 'merge:' || m.merge_id)
                      AND NOT EXISTS (SELECT 1 FROM ledger_postings p WHERE p.group_id = :g
                                  AND p.kind = 'unmerge' AND p.reference = 'merge:' || m.merge_id)
                    ORDER BY 1"""),
            {"g": group_id},
        ).all()
    return [(int(a), int(b), int(c), bool(d)) for a, b, c, d in rows]


def _merge(engine: Engine, group_id: str, merge_id: int, survivor: int, absorbed: int) -> None:
    request = Request(
        group_id,
        survivor,
        "merge",
        f"merge:{merge_id}",
        {"merge_id": merge_id, "absorbed": absorbed},
        reference=f"merge:{merge_id}",
        reason=f"OneID merge {merge_id}: member {absorbed} into {survivor}",
    )

    def plan(work: Plan) -> None:
        work.balances(absorbed)
        held = work.balances_of(absorbed)
        for asset in ASSETS:
            work.transfer(asset, held[asset], absorbed, survivor)
        lots = _move_lots(work, absorbed, survivor, None)
        work.detail.update(merge_id=merge_id, absorbed=absorbed, moved=held, lots=lots)

    post(engine, request, plan)


def _unmerge(engine: Engine, group_id: str, merge_id: int, survivor: int, absorbed: int) -> None:
    with engine.connect() as conn:
        detail: dict[str, Any] = json.loads(
            conn.execute(
                text("""SELECT detail FROM ledger_postings WHERE group_id = :g
                        AND kind = 'merge' AND reference = :r"""),
                {"g": group_id, "r": f"merge:{merge_id}"},
            ).scalar_one()
        )
    request = Request(
        group_id,
        absorbed,
        "unmerge",
        f"unmerge:{merge_id}",
        {"merge_id": merge_id},
        reference=f"merge:{merge_id}",
        reason=f"OneID merge {merge_id} undone: value back to member {absorbed}",
    )

    def plan(work: Plan) -> None:
        work.balances(survivor)
        held = work.balances_of(survivor)
        lots = _move_lots(work, survivor, absorbed, [int(lot) for lot, _ in detail["lots"]])
        back = {POINTS: sum(n for _, n in lots)}
        short = {}
        for asset in (SV_PRINCIPAL, SV_BONUS):
            moved = int(detail["moved"][asset])
            back[asset] = min(moved, held[asset])
            if back[asset] < moved:
                short[asset] = moved - back[asset]
        for asset, amount in back.items():
            work.transfer(asset, amount, survivor, absorbed)
        work.detail.update(merge_id=merge_id, returned=back, shortfall=short, lots=lots)

    post(engine, request, plan)


def _move_lots(work: Plan, source: int, target: int, lot_ids: list[int] | None) -> list[list[int]]:
    """Re-home lots with points left (all of `source`'s, or the listed ones); returns
    [[lot_id, remaining], ...]."""
    query = """SELECT lot_id, remaining FROM point_lots
               WHERE group_id = :g AND member_id = :m AND remaining > 0"""
    rows = work.conn.execute(text(query), {"g": work.group_id, "m": source}).all()
    wanted = None if lot_ids is None else set(lot_ids)
    moved = [
        [int(r.lot_id), int(r.remaining)] for r in rows if wanted is None or r.lot_id in wanted
    ]
    if moved:
        work.write(
            text("UPDATE point_lots SET member_id = :t WHERE lot_id = :l"),
            [{"t": target, "l": lot} for lot, _ in moved],
        )
    return moved
