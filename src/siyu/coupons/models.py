"""Coupons: template versions, the coupons issued, their events, and the limit counters.

A coupon is a row keyed by `member_id` (like the ledger's tables: no foreign keys, the
service writes every reference itself) whose `status` changes by conditional UPDATE only
(`issued` → `redeemed` → `issued` again when a refund returns it; `issued` → `expired`),
so two tills can never both redeem it. Every change is also appended to `coupon_events`,
which is never updated or deleted: it is the record liability is reported from (issued −
redeemed + returned − expired, in count, face value and cost). An event's
`idempotency_key` is unique in its brand group, so a retried issue, redemption or return
is answered from its first result and applied once.

Limits (per member, per template in total, redemptions, a budget in fen) are counter rows
raised by a conditional UPDATE (`used + n <= cap`) in the same transaction as the coupon:
a limit is never overrun under concurrency, and a refused request changes nothing.
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

STATUSES = ("issued", "redeemed", "expired")
# moved: OneID moved the coupon to another member (merge) or back (unmerge); it leaves
# liability as it is.
EVENT_KINDS = ("issued", "redeemed", "returned", "expired", "moved")
# How each event changes the coupons outstanding (liability).
LIABILITY_SIGN = {"issued": 1, "redeemed": -1, "returned": 1, "expired": -1, "moved": 0}

# Every version of every template (coupons.templates.CouponTemplate as JSON); the newest
# version of a code is the one issued from, and a coupon keeps the version it was issued
# under, so changing a template never changes the terms of coupons already held.
coupon_templates = Table(
    "coupon_templates",
    metadata,
    Column("template_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("code", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("key_id", BigInteger),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("group_id", "code", "version"),
)

coupons = Table(
    "coupons",
    metadata,
    Column("coupon_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    # what a member types or scans at the till: random, unambiguous, unique in the group
    Column("code", String(32), nullable=False),
    Column("template_id", BigInteger, nullable=False),  # the version issued under
    Column("template_code", String(64), nullable=False),
    Column("member_id", BigInteger, nullable=False),
    Column("campaign", String(64)),  # what issued it: a campaign code, 'tier:gold' ...
    Column("status", String(16), nullable=False),
    Column("valid_from", DateTime, nullable=False),
    Column("valid_until", DateTime, nullable=False),  # exclusive
    Column("issued_at", DateTime, nullable=False),
    # the redemption in force (cleared when a refund returns the coupon)
    Column("order_id", String(128)),
    Column("store_id", String(64)),
    Column("channel", String(32)),
    Column("off_fen", BigInteger),
    Column("redeemed_at", DateTime),
    CheckConstraint("status IN ('issued', 'redeemed', 'expired')", name="status"),
    UniqueConstraint("group_id", "code"),
    Index("ix_coupons_member", "group_id", "member_id", "status", "valid_until"),
    Index("ix_coupons_expiry", "group_id", "status", "valid_until"),
    Index("ix_coupons_template", "group_id", "template_code", "status"),
)

coupon_events = Table(
    "coupon_events",
    metadata,
    Column("event_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("idempotency_key", String(200), nullable=False),
    Column("request_sha256", String(64), nullable=False),
    Column("coupon_id", BigInteger, nullable=False),
    Column("member_id", BigInteger, nullable=False),  # the holder after the event
    Column("template_code", String(64), nullable=False),
    Column("campaign", String(64)),
    Column("kind", String(16), nullable=False),
    Column("order_id", String(128)),
    Column("store_id", String(64)),
    Column("channel", String(32)),
    Column("off_fen", BigInteger, nullable=False),  # taken off the order (redeemed)
    Column("face_value_fen", BigInteger, nullable=False),
    Column("cost_fen", BigInteger, nullable=False),
    Column("reference", String(128)),  # merge:<id>, expiry run, the refund ...
    Column("key_id", BigInteger),  # the API key that asked, if any
    Column("at", DateTime, nullable=False),
    CheckConstraint("kind IN ('issued', 'redeemed', 'returned', 'expired', 'moved')", name="kind"),
    UniqueConstraint("group_id", "idempotency_key"),
    Index("ix_coupon_events_coupon", "coupon_id", "event_id"),
    Index("ix_coupon_events_report", "group_id", "template_code", "kind", "at"),
    Index("ix_coupon_events_member", "group_id", "member_id", "event_id"),
)

# A limit's running count. `member_id` is 0 for a limit over everyone (a real value keeps
# the primary key a plain one on every dialect); the cap is the template's, passed to the
# conditional UPDATE, so a new template version changes the cap without touching rows.
coupon_counters = Table(
    "coupon_counters",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("counter", String(160), nullable=False),  # '<template>:issued', ...
    Column("member_id", BigInteger, nullable=False),
    Column("used", BigInteger, nullable=False),
    PrimaryKeyConstraint("group_id", "counter", "member_id"),
)
