"""A guide's commission on the double-entry ledger: the accounts and the payment.

Each guide has four accounts (owner 'guide' in `ledger_accounts`, fen):

    cm_accrued  the contra account: minus everything ever accrued, plus every clawback
    cm_frozen   accrued, still inside its freeze
    cm_payable  out of its freeze, not yet paid (negative: a clawback of commission
                already paid, repaid by the next releases before anything is paid)
    cm_paid     paid out

so the four always sum to zero, and every posting moves fen between them:

    accrue    commission:<order>:accrue                      cm_accrued -> cm_frozen
    release   commission:release:<guide no>:<at>:<1st order> cm_frozen  -> cm_payable
    clawback  commission:<order>:clawback:<refund>           cm_frozen, then cm_payable
                                                             -> cm_accrued
    pay       commission:pay:<guide>:<month>                  cm_payable -> cm_paid

Accruals, clawbacks and releases are written by the set (guides/commission_accrual.py,
guides/commission_postings.py). An accrual and a clawback are a posting per order
(`reference` = the order); a release is ONE posting per guide (and store) and run
(`reference` NULL), its orders' amounts the `commission_releases` rows that point at it
(session 19; the releases posted per order before keep their key
'commission:<order>:release' and a row each). The single-posting accrue, release and
clawback that lived here were used by nothing since the jobs went set-based, and were
removed with the summary release (a clawback reading releases per order would now be
wrong). What remains is a guide's ledger number and the payment, one posting at a time
through `ledger.posting.post_in`: its key claimed once, the guide's accounts locked in
account-id order before anything is read, a refusal rolling everything back.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, text

from siyu.guides.models import (
    CM_ACCRUED,
    CM_PAID,
    CM_PAY,
    CM_PAYABLE,
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
