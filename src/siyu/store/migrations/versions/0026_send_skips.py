"""send_skips: the members a planning skipped, one row per send, reason and block of
member ids (docs/architecture.md, "Skipped members as sets"); skipped rows of earlier
plannings are moved into it

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

ID_SET = sa.Text().with_variant(postgresql.ARRAY(sa.BigInteger()), "postgresql")
# the reasons a planning gives (messaging.models.SKIP_REASONS): skipped later, for another
# reason (send_cancelled) or by the outbox and consent withdrawals, a row stays a row
PLANNED_REASONS = (
    "'duplicate_after_oneid', 'no_consent', 'opted_out', 'no_identity_for_channel', "
    "'capped_week', 'capped_channel_month', 'capped_guide_day'"
)


def upgrade() -> None:
    op.create_table(
        "send_skips",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("send_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("id_block", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("members", ID_SET, nullable=False),
        sa.PrimaryKeyConstraint(
            "group_id", "send_id", "reason", "id_block", name=op.f("pk_send_skips")
        ),
    )
    # Rows skipped at planning (never claimed, never sent) move into sets; which rows a
    # planning skipped cannot be told from one skipped later by a withdrawal (opted_out)
    # once both exist, so only rows that were never attempted move, and both readings
    # of the send (rows and sets) answer the same members either way.
    postgres = op.get_bind().dialect.name == "postgresql"
    triple = (
        "array_agg(ARRAY[member_id, person_id, identity_id])"
        if postgres
        else "json_group_array(json_array(member_id, person_id, identity_id))"
    )
    moved = f"""status = 'skipped' AND attempts = 0 AND claimed_by IS NULL
                AND reason IN ({PLANNED_REASONS})"""
    op.execute(f"""INSERT INTO send_skips (group_id, send_id, reason, id_block, member_count,
                     members)
                   SELECT group_id, send_id, reason, member_id / 65536, COUNT(*), {triple}
                   FROM send_recipients WHERE {moved}
                   GROUP BY group_id, send_id, reason, member_id / 65536""")
    op.execute(f"DELETE FROM send_recipients WHERE {moved}")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    expand = (
        (
            """CROSS JOIN LATERAL generate_subscripts(k.members, 1) AS u(i)""",
            "k.members[u.i][1]",
            "k.members[u.i][2]",
            "k.members[u.i][3]",
        )
        if postgres
        else (
            "JOIN json_each(k.members) AS u",
            "json_extract(u.value, '$[0]')",
            "json_extract(u.value, '$[1]')",
            "json_extract(u.value, '$[2]')",
        )
    )
    op.execute(f"""INSERT INTO send_recipients (group_id, send_id, member_id, person_id,
                     identity_id, status, reason, purpose, channel, sender, due_at, attempts)
                   SELECT k.group_id, k.send_id, {expand[1]}, {expand[2]}, {expand[3]},
                     'skipped', k.reason, s.purpose, s.channel, s.sender,
                     COALESCE(s.due_at, s.scheduled_at), 0
                   FROM send_skips k JOIN sends s ON s.send_id = k.send_id {expand[0]}""")
    op.drop_table("send_skips")
