"""campaign lotteries: a prize pool whose entry is being granted a campaign's incentives
(entry 'campaign', naming the campaign)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("prize_pools", schema=None) as batch_op:
        batch_op.add_column(sa.Column("campaign", sa.String(length=64), nullable=True))
        batch_op.drop_constraint(op.f("ck_prize_pools_entry"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_prize_pools_entry"),
            "entry IN ('free', 'scan', 'purchase', 'points', 'campaign')",
        )


def downgrade() -> None:
    # A campaign pool has no entry rule to go back to: the downgrade refuses (the CHECK
    # fails) rather than turn it into a free one.
    with op.batch_alter_table("prize_pools", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_prize_pools_entry"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_prize_pools_entry"), "entry IN ('free', 'scan', 'purchase', 'points')"
        )
        batch_op.drop_column("campaign")
