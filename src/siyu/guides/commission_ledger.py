"""A guide's commission on the double-entry ledger: the state machine.

Each guide has four accounts (owner 'guide' in `ledger_accounts`, fen):

    cm_accrued  the contra account: minus everything ever accrued, plus every clawback
    cm_frozen   accrued, still inside its freeze
    cm_payable  out of its freeze, not yet paid (negative: a clawback of commission
                already paid, repaid by the next releases before anything is paid)
    cm_paid     paid out

so the four always sum to zero, and every posting moves fen between them:

    accrue    commission:<order>:accrue              cm_accrued -> cm_frozen
    release   commission:<order>:release             cm_frozen  -> cm_payable
    clawback  commission:<order>:clawback:<refund>   cm_frozen, then cm_payable -> cm_accrued
    pay       commission:pay:<guide>:<month>          cm_payable -> cm_paid

Every posting goes through `ledger.posting.post_in`: its idempotency key is claimed once,
the guide's accounts are locked in account-id order before anything is read, a refusal
rolls everything back. Amounts per order are read from the ledger's entries of that
order's postings (`reference` = the order), never from a number kept beside them.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Connection, text

from siyu.guides.models import (
    CM_ACCRUE,
    CM_ACCRUED,
    CM_CLAWBACK,
    CM_FROZEN,
    CM_PAID,
    CM_PAY,
    CM_PAYABLE,
    CM_RELEASE,
    COMMISSION_ASSETS,
    GUIDE_OWNER,
)
from siyu.ledger.posting import Holder, Plan, Request, Result, post_in
from siyu.store.times import stored_now

GUIDE = Holder(GUIDE_OWNER, COMMISSION_ASSETS, frozenset({CM_ACCRUED, CM_PAYABLE}))
# The guide's accounts carry no system side: system_accounts are never touched.
NO_SYSTEM: dict[tuple[str, str], int] = {}


def account_no(conn: Connection, group_id: str, guide_id: str) -> int:
    """The guide's ledger number, given on first use (the ledger's member_id is minus it:
    guides/models.py)."""
    conn.execute(
        text("""INSERT INTO guide_accounts (group_id, guide_id, created_at)
                VALUES (:g, :guide, :now) ON CONFLICT (group_id, guide_id) DO NOTHING"""),
        {"g": group_id, "guide": guide_id, "now": stored_now()},
    )
    return int(
        conn.execute(
            text("SELECT account_no FROM guide_accounts WHERE group_id = :g AND guide_id = :guide"),
            {"g": group_id, "guide": guide_id},
        ).scalar_one()
    )


def holder_id(conn: Connection, group_id: str, guide_id: str) -> int:
    return -account_no(conn, group_id, guide_id)


def _order_on(work: Plan, order_id: str, asset: str, kinds: tuple[str, ...]) -> int:
    """The sum of the guide's `asset` entries of the order's postings of `kinds`."""
    found = work.conn.execute(
        text(f"""SELECT COALESCE(SUM(e.amount), 0) FROM ledger_entries e
                JOIN ledger_postings p ON p.posting_id = e.posting_id
                WHERE p.group_id = :g AND p.reference = :o AND p.member_id = :m
                  AND p.kind IN ({", ".join(f"'{k}'" for k in kinds)})
                  AND e.member_id = :m AND e.asset = :a"""),
        {"g": work.group_id, "o": order_id, "m": work.member_id, "a": asset},
    ).scalar_one()
    return int(found)


def _request(
    group_id: str,
    guide: int,
    kind: str,
    key: str,
    fields: dict[str, object],
    at: datetime,
    reference: str | None,
    store_id: str | None = None,
    channel: str | None = None,
) -> Request:
    return Request(
        group_id,
        guide,
        kind,
        key,
        fields,
        reference=reference,
        store_id=store_id,
        channel=channel,
        business_at=at,
        holder=GUIDE,
    )


def accrue(
    conn: Connection,
    group_id: str,
    guide: int,
    order_id: str,
    amount: int,
    at: datetime,
    store_id: str | None,
    channel: str | None,
    detail: dict[str, object],
) -> Result:
    """`amount` fen of the order into the guide's frozen account."""

    def plan(work: Plan) -> None:
        work.balances()
        work.lines += [("member", guide, CM_ACCRUED, -amount), ("member", guide, CM_FROZEN, amount)]
        work.detail.update(detail, commission_fen=amount)

    request = _request(
        group_id,
        guide,
        CM_ACCRUE,
        f"commission:{order_id}:accrue",
        {"order_id": order_id},
        at,
        order_id,
        store_id,
        channel,
    )
    return post_in(conn, NO_SYSTEM, request, plan)


def release(
    conn: Connection, group_id: str, guide: int, order_id: str, at: datetime, store_id: str | None
) -> Result:
    """What is still frozen of the order (its accrual less clawbacks) into payable."""

    def plan(work: Plan) -> None:
        work.balances()  # locks the guide's accounts before the order's entries are read
        frozen = _order_on(work, order_id, CM_FROZEN, (CM_ACCRUE, CM_CLAWBACK))
        if frozen > 0:
            work.lines += [
                ("member", guide, CM_FROZEN, -frozen),
                ("member", guide, CM_PAYABLE, frozen),
            ]
        work.detail["released_fen"] = max(frozen, 0)

    request = _request(
        group_id,
        guide,
        CM_RELEASE,
        f"commission:{order_id}:release",
        {"order_id": order_id},
        at,
        order_id,
        store_id,
    )
    return post_in(conn, NO_SYSTEM, request, plan)


def clawback(
    conn: Connection,
    group_id: str,
    guide: int,
    order_id: str,
    refund_id: str,
    refund_fen: int,
    paid_fen: int,
    at: datetime,
    store_id: str | None,
) -> Result:
    """Take back the refund's share of the order's commission:

        owed = floor(accrued x min(refunded so far, paid) / paid)     (paid 0: accrued)
        this = owed - clawed back so far

    Counting refunds cumulatively makes the clawbacks of an order sum to exactly its
    accrual once it is refunded in full, and never more whatever the refunds add up to.
    From what is still frozen of the order first, the rest from payable."""

    def plan(work: Plan) -> None:
        work.balances()
        accrued = _order_on(work, order_id, CM_FROZEN, (CM_ACCRUE,))
        clawed = _order_on(work, order_id, CM_ACCRUED, (CM_CLAWBACK,))
        refunded = refund_fen + _refunded_before(work, order_id)
        owed = accrued if paid_fen <= 0 else accrued * min(refunded, paid_fen) // paid_fen
        take = max(min(owed, accrued) - clawed, 0)
        frozen = max(_order_on(work, order_id, CM_FROZEN, (CM_ACCRUE, CM_RELEASE, CM_CLAWBACK)), 0)
        from_frozen = min(take, frozen)
        if take:
            work.lines += [
                ("member", guide, CM_ACCRUED, take),
                ("member", guide, CM_FROZEN, -from_frozen),
                ("member", guide, CM_PAYABLE, -(take - from_frozen)),
            ]
        work.detail.update(
            refund_id=refund_id,
            refund_fen=refund_fen,
            clawback_fen=take,
            from_frozen_fen=from_frozen,
        )

    request = _request(
        group_id,
        guide,
        CM_CLAWBACK,
        f"commission:{order_id}:clawback:{refund_id}",
        {"order_id": order_id, "refund_id": refund_id},
        at,
        order_id,
        store_id,
    )
    return post_in(conn, NO_SYSTEM, request, plan)


def _refunded_before(work: Plan, order_id: str) -> int:
    """The refunds of the order already clawed back (each clawback keeps its refund)."""
    rows = work.conn.execute(
        text("""SELECT detail FROM ledger_postings
                WHERE group_id = :g AND reference = :o AND member_id = :m AND kind = :k
                  AND posting_id <> :p"""),
        {
            "g": work.group_id,
            "o": order_id,
            "m": work.member_id,
            "k": CM_CLAWBACK,
            "p": work.posting_id,
        },
    ).all()
    return sum(int(json.loads(r.detail or "{}").get("refund_fen", 0)) for r in rows)


def pay(
    conn: Connection, group_id: str, guide: int, guide_id: str, month: str, store_id: str | None
) -> Result:
    """Everything payable now into paid, once per guide and statement month (`store_id`:
    the guide's store, for its store's statement)."""

    def plan(work: Plan) -> None:
        payable = work.balances()[CM_PAYABLE]
        if payable > 0:
            work.lines += [
                ("member", guide, CM_PAYABLE, -payable),
                ("member", guide, CM_PAID, payable),
            ]
        work.detail.update(month=month, paid_fen=max(payable, 0))

    request = _request(
        group_id,
        guide,
        CM_PAY,
        f"commission:pay:{guide_id}:{month}",
        {"guide_id": guide_id, "month": month},
        stored_now(),
        f"pay:{month}",
        store_id,
    )
    return post_in(conn, NO_SYSTEM, request, plan)
