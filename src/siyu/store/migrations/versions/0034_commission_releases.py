"""guides: commission releases as summary postings, the per-order amounts in a sub-ledger
(`commission_releases`, issue #19: one ledger posting per guide and release run)

The releases posted before this revision were one posting per order (key
'commission:<order>:release', reference the order): each becomes the row of its order,
pointing at its own posting, so an order released then is not released again and every
release posting still equals the sum of its rows.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "commission_releases",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("guide_id", sa.String(length=64), nullable=False),
        sa.Column("posting_id", sa.BigInteger(), nullable=True),
        sa.Column("released_fen", sa.BigInteger(), nullable=False),
        sa.Column("freeze_until", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "released_fen >= 0",
            name=op.f("ck_commission_releases_released_not_negative"),
        ),
        sa.CheckConstraint(
            "posting_id IS NOT NULL OR released_fen = 0",
            name=op.f("ck_commission_releases_posted_unless_zero"),
        ),
        sa.PrimaryKeyConstraint("group_id", "order_id", name=op.f("pk_commission_releases")),
    )
    with op.batch_alter_table("commission_releases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_commission_releases_posting", ["group_id", "posting_id"], unique=False
        )
    # bound, because text() would take ':release' in a literal for a parameter
    op.get_bind().execute(
        sa.text("""INSERT INTO commission_releases (group_id, order_id, guide_id, posting_id,
             released_fen, freeze_until, created_at)
           SELECT p.group_id, p.reference, a.guide_id, p.posting_id,
             COALESCE((SELECT SUM(e.amount) FROM ledger_entries e
                       WHERE e.posting_id = p.posting_id AND e.asset = 'cm_payable'), 0),
             a.freeze_until, p.created_at
           FROM ledger_postings p
           JOIN commission_accruals a ON a.group_id = p.group_id AND a.order_id = p.reference
           WHERE p.kind = 'cm_release' AND p.member_id < 0
             AND p.idempotency_key = 'commission:' || p.reference || :suffix"""),
        {"suffix": ":release"},
    )


def downgrade() -> None:
    with op.batch_alter_table("commission_releases", schema=None) as batch_op:
        batch_op.drop_index("ix_commission_releases_posting")
    op.drop_table("commission_releases")
