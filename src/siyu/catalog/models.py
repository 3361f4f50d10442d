"""Reference tables. Keys are the brand's own codes, scoped by brand group."""

from __future__ import annotations

from collections.abc import Mapping, Set

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    ForeignKeyConstraint,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    insert,
    inspect,
    select,
    update,
)

from siyu.channels.registry import CodesView, KindsView
from siyu.store.metadata import metadata

# Channel code -> kind ("offline" sells at the till, "private_domain" is the brand's own
# reach, "marketplace" is a platform's), read live from the channel registry: a channel a
# plugin registers appears here as a built-in does (siyu.channels).
CHANNELS: Mapping[str, str] = KindsView()
ONLINE_CHANNELS: Set[str] = CodesView(lambda channel: channel.kind != "offline")

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


def after_migrate(conn: Connection) -> None:
    """Called by the store after every upgrade (store/migrations/models_registry.py): a
    channel registered after migration 0001 seeded the built-ins gets its row."""
    if inspect(conn).has_table("channels"):  # not after a downgrade to base
        sync_channels(conn)


def sync_channels(conn: Connection) -> int:
    """Give every registered channel its `channels` row, with its kind; idempotent, returns
    the rows written. Rows of channels no longer registered stay (orders name them)."""
    stored = {row.channel_id: row.kind for row in conn.execute(select(channels))}
    written = 0
    for code, kind in CHANNELS.items():
        if code not in stored:
            conn.execute(insert(channels).values(channel_id=code, kind=kind))
        elif stored[code] != kind:
            conn.execute(update(channels).where(channels.c.channel_id == code).values(kind=kind))
        else:
            continue
        written += 1
    return written


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
