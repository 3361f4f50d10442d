"""messaging: the outbox's due index leads with the purpose (issue #18)

In quiet hours the outbox claims service messages only, so it reads one purpose's
waiting rows at a time (`outbox._DUE`); with (group, status, due_at) it would walk every
waiting marketing row of a send still going at 21:00 on each batch to find them.

Revision ID: 0037
Revises: 0036
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0037"
down_revision = "0036"
branch_labels = None
depends_on = None

TOUCHING = "status IN ('planned', 'deferred', 'retry', 'sent')"


def _due(columns: list[str]) -> None:
    op.drop_index("ix_send_recipients_due", table_name="send_recipients")
    op.create_index(
        "ix_send_recipients_due",
        "send_recipients",
        columns,
        postgresql_where=sa.text(TOUCHING),
    )


def upgrade() -> None:
    _due(["group_id", "purpose", "status", "due_at"])


def downgrade() -> None:
    _due(["group_id", "status", "due_at"])
