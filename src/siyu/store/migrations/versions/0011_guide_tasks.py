"""guide tasks: follow-up tasks with a state, and the log of who changed it and when

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guide_tasks",
        sa.Column(
            "task_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("guide_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("cycle", sa.String(length=64), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("expected_value_fen", sa.BigInteger(), nullable=False),
        sa.Column("urgency", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("last_order_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "state IN ('open', 'contacted', 'done', 'dismissed')",
            name=op.f("ck_guide_tasks_state_known"),
        ),
        sa.CheckConstraint(
            "expected_value_fen >= 0", name=op.f("ck_guide_tasks_value_not_negative")
        ),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_guide_tasks")),
        sa.UniqueConstraint(
            "group_id",
            "guide_id",
            "member_id",
            "kind",
            "cycle",
            name=op.f("uq_guide_tasks_group_id_guide_id_member_id_kind_cycle"),
        ),
    )
    with op.batch_alter_table("guide_tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_guide_tasks_rank",
            ["group_id", "guide_id", "state", "expected_value_fen"],
            unique=False,
        )
        batch_op.create_index("ix_guide_tasks_member", ["group_id", "member_id"], unique=False)

    op.create_table(
        "guide_task_events",
        sa.Column(
            "event_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("actor_key_id", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_guide_task_events")),
    )
    with op.batch_alter_table("guide_task_events", schema=None) as batch_op:
        batch_op.create_index("ix_guide_task_events_task", ["task_id", "event_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("guide_task_events", schema=None) as batch_op:
        batch_op.drop_index("ix_guide_task_events_task")
    op.drop_table("guide_task_events")
    with op.batch_alter_table("guide_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_guide_tasks_member")
        batch_op.drop_index("ix_guide_tasks_rank")
    op.drop_table("guide_tasks")
