"""tags: tag definitions, the members holding each tag, and every enter and leave

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tags",
        sa.Column("tag_id", _ID, autoincrement=True, nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name_zh", sa.String(length=128), nullable=False),
        sa.Column("name_en", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("definition", sa.Text(), server_default="{}", nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("refresh", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("archived_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('automatic', 'manual', 'imported')", name=op.f("ck_tags_kind")
        ),
        sa.CheckConstraint(
            "refresh IN ('nightly', 'hourly', 'manual', 'on_import')",
            name=op.f("ck_tags_refresh"),
        ),
        sa.PrimaryKeyConstraint("tag_id", name=op.f("pk_tags")),
        sa.UniqueConstraint("group_id", "slug", name=op.f("uq_tags_group_id_slug")),
    )
    op.create_table(
        "member_tags",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("tag_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("member_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("value", sa.String(length=256), nullable=True),
        sa.Column("set_by", sa.String(length=128), nullable=False),
        sa.Column("set_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("group_id", "tag_id", "member_id", name=op.f("pk_member_tags")),
    )
    with op.batch_alter_table("member_tags", schema=None) as batch_op:
        batch_op.create_index("ix_member_tags_member", ["group_id", "member_id"], unique=False)
    op.create_table(
        "member_tag_history",
        sa.Column("change_id", _ID, autoincrement=True, nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("tag_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("change", sa.String(length=8), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=True),
        sa.Column("by", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "change IN ('enter', 'leave', 'value')", name=op.f("ck_member_tag_history_change")
        ),
        sa.PrimaryKeyConstraint("change_id", name=op.f("pk_member_tag_history")),
    )
    with op.batch_alter_table("member_tag_history", schema=None) as batch_op:
        batch_op.create_index(
            "ix_member_tag_history_member", ["group_id", "member_id", "at"], unique=False
        )
        batch_op.create_index(
            "ix_member_tag_history_tag", ["group_id", "tag_id", "at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("member_tag_history", schema=None) as batch_op:
        batch_op.drop_index("ix_member_tag_history_tag")
        batch_op.drop_index("ix_member_tag_history_member")
    op.drop_table("member_tag_history")
    with op.batch_alter_table("member_tags", schema=None) as batch_op:
        batch_op.drop_index("ix_member_tags_member")
    op.drop_table("member_tags")
    op.drop_table("tags")
