"""guides: commission accruals as summary postings (issue #19: one ledger posting per
guide, store and month a run, the per-order amounts in `commission_accruals`)

An accrual's business time (the order's payment) was its own posting's; with one posting
for many orders it is the row's, `accrued_at`, backfilled from the posting each row points
at (before this revision, one posting per order).

The sub-ledgers' indexes are what their readers need and no more, since a month's rows
are written by the million and each index is most of the insert's time (10M bench, a
copy of a month's 1.6M accrual rows: 30 s with four indexes, 18.9 s with three, 8.3 s
with the key and one): a posting's rows by `posting_id` alone (ids are unique across
groups, and the key is a quarter of (group, posting)), for both sub-ledgers, through which
a guide's accruals are found too (its postings by the ledger's index by holder). The
index on (group, freeze_until) goes: the release job reads every accrual not yet
released, most of the table, by a scan.

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("commission_accruals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("accrued_at", sa.DateTime(), nullable=True))
    # a row whose posting is gone (never in a store the jobs wrote) keeps its own time
    op.execute(
        """UPDATE commission_accruals SET accrued_at = COALESCE((SELECT p.business_at
             FROM ledger_postings p WHERE p.posting_id = commission_accruals.posting_id),
             created_at)"""
    )
    with op.batch_alter_table("commission_accruals", schema=None) as batch_op:
        batch_op.alter_column("accrued_at", existing_type=sa.DateTime(), nullable=False)
        batch_op.drop_index("ix_commission_accruals_freeze")
        batch_op.create_index("ix_commission_accruals_posting", ["posting_id"], unique=False)
    with op.batch_alter_table("commission_releases", schema=None) as batch_op:
        batch_op.drop_index("ix_commission_releases_posting")
        batch_op.create_index("ix_commission_releases_posting", ["posting_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("commission_releases", schema=None) as batch_op:
        batch_op.drop_index("ix_commission_releases_posting")
        batch_op.create_index(
            "ix_commission_releases_posting", ["group_id", "posting_id"], unique=False
        )
    with op.batch_alter_table("commission_accruals", schema=None) as batch_op:
        batch_op.drop_index("ix_commission_accruals_posting")
        batch_op.create_index(
            "ix_commission_accruals_freeze", ["group_id", "freeze_until"], unique=False
        )
        batch_op.drop_column("accrued_at")
