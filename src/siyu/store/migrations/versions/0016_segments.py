"""stored segments: versioned rules, members with enters and leaves, evaluations

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "segment_evaluations",
        sa.Column(
            "evaluation_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("segment_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("as_of", sa.DateTime(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("engine", sa.String(length=16), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("entered", sa.BigInteger(), nullable=False),
        sa.Column("left", sa.BigInteger(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "trigger IN ('schedule', 'manual', 'event', 'define')",
            name=op.f("ck_segment_evaluations_evaluation_trigger"),
        ),
        sa.PrimaryKeyConstraint("evaluation_id", name=op.f("pk_segment_evaluations")),
    )
    with op.batch_alter_table("segment_evaluations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_segment_evaluations_segment", ["group_id", "segment_id", "at"], unique=False
        )

    op.create_table(
        "segment_member_history",
        sa.Column(
            "change_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("segment_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("change", sa.String(length=8), nullable=False),
        sa.Column("by", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "change IN ('enter', 'leave')", name=op.f("ck_segment_member_history_segment_change")
        ),
        sa.PrimaryKeyConstraint("change_id", name=op.f("pk_segment_member_history")),
    )
    with op.batch_alter_table("segment_member_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_segment_member_history_member", ["group_id", "member_id", "at"], unique=False
        )
        batch_op.create_index(
            "ix_segment_member_history_segment", ["group_id", "segment_id", "at"], unique=False
        )

    op.create_table(
        "segment_members",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("segment_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("member_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("set_by", sa.String(length=128), nullable=False),
        sa.Column("set_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "group_id", "segment_id", "member_id", name=op.f("pk_segment_members")
        ),
    )
    with op.batch_alter_table("segment_members", schema=None) as batch_op:
        batch_op.create_index("ix_segment_members_member", ["group_id", "member_id"], unique=False)

    op.create_table(
        "segment_versions",
        sa.Column("segment_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("segment_id", "version", name=op.f("pk_segment_versions")),
    )
    op.create_table(
        "segments",
        sa.Column(
            "segment_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name_zh", sa.String(length=128), nullable=False),
        sa.Column("name_en", sa.String(length=128), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("refresh", sa.String(length=16), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("archived_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "refresh IN ('nightly', 'hourly', 'manual', 'realtime')",
            name=op.f("ck_segments_segment_refresh"),
        ),
        sa.PrimaryKeyConstraint("segment_id", name=op.f("pk_segments")),
        sa.UniqueConstraint("group_id", "slug", name=op.f("uq_segments_group_id_slug")),
    )


def downgrade() -> None:
    op.drop_table("segments")
    op.drop_table("segment_versions")
    with op.batch_alter_table("segment_members", schema=None) as batch_op:
        batch_op.drop_index("ix_segment_members_member")

    op.drop_table("segment_members")
    with op.batch_alter_table("segment_member_history", schema=None) as batch_op:
        batch_op.drop_index("ix_segment_member_history_segment")
        batch_op.drop_index("ix_segment_member_history_member")

    op.drop_table("segment_member_history")
    with op.batch_alter_table("segment_evaluations", schema=None) as batch_op:
        batch_op.drop_index("ix_segment_evaluations_segment")

    op.drop_table("segment_evaluations")
