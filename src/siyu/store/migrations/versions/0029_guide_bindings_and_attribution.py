"""guides: a member's own guide with history (bindings, departures), and distribution:
shares, touches and the attribution of orders to guides (issue #19)

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guide_bindings",
        sa.Column(
            "binding_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("guide_id", sa.String(length=64), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=True),
        sa.Column("rule", sa.String(length=16), nullable=False),
        sa.Column("bound_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("ended_reason", sa.String(length=16), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column("key_id", sa.BigInteger(), nullable=True),
        sa.Column("merge_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "ended_reason IS NULL OR ended_reason IN ('rebound', 'guide_left', 'merged')",
            name=op.f("ck_guide_bindings_ended_reason"),
        ),
        sa.CheckConstraint(
            "rule IN ('hq', 'scene', 'wecom', 'first_purchase', 'store', 'inherited')",
            name=op.f("ck_guide_bindings_rule"),
        ),
        sa.CheckConstraint(
            "(ended_at IS NULL) = (ended_reason IS NULL)",
            name=op.f("ck_guide_bindings_ended_with_reason"),
        ),
        sa.PrimaryKeyConstraint("binding_id", name=op.f("pk_guide_bindings")),
    )
    with op.batch_alter_table("guide_bindings", schema=None) as batch_op:
        batch_op.create_index("ix_guide_bindings_guide", ["group_id", "guide_id"], unique=False)
        batch_op.create_index("ix_guide_bindings_member", ["group_id", "member_id"], unique=False)
        batch_op.create_index(
            "uq_guide_bindings_live",
            ["group_id", "member_id"],
            unique=True,
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        )

    op.create_table(
        "guide_departures",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("guide_id", sa.String(length=64), nullable=False),
        sa.Column("left_at", sa.DateTime(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("group_id", "guide_id", name=op.f("pk_guide_departures")),
    )
    op.create_table(
        "guide_shares",
        sa.Column(
            "share_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("share_code", sa.String(length=64), nullable=False),
        sa.Column("guide_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('product', 'campaign', 'page')", name=op.f("ck_guide_shares_kind")
        ),
        sa.PrimaryKeyConstraint("share_id", name=op.f("pk_guide_shares")),
        sa.UniqueConstraint(
            "group_id", "share_code", name=op.f("uq_guide_shares_group_id_share_code")
        ),
    )
    with op.batch_alter_table("guide_shares", schema=None) as batch_op:
        batch_op.create_index("ix_guide_shares_guide", ["group_id", "guide_id"], unique=False)

    op.create_table(
        "order_attributions",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=True),
        sa.Column("guide_id", sa.String(length=64), nullable=False),
        sa.Column("basis", sa.String(length=16), nullable=False),
        sa.Column("share_id", sa.BigInteger(), nullable=True),
        sa.Column("touch_id", sa.BigInteger(), nullable=True),
        sa.Column("touched_at", sa.DateTime(), nullable=True),
        sa.Column("binding_id", sa.BigInteger(), nullable=True),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("protect_days", sa.Integer(), nullable=False),
        sa.Column("ordered_at", sa.DateTime(), nullable=False),
        sa.Column("attributed_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "basis IN ('share', 'till', 'own_guide')", name=op.f("ck_order_attributions_basis")
        ),
        sa.PrimaryKeyConstraint("group_id", "order_id", name=op.f("pk_order_attributions")),
    )
    with op.batch_alter_table("order_attributions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_order_attributions_guide", ["group_id", "guide_id", "ordered_at"], unique=False
        )
        batch_op.create_index(
            "ix_order_attributions_time", ["group_id", "ordered_at"], unique=False
        )

    op.create_table(
        "share_touches",
        sa.Column(
            "touch_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("share_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=True),
        sa.Column("identity_id", sa.BigInteger(), nullable=True),
        sa.Column("touched_at", sa.DateTime(), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "member_id IS NOT NULL OR identity_id IS NOT NULL", name=op.f("ck_share_touches_who")
        ),
        sa.PrimaryKeyConstraint("touch_id", name=op.f("pk_share_touches")),
        sa.UniqueConstraint(
            "group_id", "idempotency_key", name=op.f("uq_share_touches_group_id_idempotency_key")
        ),
    )
    with op.batch_alter_table("share_touches", schema=None) as batch_op:
        batch_op.create_index("ix_share_touches_time", ["group_id", "touched_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("share_touches", schema=None) as batch_op:
        batch_op.drop_index("ix_share_touches_time")

    op.drop_table("share_touches")
    with op.batch_alter_table("order_attributions", schema=None) as batch_op:
        batch_op.drop_index("ix_order_attributions_time")
        batch_op.drop_index("ix_order_attributions_guide")

    op.drop_table("order_attributions")
    with op.batch_alter_table("guide_shares", schema=None) as batch_op:
        batch_op.drop_index("ix_guide_shares_guide")

    op.drop_table("guide_shares")
    op.drop_table("guide_departures")
    with op.batch_alter_table("guide_bindings", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_guide_bindings_live",
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        )
        batch_op.drop_index("ix_guide_bindings_member")
        batch_op.drop_index("ix_guide_bindings_guide")

    op.drop_table("guide_bindings")
