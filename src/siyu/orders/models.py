"""Fact tables. Money is integer fen. The buyer is an identity (what the channel knows);
`member_id` is the member that identity resolves to, refreshed by OneID, so the table can
be distributed by member_id (Citus) without a join.

These tables declare no foreign keys on purpose: PostgreSQL checks each with a per-row
trigger, which cost more than the whole rest of an import, and distributed tables cannot
keep them anyway. The loaders guarantee every reference by construction (they join the
buyer's identity, check channels and parent orders). See docs/architecture.md."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from siyu.store.metadata import BigId, metadata

ORDER_STATUSES = ("paid", "cancelled", "refunded")
EVENT_TYPES = (
    "view",
    "add_to_cart",
    "order",
    "pay",
    "share",
    "scan",
    "wecom_add",
    "wecom_remove",
    "follow",
    "unfollow",
    "sign_in",
    # content and social activity (Bestore's social tags): an article or post read, a like,
    # a questionnaire answered
    "read",
    "like",
    "survey",
)

orders = Table(
    "orders",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("order_id", String(128), nullable=False),
    Column("brand_id", String(64), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("store_id", String(64)),
    Column("guide_id", String(64)),
    Column("coupon_code", String(64)),
    Column("buyer_identity_id", BigId, nullable=False),
    Column("member_id", BigId),
    Column("status", String(16), nullable=False),
    Column("ordered_at", DateTime, nullable=False),
    Column("paid_at", DateTime),
    Column("total_fen", BigInteger, nullable=False),
    Column("discount_fen", BigInteger, nullable=False),
    Column("paid_fen", BigInteger, nullable=False),
    PrimaryKeyConstraint("group_id", "order_id"),
)
Index("ix_orders_member_id", orders.c.member_id)
Index("ix_orders_buyer_identity_id", orders.c.buyer_identity_id)
# A guide's members (the console's "My members", a store manager's view of a guide):
# partial, so orders without a guide cost the index nothing (migration 0007).
Index(
    "ix_orders_guide",
    orders.c.group_id,
    orders.c.guide_id,
    orders.c.member_id,
    sqlite_where=orders.c.guide_id.isnot(None),
    postgresql_where=orders.c.guide_id.isnot(None),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("order_id", String(128), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("sku", String(64), nullable=False),
    Column("qty", Integer, nullable=False),
    Column("unit_price_fen", BigInteger, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    PrimaryKeyConstraint("group_id", "order_id", "line_no"),
)

refunds = Table(
    "refunds",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("refund_id", String(128), nullable=False),
    Column("order_id", String(128), nullable=False),
    Column("line_no", Integer),
    Column("qty", Integer),
    Column("refunded_at", DateTime, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("reason", String(200)),
    PrimaryKeyConstraint("group_id", "refund_id"),
)
Index("ix_refunds_order", refunds.c.group_id, refunds.c.order_id)  # a member's refunds

events = Table(
    "events",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("event_id", String(128), nullable=False),
    Column("type", String(32), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("identity_id", BigId, nullable=False),
    Column("member_id", BigId),
    Column("occurred_at", DateTime, nullable=False),
    Column("sku", String(64)),
    Column("store_id", String(64)),
    Column("guide_id", String(64)),
    Column("order_id", String(128)),
    Column("scene", String(128)),
    Column("properties", Text),
    PrimaryKeyConstraint("group_id", "event_id"),
)
Index("ix_events_member_id", events.c.member_id)
Index("ix_events_identity_id", events.c.identity_id)
Index(
    "ix_events_guide",
    events.c.group_id,
    events.c.guide_id,
    events.c.member_id,
    sqlite_where=events.c.guide_id.isnot(None),
    postgresql_where=events.c.guide_id.isnot(None),
)
