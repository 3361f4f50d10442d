"""guides: A/B/C class rules (versioned) and each guide's class per period, with the
metrics it was decided on (issue #19)

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guide_class_rules",
        sa.Column(
            "rule_id",
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
        sa.PrimaryKeyConstraint("rule_id", name=op.f("pk_guide_class_rules")),
        sa.UniqueConstraint(
            "group_id",
            "code",
            "version",
            name=op.f("uq_guide_class_rules_group_id_code_version"),
        ),
    )
    op.create_table(
        "guide_classes",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("guide_id", sa.String(length=64), nullable=False),
        sa.Column("period_start", sa.DateTime(), nullable=False),
        sa.Column("period_end", sa.DateTime(), nullable=False),
        sa.Column("guide_class", sa.String(length=1), nullable=False),
        sa.Column("spam_risk", sa.Integer(), nullable=False),
        sa.Column("metrics", sa.Text(), nullable=False),
        sa.Column("rule_id", sa.BigInteger(), nullable=False),
        sa.Column("rules_version", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "guide_class IN ('A', 'B', 'C')", name=op.f("ck_guide_classes_class_known")
        ),
        sa.PrimaryKeyConstraint(
            "group_id", "guide_id", "period_start", "period_end", name=op.f("pk_guide_classes")
        ),
    )
    with op.batch_alter_table("guide_classes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_guide_classes_period", ["group_id", "period_end", "period_start"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("guide_classes", schema=None) as batch_op:
        batch_op.drop_index("ix_guide_classes_period")
    op.drop_table("guide_classes")
    op.drop_table("guide_class_rules")
