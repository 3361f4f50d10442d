"""probabilistic matching: member profile fields it compares, evidence links, the review
queue, the trained models and the blocking keys of incremental matching

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("given_name_enc", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("family_name_enc", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("address_enc", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("postcode", sa.String(length=16), nullable=True))
    with op.batch_alter_table("identity_links", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), server_default="account", nullable=False)
        )
    op.create_table(
        "match_reviews",
        sa.Column("review_id", _ID, autoincrement=True, nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("member_a", sa.BigInteger(), nullable=False),
        sa.Column("member_b", sa.BigInteger(), nullable=False),
        sa.Column("match_weight", sa.Float(), nullable=False),
        sa.Column("match_probability", sa.Float(), nullable=False),
        sa.Column("field_weights", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("model_id", sa.BigInteger(), nullable=True),
        sa.Column("merge_id", sa.BigInteger(), nullable=True),
        sa.Column("detected_at", sa.DateTime(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("decided_by", sa.String(length=64), nullable=True),
        sa.CheckConstraint("member_a < member_b", name=op.f("ck_match_reviews_pair_ordered")),
        sa.CheckConstraint(
            "status IN ('pending', 'accepted', 'rejected', 'merged', 'undone')",
            name=op.f("ck_match_reviews_status_known"),
        ),
        sa.PrimaryKeyConstraint("review_id", name=op.f("pk_match_reviews")),
        sa.UniqueConstraint(
            "group_id",
            "member_a",
            "member_b",
            name=op.f("uq_match_reviews_group_id_member_a_member_b"),
        ),
    )
    with op.batch_alter_table("match_reviews", schema=None) as batch_op:
        batch_op.create_index(
            "ix_match_reviews_queue", ["group_id", "status", "match_weight"], unique=False
        )
    op.create_table(
        "match_models",
        sa.Column("model_id", _ID, autoincrement=True, nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("engine", sa.String(length=16), nullable=False),
        sa.Column("settings_json", sa.Text(), nullable=False),
        sa.Column("auto_threshold", sa.Float(), nullable=False),
        sa.Column("review_threshold", sa.Float(), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("trained_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("model_id", name=op.f("pk_match_models")),
    )
    with op.batch_alter_table("match_models", schema=None) as batch_op:
        batch_op.create_index("ix_match_models_group", ["group_id", "model_id"], unique=False)
    op.create_table(
        "member_match_keys",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "group_id", "rule", "key", "member_id", name=op.f("pk_member_match_keys")
        ),
    )
    with op.batch_alter_table("member_match_keys", schema=None) as batch_op:
        batch_op.create_index("ix_member_match_keys_member", ["member_id"], unique=False)


def downgrade() -> None:
    op.drop_table("member_match_keys")
    op.drop_table("match_models")
    op.drop_table("match_reviews")
    with op.batch_alter_table("identity_links", schema=None) as batch_op:
        batch_op.drop_column("kind")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("postcode")
        batch_op.drop_column("address_enc")
        batch_op.drop_column("family_name_enc")
        batch_op.drop_column("given_name_enc")
