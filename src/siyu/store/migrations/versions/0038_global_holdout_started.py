"""campaigns: when the global holdout's current members began to be held out (issue #18)

The holdout's long-run report (`experiments/holdout_effect.py`) reads the months since
then as the holdout's and the months before as a check of the split (both sides treated
alike). It is set when the share goes from 0 to more, and again when the share is raised:
the members a raise adds were treated until then. Lowering the share keeps it: those still
held out were held out all along. Existing holdouts take their last change as the start.

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0038"
down_revision = "0037"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("global_holdouts") as batch_op:
        batch_op.add_column(sa.Column("started_at", sa.DateTime(), nullable=True))
    op.execute("UPDATE global_holdouts SET started_at = updated_at WHERE share_bp > 0")


def downgrade() -> None:
    with op.batch_alter_table("global_holdouts") as batch_op:
        batch_op.drop_column("started_at")
