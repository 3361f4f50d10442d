"""guides: HQ-authored tasks (their documents, targets and hash-held-out controls, a
code and a script on guide_tasks) and training content with completions (issue #19)

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guide_task_campaigns",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("title_zh", sa.String(length=200), nullable=False),
        sa.Column("title_en", sa.String(length=200), nullable=False),
        sa.Column("target_kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("script", sa.Text(), nullable=False),
        sa.Column("training_code", sa.String(length=64), nullable=True),
        sa.Column("holdout_pct", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("assigned_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "target_kind IN ('segment', 'stage', 'funnel')",
            name=op.f("ck_guide_task_campaigns_target_kind_known"),
        ),
        sa.CheckConstraint(
            "holdout_pct >= 0 AND holdout_pct <= 50",
            name=op.f("ck_guide_task_campaigns_holdout_range"),
        ),
        sa.PrimaryKeyConstraint("group_id", "code", name=op.f("pk_guide_task_campaigns")),
    )
    op.create_table(
        "guide_task_targets",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("arm", sa.String(length=16), nullable=False),
        sa.Column("guide_id", sa.String(length=64), nullable=True),
        sa.Column("task_id", sa.BigInteger(), nullable=True),
        sa.Column("assigned_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "arm IN ('task', 'control', 'no_guide')", name=op.f("ck_guide_task_targets_arm_known")
        ),
        sa.PrimaryKeyConstraint(
            "group_id", "code", "member_id", name=op.f("pk_guide_task_targets")
        ),
    )
    op.create_table(
        "training_completions",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("guide_id", sa.String(length=64), nullable=False),
        sa.Column("completed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint(
            "group_id", "code", "guide_id", name=op.f("pk_training_completions")
        ),
    )
    op.create_table(
        "training_items",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("title_zh", sa.String(length=200), nullable=False),
        sa.Column("title_en", sa.String(length=200), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("for_class", sa.String(length=1), nullable=True),
        sa.Column("for_task", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "for_class IS NULL OR for_class IN ('A', 'B', 'C')",
            name=op.f("ck_training_items_class_known"),
        ),
        sa.PrimaryKeyConstraint("group_id", "code", name=op.f("pk_training_items")),
    )
    with op.batch_alter_table("guide_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("campaign_code", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("script", sa.Text(), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_guide_tasks_group_id_campaign_code_member_id"),
            ["group_id", "campaign_code", "member_id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("guide_tasks", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_guide_tasks_group_id_campaign_code_member_id"), type_="unique"
        )
        batch_op.drop_column("script")
        batch_op.drop_column("campaign_code")

    op.drop_table("training_items")
    op.drop_table("training_completions")
    op.drop_table("guide_task_targets")
    op.drop_table("guide_task_campaigns")
