"""prize pools: pools with a seed commitment, prizes as inventory items, member
counters, the append-only draw log

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "prize_pools",
        sa.Column("pool_id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name_zh", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=False),
        sa.Column("claim_until", sa.DateTime(), nullable=False),
        sa.Column("entry", sa.String(length=16), nullable=False),
        sa.Column("scenes", sa.Text(), nullable=True),
        sa.Column("min_paid_fen", sa.BigInteger(), nullable=True),
        sa.Column("points", sa.BigInteger(), nullable=True),
        sa.Column("per_member", sa.Integer(), nullable=False),
        sa.Column("seed_sha256", sa.String(length=64), nullable=False),
        sa.Column("seed", sa.String(length=128), nullable=False),
        sa.Column("revealed_at", sa.DateTime(), nullable=True),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "entry IN ('free', 'scan', 'purchase', 'points')", name=op.f("ck_prize_pools_entry")
        ),
        sa.PrimaryKeyConstraint("pool_id", name=op.f("pk_prize_pools")),
        sa.UniqueConstraint("group_id", "code", name=op.f("uq_prize_pools_group_id_code")),
    )
    op.create_table(
        "prize_pool_prizes",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("pool_code", sa.String(length=64), nullable=False),
        sa.Column("prize_code", sa.String(length=64), nullable=False),
        sa.Column("name_zh", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("odds_ppm", sa.Integer(), nullable=False),
        sa.Column("units", sa.BigInteger(), nullable=False),
        sa.Column("awarded", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "awarded >= 0 AND awarded <= units",
            name=op.f("ck_prize_pool_prizes_never_over_awarded"),
        ),
        sa.PrimaryKeyConstraint(
            "group_id", "pool_code", "prize_code", name=op.f("pk_prize_pool_prizes")
        ),
    )
    op.create_table(
        "prize_pool_entrants",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("pool_code", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("draws", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "group_id", "pool_code", "member_id", name=op.f("pk_prize_pool_entrants")
        ),
    )
    op.create_table(
        "prize_draws",
        sa.Column("draw_id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("pool_code", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("request_sha256", sa.String(length=64), nullable=False),
        sa.Column("entry", sa.String(length=16), nullable=False),
        sa.Column("scene", sa.String(length=64), nullable=True),
        sa.Column("order_id", sa.String(length=128), nullable=True),
        sa.Column("posting_id", sa.BigInteger(), nullable=True),
        sa.Column("random_hex", sa.String(length=64), nullable=False),
        sa.Column("roll", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("prize_code", sa.String(length=64), nullable=True),
        sa.Column("sku", sa.String(length=64), nullable=True),
        sa.Column("location_id", sa.String(length=64), nullable=True),
        sa.Column("claim_code", sa.String(length=16), nullable=True),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("claimed_store_id", sa.String(length=64), nullable=True),
        sa.Column("claim_key", sa.String(length=200), nullable=True),
        sa.Column("key_id", sa.BigInteger(), nullable=True),
        sa.Column("drawn_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('won', 'no_prize', 'sold_out')", name=op.f("ck_prize_draws_outcome")
        ),
        sa.PrimaryKeyConstraint("draw_id", name=op.f("pk_prize_draws")),
        sa.UniqueConstraint(
            "group_id", "idempotency_key", name=op.f("uq_prize_draws_group_id_idempotency_key")
        ),
        sa.UniqueConstraint(
            "group_id", "claim_code", name=op.f("uq_prize_draws_group_id_claim_code")
        ),
        sa.UniqueConstraint(
            "group_id",
            "pool_code",
            "order_id",
            name=op.f("uq_prize_draws_group_id_pool_code_order_id"),
        ),
    )
    with op.batch_alter_table("prize_draws", schema=None) as batch_op:
        batch_op.create_index(
            "ix_prize_draws_member", ["group_id", "pool_code", "member_id", "draw_id"], unique=False
        )
        batch_op.create_index(
            "ix_prize_draws_pool", ["group_id", "pool_code", "draw_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("prize_draws")
    op.drop_table("prize_pool_entrants")
    op.drop_table("prize_pool_prizes")
    op.drop_table("prize_pools")
