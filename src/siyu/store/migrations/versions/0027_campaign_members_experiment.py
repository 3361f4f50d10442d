"""campaign members enrolled by an experiment: `campaign_members.experiment_id` names the
experiment whose `campaign` variant put the member in the campaign's treatment (NULL: the
campaign's own launch or scan); the campaign's report leaves them out of its arms

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaign_members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("experiment_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaign_members", schema=None) as batch_op:
        batch_op.drop_column("experiment_id")
