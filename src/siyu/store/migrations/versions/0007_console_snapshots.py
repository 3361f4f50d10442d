"""analytics snapshots for the console; indexes for its member pages

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analytics_snapshots",
        sa.Column(
            "snapshot_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("as_of", sa.DateTime(), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("snapshot_id", name=op.f("pk_analytics_snapshots")),
    )
    with op.batch_alter_table("analytics_snapshots", schema=None) as batch_op:
        batch_op.create_index(
            "ix_analytics_snapshots_kind", ["group_id", "kind", "snapshot_id"], unique=False
        )
    # the console's lists of a guide's members; Member 360's refunds and merges
    for table in ("orders", "events"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(
                f"ix_{table}_guide",
                ["group_id", "guide_id", "member_id"],
                unique=False,
                sqlite_where=sa.text("guide_id IS NOT NULL"),
                postgresql_where=sa.text("guide_id IS NOT NULL"),
            )
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.create_index("ix_refunds_order", ["group_id", "order_id"], unique=False)
    with op.batch_alter_table("merges", schema=None) as batch_op:
        batch_op.create_index("ix_merges_survivor_id", ["survivor_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("merges", schema=None) as batch_op:
        batch_op.drop_index("ix_merges_survivor_id")
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_index("ix_refunds_order")
    for table in ("orders", "events"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(f"ix_{table}_guide")
    with op.batch_alter_table("analytics_snapshots", schema=None) as batch_op:
        batch_op.drop_index("ix_analytics_snapshots_kind")
    op.drop_table("analytics_snapshots")
