"""guides: HQ's programme of stages, each with the metrics guides are measured on while it
is in force (a versioned document, issue #19)

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guide_programmes",
        sa.Column(
            "programme_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("programme_id", name=op.f("pk_guide_programmes")),
        sa.UniqueConstraint(
            "group_id",
            "code",
            "version",
            name=op.f("uq_guide_programmes_group_id_code_version"),
        ),
    )


def downgrade() -> None:
    op.drop_table("guide_programmes")
