"""coupons: template versions, coupons keyed by member, append-only events, limit counters

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "coupon_templates",
        sa.Column("template_id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("template_id", name=op.f("pk_coupon_templates")),
        sa.UniqueConstraint(
            "group_id", "code", "version", name=op.f("uq_coupon_templates_group_id_code_version")
        ),
    )
    op.create_table(
        "coupons",
        sa.Column("coupon_id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("template_id", sa.BigInteger(), nullable=False),
        sa.Column("template_code", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("campaign", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("valid_from", sa.DateTime(), nullable=False),
        sa.Column("valid_until", sa.DateTime(), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=True),
        sa.Column("store_id", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("off_fen", sa.BigInteger(), nullable=True),
        sa.Column("redeemed_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('issued', 'redeemed', 'expired')", name=op.f("ck_coupons_status")
        ),
        sa.PrimaryKeyConstraint("coupon_id", name=op.f("pk_coupons")),
        sa.UniqueConstraint("group_id", "code", name=op.f("uq_coupons_group_id_code")),
    )
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.create_index(
            "ix_coupons_member", ["group_id", "member_id", "status", "valid_until"], unique=False
        )
        batch_op.create_index(
            "ix_coupons_expiry", ["group_id", "status", "valid_until"], unique=False
        )
        batch_op.create_index(
            "ix_coupons_template", ["group_id", "template_code", "status"], unique=False
        )
    op.create_table(
        "coupon_events",
        sa.Column("event_id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("coupon_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("template_code", sa.String(length=64), nullable=False),
        sa.Column("campaign", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=True),
        sa.Column("store_id", sa.String(length=64), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("off_fen", sa.BigInteger(), nullable=False),
        sa.Column("face_value_fen", sa.BigInteger(), nullable=False),
        sa.Column("cost_fen", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=True),
        sa.Column("key_id", sa.BigInteger(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('issued', 'redeemed', 'returned', 'expired', 'moved')",
            name=op.f("ck_coupon_events_kind"),
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_coupon_events")),
        sa.UniqueConstraint(
            "group_id", "idempotency_key", name=op.f("uq_coupon_events_group_id_idempotency_key")
        ),
    )
    with op.batch_alter_table("coupon_events", schema=None) as batch_op:
        batch_op.create_index("ix_coupon_events_coupon", ["coupon_id", "event_id"], unique=False)
        batch_op.create_index(
            "ix_coupon_events_report", ["group_id", "template_code", "kind", "at"], unique=False
        )
        batch_op.create_index(
            "ix_coupon_events_member", ["group_id", "member_id", "event_id"], unique=False
        )
    op.create_table(
        "coupon_counters",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("counter", sa.String(length=160), nullable=False),
        sa.Column("member_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "group_id", "counter", "member_id", name=op.f("pk_coupon_counters")
        ),
    )


def downgrade() -> None:
    op.drop_table("coupon_counters")
    op.drop_table("coupon_events")
    op.drop_table("coupons")
    op.drop_table("coupon_templates")
