"""identity scopes: an identifier is unique within its scope (a card in its brand, an
openid in its app), so the same value issued twice is two identities

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("scope", sa.String(length=64), server_default="", nullable=False)
        )
    # A card's scope is the brand that issued it; other existing identities keep the
    # default scope '' (a card stored without its brand stays in '' too).
    op.execute(
        "UPDATE identities SET scope = brand_id WHERE type = 'card' AND brand_id IS NOT NULL"
    )
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.drop_constraint("uq_identities_group_id_type_value_key", type_="unique")
        batch_op.create_unique_constraint(
            op.f("uq_identities_group_id_type_value_key_scope"),
            ["group_id", "type", "value_key", "scope"],
        )


def downgrade() -> None:
    # Two identities that differ only in scope cannot go back to one row each: the
    # downgrade refuses (the unique constraint fails) rather than merge two people.
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.drop_constraint("uq_identities_group_id_type_value_key_scope", type_="unique")
        batch_op.create_unique_constraint(
            op.f("uq_identities_group_id_type_value_key"), ["group_id", "type", "value_key"]
        )
        batch_op.drop_column("scope")
