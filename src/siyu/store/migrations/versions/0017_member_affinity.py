"""member affinity: each member's affinity score, written by the tags refresh for rules

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_affinity",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("score_e4", sa.BigInteger(), nullable=False),
        sa.Column("rules_version", sa.BigInteger(), nullable=False),
        sa.Column("as_of", sa.DateTime(), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("group_id", "member_id", name=op.f("pk_member_affinity")),
    )


def downgrade() -> None:
    op.drop_table("member_affinity")
