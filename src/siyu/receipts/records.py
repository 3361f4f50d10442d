"""A receipt as answered: one row of `receipts`, its reasons parsed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from siyu.errors import NotFoundError
from siyu.store.times import stored_time

COLUMNS = """receipt_id, member_id, rule_code, rule_id, store_id, receipt_no, amount_fen,
             purchased_at, image_ref, status, reasons, idempotency_key, request_sha256,
             reviewer, reviewed_at, tier_min_paid_fen, reward_points, posting_id,
             reward_coupon, coupon_id, rewarded_at, created_at"""
_ONE = text(f"SELECT {COLUMNS} FROM receipts WHERE group_id = :g AND receipt_id = :r")
_BY_KEY = text(f"SELECT {COLUMNS} FROM receipts WHERE group_id = :g AND idempotency_key = :k")


@dataclass(frozen=True)
class Receipt:
    receipt_id: int
    member_id: int
    rule_code: str
    rule_id: int
    store_id: str
    receipt_no: str
    amount_fen: int
    purchased_at: datetime
    image_ref: str
    status: str
    reasons: list[dict[str, str]]
    reviewer: str | None
    reviewed_at: datetime | None
    tier_min_paid_fen: int | None
    reward_points: int | None
    posting_id: int | None
    reward_coupon: str | None
    coupon_id: int | None
    rewarded_at: datetime | None
    created_at: datetime
    request_sha256: str = field(repr=False, default="")
    replayed: bool = False

    def as_dict(self, image: bool = True) -> dict[str, Any]:
        """The answer's body; `image=False` leaves out the photo's reference (it may show
        a member's card or phone to roles that see no personal data)."""
        out = {
            "receipt_id": self.receipt_id,
            "member_id": self.member_id,
            "rule": self.rule_code,
            "store_id": self.store_id,
            "receipt_no": self.receipt_no,
            "amount_fen": self.amount_fen,
            "purchased_at": self.purchased_at,
            "image_ref": self.image_ref if image else None,
            "status": self.status,
            "reasons": self.reasons,
            "reviewer": self.reviewer,
            "reviewed_at": self.reviewed_at,
            "reward": {
                "tier_min_paid_fen": self.tier_min_paid_fen,
                "points": self.reward_points,
                "posting_id": self.posting_id,
                "coupon": self.reward_coupon,
                "coupon_id": self.coupon_id,
                "rewarded_at": self.rewarded_at,
            },
            "created_at": self.created_at,
            "replayed": self.replayed,
        }
        return out


def from_row(row: Any, replayed: bool = False) -> Receipt:
    def when(value: Any) -> datetime | None:
        return None if value is None else stored_time(value)

    def num(value: Any) -> int | None:
        return None if value is None else int(value)

    return Receipt(
        receipt_id=int(row.receipt_id),
        member_id=int(row.member_id),
        rule_code=row.rule_code,
        rule_id=int(row.rule_id),
        store_id=row.store_id,
        receipt_no=row.receipt_no,
        amount_fen=int(row.amount_fen),
        purchased_at=stored_time(row.purchased_at),
        image_ref=row.image_ref,
        status=row.status,
        reasons=json.loads(row.reasons),
        reviewer=row.reviewer,
        reviewed_at=when(row.reviewed_at),
        tier_min_paid_fen=num(row.tier_min_paid_fen),
        reward_points=num(row.reward_points),
        posting_id=num(row.posting_id),
        reward_coupon=row.reward_coupon,
        coupon_id=num(row.coupon_id),
        rewarded_at=when(row.rewarded_at),
        created_at=stored_time(row.created_at),
        request_sha256=row.request_sha256,
        replayed=replayed,
    )


def load(conn: Connection, group_id: str, receipt_id: int) -> Receipt:
    row = conn.execute(_ONE, {"g": group_id, "r": receipt_id}).first()
    if row is None:
        raise NotFoundError(f"receipt_id: no receipt {receipt_id}")
    return from_row(row)


def by_key(conn: Connection, group_id: str, key: str) -> Receipt | None:
    row = conn.execute(_BY_KEY, {"g": group_id, "k": key}).first()
    return None if row is None else from_row(row, replayed=True)


def listed(
    conn: Connection,
    group_id: str,
    *,
    member_id: int | None = None,
    status: str | None = None,
    stores: tuple[str, ...] | None = None,
    limit: int = 100,
) -> list[Receipt]:
    """Receipts newest first: a member's, or the review queue (by status, in `stores`)."""
    where = ["group_id = :g"]
    params: dict[str, Any] = {"g": group_id, "n": limit}
    if member_id is not None:
        where.append("member_id = :m")
        params["m"] = member_id
    if status is not None:
        where.append("status = :st")
        params["st"] = status
    if stores is not None:
        if not stores:
            return []
        names = [f":s{i}" for i in range(len(stores))]
        where.append(f"store_id IN ({', '.join(names)})")
        params.update({f"s{i}": s for i, s in enumerate(stores)})
    rows = conn.execute(
        text(f"""SELECT {COLUMNS} FROM receipts WHERE {" AND ".join(where)}
                 ORDER BY receipt_id DESC LIMIT :n"""),
        params,
    ).all()
    return [from_row(r) for r in rows]
