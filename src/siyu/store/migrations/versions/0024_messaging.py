"""messaging: consent events and state, contact policies, sends, their recipients (the
outbox), message events

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "consent_events",
        sa.Column(
            "event_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "action IN ('grant', 'withdraw')", name=op.f("ck_consent_events_action")
        ),
        sa.CheckConstraint(
            "purpose IN ('marketing', 'service')", name=op.f("ck_consent_events_purpose")
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_consent_events")),
    )
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.create_index("ix_consent_events_member", ["group_id", "member_id"], unique=False)

    op.create_table(
        "member_consents",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("last_grant_at", sa.DateTime(), nullable=True),
        sa.Column("last_withdrawal_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint(
            "group_id", "member_id", "purpose", "channel", name=op.f("pk_member_consents")
        ),
    )
    op.create_table(
        "message_events",
        sa.Column(
            "event_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("send_id", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("detail", sa.String(length=300), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('delivered', 'failed', 'read', 'clicked')",
            name=op.f("ck_message_events_kind"),
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_message_events")),
        sa.UniqueConstraint(
            "group_id", "external_id", name=op.f("uq_message_events_group_id_external_id")
        ),
    )
    with op.batch_alter_table("message_events", schema=None) as batch_op:
        batch_op.create_index("ix_message_events_send", ["group_id", "send_id"], unique=False)

    op.create_table(
        "messaging_policies",
        sa.Column(
            "policy_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("policy_id", name=op.f("pk_messaging_policies")),
        sa.UniqueConstraint(
            "group_id", "code", "version", name=op.f("uq_messaging_policies_group_id_code_version")
        ),
    )
    op.create_table(
        "send_recipients",
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("send_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("member_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("identity_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("sender", sa.String(length=64), nullable=True),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("provider_ref", sa.String(length=128), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.CheckConstraint(
            "status IN ('planned', 'deferred', 'retry', 'sent', 'failed', 'skipped')",
            name=op.f("ck_send_recipients_status"),
        ),
        sa.PrimaryKeyConstraint(
            "group_id", "send_id", "member_id", name=op.f("pk_send_recipients")
        ),
    )
    with op.batch_alter_table("send_recipients", schema=None) as batch_op:
        # partial on PostgreSQL: the rows that touch, all the outbox and the caps read
        # (messaging.models)
        batch_op.create_index(
            "ix_send_recipients_due",
            ["group_id", "status", "due_at"],
            unique=False,
            postgresql_where=sa.text("status IN ('planned', 'deferred', 'retry', 'sent')"),
        )
        batch_op.create_index(
            "ix_send_recipients_person",
            ["group_id", "person_id", "due_at"],
            unique=False,
            postgresql_where=sa.text("status IN ('planned', 'deferred', 'retry', 'sent')"),
        )

    op.create_table(
        "sends",
        sa.Column(
            "send_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("sender", sa.String(length=64), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=True),
        sa.Column("planned_at", sa.DateTime(), nullable=True),
        sa.Column("policy_id", sa.BigInteger(), nullable=True),
        sa.Column("key_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('draft', 'held', 'planned', 'cancelled')", name=op.f("ck_sends_status")
        ),
        sa.PrimaryKeyConstraint("send_id", name=op.f("pk_sends")),
        sa.UniqueConstraint("group_id", "code", name=op.f("uq_sends_group_id_code")),
    )


def downgrade() -> None:
    op.drop_table("sends")
    with op.batch_alter_table("send_recipients", schema=None) as batch_op:
        batch_op.drop_index("ix_send_recipients_person")
        batch_op.drop_index("ix_send_recipients_due")

    op.drop_table("send_recipients")
    op.drop_table("messaging_policies")
    with op.batch_alter_table("message_events", schema=None) as batch_op:
        batch_op.drop_index("ix_message_events_send")

    op.drop_table("message_events")
    op.drop_table("member_consents")
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_events_member")

    op.drop_table("consent_events")
