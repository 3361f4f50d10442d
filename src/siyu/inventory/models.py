"""Stock by SKU x location, its movements, reservations, and the outbox to channels.

`stock_levels` holds on hand and reserved per SKU and location; available is on hand minus
reserved, and a CHECK keeps it from going below zero whatever the code does. Every change
is a movement (append-only, with a reason and an idempotency key); the level row exists so
that the database can refuse a sale of a unit that is not there in the same statement that
takes it (a conditional UPDATE), exactly as the ledger does with balances.

Keyed by (group, sku, location) so the tables can be distributed by item and location.
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

MOVEMENT_KINDS = (
    "receive",
    "sale",
    "return",
    "transfer_in",
    "transfer_out",
    "adjustment",
    "count",
    "reserve",
    "release",
    "expire",
    "confirm",
    "prize",  # a lottery prize or sample awarded (siyu.lotteries)
)
RESERVATION_STATUSES = ("open", "confirmed", "released", "expired")

stock_locations = Table(
    "stock_locations",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("location_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # 'store' | 'warehouse'
    Column("store_id", String(64)),  # the store this location is, if a store
    Column("city", String(64), nullable=False),
    # Microdegrees: integers, so "nearest" never depends on float formatting.
    Column("lat_e6", BigInteger),
    Column("lon_e6", BigInteger),
    PrimaryKeyConstraint("group_id", "location_id"),
)

# Which locations an online channel may ship from, and the safety stock it keeps back.
channel_locations = Table(
    "channel_locations",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("location_id", String(64), nullable=False),
    PrimaryKeyConstraint("group_id", "channel", "location_id"),
)
channel_safety_stock = Table(
    "channel_safety_stock",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("units", Integer, nullable=False),  # held back from every SKU's ATP
    PrimaryKeyConstraint("group_id", "channel"),
)

stock_levels = Table(
    "stock_levels",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("sku", String(64), nullable=False),
    Column("location_id", String(64), nullable=False),
    Column("on_hand", BigInteger, nullable=False),
    Column("reserved", BigInteger, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    PrimaryKeyConstraint("group_id", "sku", "location_id"),
    CheckConstraint("reserved >= 0 AND on_hand >= reserved", name="available_not_negative"),
)

stock_movements = Table(
    "stock_movements",
    metadata,
    Column("movement_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("sku", String(64), nullable=False),
    Column("location_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("on_hand_delta", BigInteger, nullable=False),
    Column("reserved_delta", BigInteger, nullable=False),
    Column("reason", String(500)),
    Column("reference", String(128)),  # order id, reservation id, transfer id
    Column("idempotency_key", String(200)),
    Column("key_id", BigInteger),
    Column("created_at", DateTime, nullable=False),
    Index("ix_stock_movements_item", "group_id", "sku", "location_id", "movement_id"),
    UniqueConstraint("group_id", "idempotency_key"),
)

reservations = Table(
    "reservations",
    metadata,
    Column("reservation_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("order_id", String(128), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("request_sha256", String(64), nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    UniqueConstraint("group_id", "order_id"),
    Index("ix_reservations_open", "group_id", "status", "expires_at"),
)

reservation_lines = Table(
    "reservation_lines",
    metadata,
    Column("reservation_id", BigInteger, nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("sku", String(64), nullable=False),
    Column("location_id", String(64), nullable=False),
    Column("qty", Integer, nullable=False),
    PrimaryKeyConstraint("reservation_id", "line_no"),
)

# Transactional outbox: written in the transaction that changes stock, delivered after.
outbox = Table(
    "outbox",
    metadata,
    Column("event_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("topic", String(64), nullable=False),
    Column("event_key", String(200), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("delivered_at", DateTime),
    Column("attempts", Integer, nullable=False),
    Index("ix_outbox_pending", "group_id", "delivered_at", "event_id"),
)
