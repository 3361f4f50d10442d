"""receipts: reward rules by paid amount (versions), uploaded receipts keyed by member,
the claim on each (store, receipt number)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "receipt_rules",
        sa.Column("rule_id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("rule_id", name=op.f("pk_receipt_rules")),
        sa.UniqueConstraint(
            "group_id", "code", "version", name=op.f("uq_receipt_rules_group_id_code_version")
        ),
    )
    op.create_table(
        "receipts",
        sa.Column("receipt_id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("rule_code", sa.String(length=64), nullable=False),
        sa.Column("rule_id", sa.BigInteger(), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("receipt_no", sa.String(length=64), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("purchased_at", sa.DateTime(), nullable=False),
        sa.Column("image_ref", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reasons", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=True),
        sa.Column("reviewer", sa.String(length=64), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(), nullable=True),
        sa.Column("tier_min_paid_fen", sa.BigInteger(), nullable=True),
        sa.Column("reward_points", sa.BigInteger(), nullable=True),
        sa.Column("posting_id", sa.BigInteger(), nullable=True),
        sa.Column("reward_coupon", sa.String(length=64), nullable=True),
        sa.Column("coupon_id", sa.BigInteger(), nullable=True),
        sa.Column("rewarded_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'accepted', 'rejected', 'duplicate')",
            name=op.f("ck_receipts_status"),
        ),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_receipts_amount_positive")),
        sa.PrimaryKeyConstraint("receipt_id", name=op.f("pk_receipts")),
        sa.UniqueConstraint(
            "group_id", "idempotency_key", name=op.f("uq_receipts_group_id_idempotency_key")
        ),
    )
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_receipts_member", ["group_id", "member_id", "receipt_id"], unique=False
        )
        batch_op.create_index(
            "ix_receipts_queue", ["group_id", "status", "store_id", "receipt_id"], unique=False
        )
        batch_op.create_index(
            "ix_receipts_near", ["group_id", "store_id", "amount_fen", "purchased_at"], unique=False
        )
    op.create_table(
        "receipt_numbers",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("receipt_no", sa.String(length=64), nullable=False),
        sa.Column("receipt_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint(
            "group_id", "store_id", "receipt_no", name=op.f("pk_receipt_numbers")
        ),
    )


def downgrade() -> None:
    op.drop_table("receipt_numbers")
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.drop_index("ix_receipts_near")
        batch_op.drop_index("ix_receipts_queue")
        batch_op.drop_index("ix_receipts_member")
    op.drop_table("receipts")
    op.drop_table("receipt_rules")
