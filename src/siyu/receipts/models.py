"""Receipts: the reward rules (every version kept), the receipts members upload, and the
claim on each (store, receipt number).

A receipt is a row keyed by `member_id` (no foreign keys, like the coupons' tables) whose
`status` changes by conditional UPDATE only: `pending` → `accepted` or `rejected`, once.
A receipt whose number another receipt already holds is recorded as `duplicate` and never
changes. `reasons` is a JSON list of what was noticed and decided (a near-duplicate, a
review wanted, the reviewer's reason); the reward columns are written once, after the
reward is given (`rewarded_at IS NULL` on an accepted receipt: not yet given, see
`receipts.rewards.settle`).

`receipt_numbers` is the uniqueness of a receipt in its brand group: its primary key is
(group, store, number), inserted in the upload's transaction, so two members uploading the
same receipt at once cannot both hold it. A pending or accepted receipt holds its number;
a rejected one lets it go (the member may upload it again with a readable photo).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from siyu.store.metadata import BigId, metadata

STATUSES = ("pending", "accepted", "rejected", "duplicate")

# Every version of every rule (receipts.rules.RewardRule as JSON); a receipt keeps the
# version it was uploaded under, so changing a rule never changes a pending receipt's
# reward.
receipt_rules = Table(
    "receipt_rules",
    metadata,
    Column("rule_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("code", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("key_id", BigInteger),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("group_id", "code", "version"),
)

receipts = Table(
    "receipts",
    metadata,
    Column("receipt_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("member_id", BigInteger, nullable=False),
    Column("rule_code", String(64), nullable=False),
    Column("rule_id", BigInteger, nullable=False),  # the version uploaded under
    Column("store_id", String(64), nullable=False),
    Column("receipt_no", String(64), nullable=False),  # normalised (rules.receipt_number)
    Column("amount_fen", BigInteger, nullable=False),  # paid, as printed
    Column("purchased_at", DateTime, nullable=False),
    Column("image_ref", String(500), nullable=False),  # a URL or object key, never the file
    Column("status", String(16), nullable=False),
    Column("reasons", Text, nullable=False),  # JSON list of {"code", "detail"}
    Column("idempotency_key", String(200), nullable=False),
    Column("request_sha256", String(64), nullable=False),
    Column("key_id", BigInteger),  # the API key that uploaded, if any
    Column("reviewer", String(64)),  # 'auto', or 'key:<id>' of the reviewing key
    Column("reviewed_at", DateTime),
    # the reward given (once): the tier reached, points and their posting, the coupon
    Column("tier_min_paid_fen", BigInteger),
    Column("reward_points", BigInteger),
    Column("posting_id", BigInteger),
    Column("reward_coupon", String(64)),  # the template code
    Column("coupon_id", BigInteger),
    Column("rewarded_at", DateTime),
    Column("created_at", DateTime, nullable=False),
    CheckConstraint("status IN ('pending', 'accepted', 'rejected', 'duplicate')", name="status"),
    CheckConstraint("amount_fen > 0", name="amount_positive"),
    UniqueConstraint("group_id", "idempotency_key"),
    Index("ix_receipts_member", "group_id", "member_id", "receipt_id"),
    Index("ix_receipts_queue", "group_id", "status", "store_id", "receipt_id"),
    Index("ix_receipts_near", "group_id", "store_id", "amount_fen", "purchased_at"),
)

receipt_numbers = Table(
    "receipt_numbers",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("store_id", String(64), nullable=False),
    Column("receipt_no", String(64), nullable=False),
    Column("receipt_id", BigInteger, nullable=False),  # the receipt holding the number
    PrimaryKeyConstraint("group_id", "store_id", "receipt_no"),
)
