"""Reviewing a pending receipt: accept (its reward follows) or reject with a reason, once.

The decision is a conditional UPDATE (`WHERE status = 'pending'`): two reviewers deciding
at once cannot both decide, and a decision never changes. Asking again for the decision
already made answers the receipt as it is (and gives an accepted receipt's reward if a
stopped process left it out); asking for the other one is `receipt_decided`. A rejection
lets the receipt's number go (the member may upload it again, with a readable photo) and
gives its places in the member's limits back, in the same transaction.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Literal

from sqlalchemy import Engine, text

from siyu.coupons import limits
from siyu.errors import ForbiddenError, ValidationError
from siyu.receipts import reasons, records, rewards, rules
from siyu.receipts.errors import ReceiptDecided
from siyu.receipts.records import Receipt
from siyu.store.times import stored_now

Decision = Literal["accepted", "rejected"]
_DECIDE = text("""UPDATE receipts SET status = :st, reasons = :why, reviewer = :by,
                    reviewed_at = :at
                  WHERE group_id = :g AND receipt_id = :r AND status = 'pending'""")
_LET_GO = text("DELETE FROM receipt_numbers WHERE group_id = :g AND receipt_id = :r")


def decide(
    engine: Engine,
    group_id: str,
    receipt_id: int,
    decision: Decision,
    reviewer: str,
    reason: str | None = None,
    *,
    stores: tuple[str, ...] | None = None,
) -> Receipt:
    """Accept or reject the pending receipt `receipt_id`. `stores`: the reviewer's stores
    (a store reviews its own stores' receipts; None: HQ, any)."""
    if decision == "rejected" and not (reason and reason.strip()):
        raise ValidationError("reason", "required to reject: say why, for the member")
    if reason is not None and len(reason) > 500:
        raise ValidationError("reason", "at most 500 characters")
    with engine.begin() as conn:
        found = records.load(conn, group_id, receipt_id)
        if stores is not None and found.store_id not in stores:
            raise ForbiddenError(
                f"receipt_id: receipt {receipt_id} is of store {found.store_id}; "
                "its own store or HQ reviews it"
            )
        why = [*found.reasons, reasons.decision(decision, reason)]
        changed = conn.execute(
            _DECIDE,
            {
                "st": decision,
                "why": json.dumps(why, ensure_ascii=False),
                "by": reviewer[:64],
                "at": stored_now(),
                "g": group_id,
                "r": receipt_id,
            },
        ).rowcount
        if changed != 1:
            current = records.load(conn, group_id, receipt_id)
            if current.status != decision:
                raise ReceiptDecided(
                    f"receipt_id: receipt {receipt_id} is {current.status}; a decision is made once"
                )
        elif decision == "rejected":
            conn.execute(_LET_GO, {"g": group_id, "r": receipt_id})
            rule = rules.by_id(conn, found.rule_id)
            for name, _, _ in rule.counters(found.purchased_at):
                limits.give_back(conn, group_id, name, 1, found.member_id)
    done = rewards.reward(engine, group_id, receipt_id)
    return done if changed == 1 else replace(done, replayed=True)
