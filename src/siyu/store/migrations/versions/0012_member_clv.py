"""member CLV: each buyer's 12-month CLV, written back with the snapshot for the guides' tasks

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_clv",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("expected_purchases", sa.Float(), nullable=False),
        sa.Column("p_alive", sa.Float(), nullable=False),
        sa.Column("clv_fen", sa.BigInteger(), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("group_id", "member_id", name=op.f("pk_member_clv")),
    )


def downgrade() -> None:
    op.drop_table("member_clv")
