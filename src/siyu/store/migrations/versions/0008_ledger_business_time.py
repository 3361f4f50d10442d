"""ledger postings and entries carry their business time beside the recording time

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing rows happened, as far as anyone knows, when they were recorded.
    for table in ("ledger_postings", "ledger_entries"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("business_at", sa.DateTime(), nullable=True))
        op.execute(f"UPDATE {table} SET business_at = created_at")
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("business_at", existing_type=sa.DateTime(), nullable=False)
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_entries_member")
        batch_op.create_index(
            "ix_ledger_entries_member",
            ["group_id", "member_id", "business_at", "entry_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_entries_member")
        batch_op.create_index(
            "ix_ledger_entries_member", ["group_id", "member_id", "entry_id"], unique=False
        )
        batch_op.drop_column("business_at")
    with op.batch_alter_table("ledger_postings", schema=None) as batch_op:
        batch_op.drop_column("business_at")
