"""delivery receipts: messages found by the platform's reference, and receipts parked
until their message is settled

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("send_recipients", schema=None) as batch_op:
        batch_op.create_index(
            "ix_send_recipients_provider_ref",
            ["group_id", "provider_ref"],
            unique=False,
            postgresql_where=sa.text("provider_ref IS NOT NULL"),
        )
    op.create_table(
        "parked_receipts",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("provider_ref", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.String(length=300), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('delivered', 'failed', 'read', 'clicked')",
            name=op.f("ck_parked_receipts_kind"),
        ),
        sa.PrimaryKeyConstraint("group_id", "external_id", name=op.f("pk_parked_receipts")),
    )
    with op.batch_alter_table("parked_receipts", schema=None) as batch_op:
        batch_op.create_index("ix_parked_receipts_ref", ["group_id", "provider_ref"])
        batch_op.create_index("ix_parked_receipts_received", ["group_id", "received_at"])


def downgrade() -> None:
    with op.batch_alter_table("parked_receipts", schema=None) as batch_op:
        batch_op.drop_index("ix_parked_receipts_received")
        batch_op.drop_index("ix_parked_receipts_ref")
    op.drop_table("parked_receipts")
    with op.batch_alter_table("send_recipients", schema=None) as batch_op:
        batch_op.drop_index("ix_send_recipients_provider_ref")
