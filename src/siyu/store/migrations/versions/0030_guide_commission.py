"""guide commission: a ledger account number per guide, and what each order's accrual
decided (rule, basis, end of its freeze); the money itself is on the ledger

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "guide_accounts",
        sa.Column("account_no", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("guide_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("account_no", name=op.f("pk_guide_accounts")),
        sa.UniqueConstraint(
            "group_id", "guide_id", name=op.f("uq_guide_accounts_group_id_guide_id")
        ),
    )
    op.create_table(
        "commission_accruals",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("guide_id", sa.String(length=64), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=True),
        sa.Column("rule", sa.String(length=64), nullable=True),
        sa.Column("rules_version", sa.Integer(), nullable=False),
        sa.Column("basis_fen", sa.BigInteger(), nullable=False),
        sa.Column("attribution", sa.String(length=16), nullable=False),
        sa.Column("commission_fen", sa.BigInteger(), nullable=False),
        sa.Column("freeze_until", sa.DateTime(), nullable=False),
        sa.Column("posting_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "commission_fen >= 0",
            name=op.f("ck_commission_accruals_commission_not_negative"),
        ),
        sa.PrimaryKeyConstraint("group_id", "order_id", name=op.f("pk_commission_accruals")),
    )
    with op.batch_alter_table("commission_accruals", schema=None) as batch_op:
        batch_op.create_index(
            "ix_commission_accruals_freeze", ["group_id", "freeze_until"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("commission_accruals", schema=None) as batch_op:
        batch_op.drop_index("ix_commission_accruals_freeze")
    op.drop_table("commission_accruals")
    op.drop_table("guide_accounts")
