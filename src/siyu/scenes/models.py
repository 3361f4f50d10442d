"""QR scenes: the registry of codes, the scans recorded against them, and the counter
that keeps a brand group under WeChat's permanent-code limit.

Keyed like the other tables (no foreign keys; the service writes every reference). A
scene is unique in its brand group; a scan is keyed by `member_id` for distribution and
by an idempotency key unique in the group, so a channel that delivers one scan twice
records it once. `first_touch` marks the scan that acquired a new member; `flag` is set
when the code was past its life (`expired`, `archived`) at the time of the scan.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from siyu.store.metadata import BigId, metadata

KINDS = ("temporary", "permanent")
FLAGS = ("expired", "archived")
# What a code points at: each optional, each a plain string of at most 64 characters.
TARGETS = ("store_id", "guide_id", "campaign", "poster", "counter")

qr_scenes = Table(
    "qr_scenes",
    metadata,
    Column("scene_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("scene", String(64), nullable=False),  # WeChat's scene_str
    Column("kind", String(16), nullable=False),
    Column("expires_at", DateTime),  # temporary codes only
    Column("store_id", String(64)),
    Column("guide_id", String(64)),
    Column("campaign", String(64)),
    Column("poster", String(64)),
    Column("counter", String(64)),
    Column("created_at", DateTime, nullable=False),
    Column("key_id", BigInteger),
    Column("archived_at", DateTime),
    CheckConstraint("kind IN ('temporary', 'permanent')", name="kind"),
    CheckConstraint(
        "(kind = 'temporary' AND expires_at IS NOT NULL)"
        " OR (kind = 'permanent' AND expires_at IS NULL)",
        name="expiry",
    ),
    UniqueConstraint("group_id", "scene"),
    Index("ix_qr_scenes_campaign", "group_id", "campaign"),
)

qr_scans = Table(
    "qr_scans",
    metadata,
    Column("scan_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("idempotency_key", String(200), nullable=False),
    Column("scene", String(64), nullable=False),
    Column("member_id", BigInteger),  # null: a visitor not (yet) a member
    Column("identity_id", BigInteger),  # the identifier the channel saw (openid ...)
    Column("referrer_member_id", BigInteger),  # the member who shared the code
    Column("first_touch", Boolean, nullable=False),
    Column("flag", String(16)),
    Column("at", DateTime, nullable=False),
    Column("key_id", BigInteger),
    CheckConstraint("flag IS NULL OR flag IN ('expired', 'archived')", name="flag"),
    UniqueConstraint("group_id", "idempotency_key"),
    Index("ix_qr_scans_scene", "group_id", "scene", "at"),
    Index("ix_qr_scans_member", "group_id", "member_id"),
    Index("ix_qr_scans_referrer", "group_id", "referrer_member_id"),
)

# Codes counted against a platform limit, per brand group ('permanent': every permanent
# code ever created; WeChat never takes one back, so archiving does not give a slot back).
qr_scene_counters = Table(
    "qr_scene_counters",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("counter", String(32), nullable=False),
    Column("used", BigInteger, nullable=False),
    PrimaryKeyConstraint("group_id", "counter"),
)
