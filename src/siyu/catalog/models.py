"""Reference tables. Keys are the brand's own codes, scoped by brand group."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKeyConstraint,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
)

from siyu.store.metadata import metadata

CHANNELS: dict[str, str] = {
    # channel -> kind; "offline" sells at the till, "private_domain" is the brand's own
    # reach (mini-program, WeCom, official account), "marketplace" is a platform's.
    "pos": "offline",
    "miniprogram": "private_domain",
    "official_account": "private_domain",
    "wecom": "private_domain",
    "tmall": "marketplace",
    "jd": "marketplace",
    "douyin": "marketplace",
    "youzan": "marketplace",
}
ONLINE_CHANNELS = frozenset(c for c, kind in CHANNELS.items() if kind != "offline")

brand_groups = Table(
    "brand_groups",
    metadata,
    Column("group_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

channels = Table(
    "channels",
    metadata,
    Column("channel_id", String(32), primary_key=True),
    Column("kind", String(32), nullable=False),
)

brands = Table(
    "brands",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("brand_id", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    PrimaryKeyConstraint("group_id", "brand_id"),
    ForeignKeyConstraint(["group_id"], ["brand_groups.group_id"]),
)

stores = Table(
    "stores",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("store_id", String(64), nullable=False),
    Column("brand_id", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("city", String(64), nullable=False),
    Column("region", String(64)),
    Column("kind", String(16), nullable=False, server_default="store"),
    Column("opened_at", DateTime),
    PrimaryKeyConstraint("group_id", "store_id"),
    ForeignKeyConstraint(["group_id", "brand_id"], ["brands.group_id", "brands.brand_id"]),
)

products = Table(
    "products",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("sku", String(64), nullable=False),
    Column("brand_id", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("category", String(64), nullable=False),
    Column("list_price_fen", Integer, nullable=False),
    PrimaryKeyConstraint("group_id", "sku"),
    ForeignKeyConstraint(["group_id", "brand_id"], ["brands.group_id", "brands.brand_id"]),
)

guides = Table(
    "guides",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("guide_id", String(64), nullable=False),
    Column("store_id", String(64), nullable=False),
    # A work alias ("小王"), not the legal name: staff names are personal data too.
    Column("alias", String(64), nullable=False),
    Column("hired_at", DateTime),
    PrimaryKeyConstraint("group_id", "guide_id"),
    ForeignKeyConstraint(["group_id", "store_id"], ["stores.group_id", "stores.store_id"]),
)
