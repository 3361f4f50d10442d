"""qr scenes: the registry of codes, their scans, the permanent-code counter

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "qr_scenes",
        sa.Column("scene_id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("scene", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("store_id", sa.String(length=64), nullable=True),
        sa.Column("guide_id", sa.String(length=64), nullable=True),
        sa.Column("campaign", sa.String(length=64), nullable=True),
        sa.Column("poster", sa.String(length=64), nullable=True),
        sa.Column("counter", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=True),
        sa.Column("archived_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("kind IN ('temporary', 'permanent')", name=op.f("ck_qr_scenes_kind")),
        sa.CheckConstraint(
            "(kind = 'temporary' AND expires_at IS NOT NULL)"
            " OR (kind = 'permanent' AND expires_at IS NULL)",
            name=op.f("ck_qr_scenes_expiry"),
        ),
        sa.PrimaryKeyConstraint("scene_id", name=op.f("pk_qr_scenes")),
        sa.UniqueConstraint("group_id", "scene", name=op.f("uq_qr_scenes_group_id_scene")),
    )
    with op.batch_alter_table("qr_scenes", schema=None) as batch_op:
        batch_op.create_index("ix_qr_scenes_campaign", ["group_id", "campaign"], unique=False)
    op.create_table(
        "qr_scans",
        sa.Column("scan_id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("scene", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=True),
        sa.Column("identity_id", sa.BigInteger(), nullable=True),
        sa.Column("referrer_member_id", sa.BigInteger(), nullable=True),
        sa.Column("first_touch", sa.Boolean(), nullable=False),
        sa.Column("flag", sa.String(length=16), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "flag IS NULL OR flag IN ('expired', 'archived')", name=op.f("ck_qr_scans_flag")
        ),
        sa.PrimaryKeyConstraint("scan_id", name=op.f("pk_qr_scans")),
        sa.UniqueConstraint(
            "group_id", "idempotency_key", name=op.f("uq_qr_scans_group_id_idempotency_key")
        ),
    )
    with op.batch_alter_table("qr_scans", schema=None) as batch_op:
        batch_op.create_index("ix_qr_scans_scene", ["group_id", "scene", "at"], unique=False)
        batch_op.create_index("ix_qr_scans_member", ["group_id", "member_id"], unique=False)
        batch_op.create_index(
            "ix_qr_scans_referrer", ["group_id", "referrer_member_id"], unique=False
        )
    op.create_table(
        "qr_scene_counters",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("counter", sa.String(length=32), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("group_id", "counter", name=op.f("pk_qr_scene_counters")),
    )


def downgrade() -> None:
    op.drop_table("qr_scene_counters")
    op.drop_table("qr_scans")
    op.drop_table("qr_scenes")
