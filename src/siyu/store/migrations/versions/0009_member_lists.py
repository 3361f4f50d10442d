"""member lists: each buyer's RFM scores and segment, written back with the snapshot

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_rfm",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("r", sa.Integer(), nullable=False),
        sa.Column("f", sa.Integer(), nullable=False),
        sa.Column("m", sa.Integer(), nullable=False),
        sa.Column("segment", sa.String(length=32), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("group_id", "member_id", name=op.f("pk_member_rfm")),
    )
    with op.batch_alter_table("member_rfm", schema=None) as batch_op:
        batch_op.create_index("ix_member_rfm_segment", ["group_id", "segment"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("member_rfm", schema=None) as batch_op:
        batch_op.drop_index("ix_member_rfm_segment")
    op.drop_table("member_rfm")
