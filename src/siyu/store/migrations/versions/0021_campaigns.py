"""campaigns: the plan (a validated document) and each member's arm

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("campaign_id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("launched_at", sa.DateTime(), nullable=True),
        sa.Column("key_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('draft', 'launched', 'ended')", name=op.f("ck_campaigns_status")
        ),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("group_id", "code", name=op.f("uq_campaigns_group_id_code")),
    )
    op.create_table(
        "campaign_members",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("campaign_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("member_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("arm", sa.String(length=16), nullable=False),
        sa.Column("assigned_at", sa.DateTime(), nullable=False),
        sa.Column("granted_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("arm IN ('treatment', 'holdout')", name=op.f("ck_campaign_members_arm")),
        sa.PrimaryKeyConstraint(
            "group_id", "campaign_id", "member_id", name=op.f("pk_campaign_members")
        ),
    )
    with op.batch_alter_table("campaign_members", schema=None) as batch_op:
        batch_op.create_index("ix_campaign_members_member", ["group_id", "member_id"], unique=False)


def downgrade() -> None:
    op.drop_table("campaign_members")
    op.drop_table("campaigns")
