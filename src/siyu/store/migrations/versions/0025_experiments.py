"""experiments: the plan with its salt, each member's variant (kept across OneID merges),
and the group's global holdout

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("experiment_id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("salt", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
        sa.Column("key_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('draft', 'running', 'stopped')", name=op.f("ck_experiments_status")
        ),
        sa.PrimaryKeyConstraint("experiment_id", name=op.f("pk_experiments")),
        sa.UniqueConstraint("group_id", "code", name=op.f("uq_experiments_group_id_code")),
    )
    op.create_table(
        "experiment_members",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("experiment_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("member_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("variant", sa.String(length=64), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=True),
        sa.Column("assigned_at", sa.DateTime(), nullable=False),
        sa.Column("exposed_at", sa.DateTime(), nullable=True),
        sa.Column("merged_into", sa.BigInteger(), nullable=True),
        sa.Column("merged_by", sa.BigInteger(), nullable=True),
        sa.Column("inherited_by", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint(
            "group_id", "experiment_id", "member_id", name=op.f("pk_experiment_members")
        ),
    )
    with op.batch_alter_table("experiment_members", schema=None) as batch_op:
        batch_op.create_index(
            "ix_experiment_members_member", ["group_id", "member_id"], unique=False
        )
        batch_op.create_index(
            "ix_experiment_members_merged_by", ["group_id", "merged_by"], unique=False
        )
        batch_op.create_index(
            "ix_experiment_members_inherited_by", ["group_id", "inherited_by"], unique=False
        )
    op.create_table(
        "global_holdouts",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("share_bp", sa.Integer(), nullable=False),
        sa.Column("salt", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "share_bp >= 0 AND share_bp <= 5000", name=op.f("ck_global_holdouts_share_bp")
        ),
        sa.PrimaryKeyConstraint("group_id", name=op.f("pk_global_holdouts")),
    )


def downgrade() -> None:
    op.drop_table("global_holdouts")
    op.drop_table("experiment_members")
    op.drop_table("experiments")
