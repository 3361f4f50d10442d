"""The reward of an accepted receipt, given once: the tier's points through the ledger's
own `points.earn`, its coupon through `coupons.issue`, each under a key derived from the
receipt (`receipt:<id>:points`, `receipt:<id>`).

The reward is given after the acceptance has committed, in the ledger's and the coupons'
own transactions, and recorded on the receipt last (`rewarded_at`). A process stopping in
between leaves an accepted receipt with `rewarded_at IS NULL`; running `reward` again (a
retried accept or upload, or `settle`, which finds every such receipt) posts and issues
under the same keys, which answer what was already given instead of giving it again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from siyu.coupons.issue import holders, issue
from siyu.ledger import points
from siyu.ledger.errors import IdempotencyConflict
from siyu.ledger.posting import Request
from siyu.receipts import records, rules
from siyu.receipts.records import Receipt
from siyu.store.times import stored_now

_UNREWARDED = text("""SELECT receipt_id FROM receipts
                      WHERE group_id = :g AND status = 'accepted' AND rewarded_at IS NULL
                      ORDER BY receipt_id LIMIT :n""")
_RECORD = text("""UPDATE receipts SET reward_points = :p, posting_id = :pid,
                    reward_coupon = :c, coupon_id = :cid, reasons = :why, rewarded_at = :at
                  WHERE receipt_id = :r AND rewarded_at IS NULL""")
# A posting made before a merge moved its member: found by its key (the digest names
# the member, so asking again for the survivor would not match it).
_POSTED = text("""SELECT posting_id FROM ledger_postings
                  WHERE group_id = :g AND idempotency_key = :k""")


@dataclass(frozen=True)
class Given:
    points: int | None
    posting_id: int | None
    coupon: str | None
    coupon_id: int | None
    refused: str | None  # why the coupon was not issued (its template's limits)


def reward(engine: Engine, group_id: str, receipt_id: int) -> Receipt:
    """Give the accepted receipt's reward if it has not been given; answers the receipt
    (unchanged when it is not accepted, or already rewarded)."""
    with engine.connect() as conn:
        found = records.load(conn, group_id, receipt_id)
        if found.status != "accepted" or found.rewarded_at is not None:
            return found
        rule = rules.by_id(conn, found.rule_id)
        holder = holders(conn, group_id, [found.member_id]).get(found.member_id, found.member_id)
    tier = rule.tier_for(found.amount_fen)
    assert tier is not None  # refused at upload otherwise
    given = Given(tier.points, None, tier.coupon, None, None)
    if tier.points:
        given = _points(engine, group_id, found, holder, tier.points, given)
    if tier.coupon:
        given = _coupon(engine, group_id, found, tier.coupon, given)
    why = list(found.reasons)
    if given.refused:
        why.append({"code": "coupon_refused", "detail": given.refused})
    with engine.begin() as conn:
        conn.execute(
            _RECORD,
            {
                "p": given.points,
                "pid": given.posting_id,
                "c": given.coupon,
                "cid": given.coupon_id,
                "why": json.dumps(why, ensure_ascii=False),
                "at": stored_now(),
                "r": receipt_id,
            },
        )
        return records.load(conn, group_id, receipt_id)


def settle(engine: Engine, group_id: str, limit: int = 1000) -> list[Receipt]:
    """Give every accepted receipt's reward still missing (a process stopped between the
    acceptance and the reward); safe to run any time and twice."""
    with engine.connect() as conn:
        due = [int(r) for r in conn.execute(_UNREWARDED, {"g": group_id, "n": limit}).scalars()]
    return [reward(engine, group_id, r) for r in due]


def _points(
    engine: Engine, group_id: str, found: Receipt, holder: int, amount: int, given: Given
) -> Given:
    key = f"receipt:{found.receipt_id}:points"
    request = Request(
        group_id,
        holder,
        "earn",
        key,
        {"receipt_id": found.receipt_id, "rule": found.rule_code, "points": amount},
        reference=f"receipt:{found.receipt_id}",
        store_id=found.store_id,
        reason=f"receipt rule {found.rule_code}",
        business_at=found.purchased_at,
    )
    try:
        posting_id = points.earn(engine, request, amount, None).posting_id
    except IdempotencyConflict:
        with engine.connect() as conn:
            posting_id = int(conn.execute(_POSTED, {"g": group_id, "k": key}).scalar_one())
    return Given(amount, posting_id, given.coupon, given.coupon_id, given.refused)


def _coupon(engine: Engine, group_id: str, found: Receipt, template: str, given: Given) -> Given:
    # Issued to the member the receipt was recorded for: `issue` follows a merge to the
    # survivor itself, and its key (`issue:<key>:<asked member>`) stays the same.
    def once() -> Given:
        report = issue(
            engine,
            group_id,
            template,
            [found.member_id],
            f"receipt:{found.receipt_id}",
            campaign=f"receipt:{found.rule_code}"[:64],
        )
        if report.issued:
            coupon_id = report.issued[0].coupon_id
            return Given(given.points, given.posting_id, template, coupon_id, None)
        why = report.refused.get(found.member_id, "not issued")
        return Given(given.points, given.posting_id, template, None, f"{template}: {why}")

    try:
        return once()
    except IntegrityError:
        # another reward of the same receipt issued it at the same moment: now a replay
        return once()
