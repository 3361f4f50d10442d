"""Messaging tables: consent (events and the current state), the contact policy's
versions, sends, their recipients (the outbox) and what happened to each message.

The tables keyed by member declare no foreign keys, like the other large tables keyed by
member (siyu.orders.models): they are written set-wise and reach billions of rows.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from siyu.store.metadata import BigId, IdSet, metadata

PURPOSES = ("marketing", "service")  # service: a transactional message, no marketing consent
CONSENT_ACTIONS = ("grant", "withdraw")
ALL_CHANNELS = "*"  # a consent event for every channel at once
# draft -> held (planned for review: recipients written, nothing delivered) -> planned
# (the outbox delivers it), or draft -> planned at once; any but cancelled -> cancelled
SEND_STATUSES = ("draft", "held", "planned", "cancelled")
# planned / deferred (quiet hours) / retry wait for the outbox; sent, failed (gave up) and
# skipped (with a reason) are final
RECIPIENT_STATUSES = ("planned", "deferred", "retry", "sent", "failed", "skipped")
SKIP_REASONS = (
    "duplicate_after_oneid",
    "no_consent",
    "opted_out",
    "no_identity_for_channel",
    "capped_week",
    "capped_channel_month",
    "capped_guide_day",
    "global_holdout",  # a marketing send: reachable, but in the group's global holdout
)
EVENT_KINDS = ("delivered", "failed", "read", "clicked")

# Append-only: every grant and withdrawal, with where it came from and when.
consent_events = Table(
    "consent_events",
    metadata,
    Column("event_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("member_id", BigInteger, nullable=False),  # the member it was given through
    Column("purpose", String(16), nullable=False),
    Column("channel", String(32), nullable=False),  # a messaging channel or '*'
    Column("action", String(8), nullable=False),
    Column("source", String(64), nullable=False),  # 'mini_program', 'sms_reply', 'console', ...
    Column("at", DateTime, nullable=False),  # when the person said it
    Column("recorded_at", DateTime, nullable=False),
    CheckConstraint("action IN ('grant', 'withdraw')", name="action"),
    CheckConstraint("purpose IN ('marketing', 'service')", name="purpose"),
)
Index("ix_consent_events_member", consent_events.c.group_id, consent_events.c.member_id)

# The current state, derived from the events: the last grant and the last withdrawal per
# (member, purpose, channel). Both only ever move forward (the later of the two times),
# so applying an event twice, or a merged member's rows onto the survivor, is idempotent
# and order-free; granted means last_grant_at > last_withdrawal_at (a tie withdraws).
member_consents = Table(
    "member_consents",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("member_id", BigInteger, nullable=False, autoincrement=False),
    Column("purpose", String(16), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("last_grant_at", DateTime),
    Column("last_withdrawal_at", DateTime),
    PrimaryKeyConstraint("group_id", "member_id", "purpose", "channel"),
)

# The group's contact policy (messaging.policy.Policy), every version kept (store.versions).
messaging_policies = Table(
    "messaging_policies",
    metadata,
    Column("policy_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("code", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("key_id", BigInteger),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("group_id", "code", "version"),
)

sends = Table(
    "sends",
    metadata,
    Column("send_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("code", String(64), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("sender", String(64)),  # the guide who sends (WeCom), capped per day
    Column("body", Text, nullable=False),  # the validated document (messaging.sends.Send)
    Column("status", String(16), nullable=False),
    Column("scheduled_at", DateTime, nullable=False),  # as asked
    Column("due_at", DateTime),  # when it goes: scheduled_at moved out of quiet hours
    Column("planned_at", DateTime),
    Column("policy_id", BigInteger),  # the policy version the plan applied
    Column("key_id", BigInteger),
    Column("created_at", DateTime, nullable=False),
    CheckConstraint("status IN ('draft', 'held', 'planned', 'cancelled')", name="status"),
    UniqueConstraint("group_id", "code"),
)

# The outbox: one row per member a planning did not skip (`send_skips` holds those),
# planned or deferred, later sent, failed, or skipped (consent withdrawn, send cancelled).
send_recipients = Table(
    "send_recipients",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("send_id", BigInteger, nullable=False, autoincrement=False),
    Column("member_id", BigInteger, nullable=False, autoincrement=False),  # as targeted
    Column("person_id", BigInteger, nullable=False),  # the member after OneID merges
    Column("identity_id", BigInteger),  # the address on the send's channel
    Column("status", String(16), nullable=False),
    Column("reason", String(32)),
    # denormalised from the send so caps count touches with one index range
    Column("purpose", String(16), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("sender", String(64)),
    Column("due_at", DateTime, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime),
    Column("claimed_until", DateTime),  # the lease of the worker delivering it
    Column("claimed_by", String(64)),
    Column("sent_at", DateTime),
    Column("provider_ref", String(128)),
    Column("last_error", String(300)),
    CheckConstraint(
        "status IN ('planned', 'deferred', 'retry', 'sent', 'failed', 'skipped')", name="status"
    ),
    PrimaryKeyConstraint("group_id", "send_id", "member_id"),
)
# What reads a send's rows by person (caps, consent withdrawals, attribution) or by due
# time (the outbox, the caps' window) reads the rows that touch: planned, deferred, retry,
# sent. On PostgreSQL both indexes hold those rows only, leaving out the skipped and
# failed (about half of a large send's rows, written then into the primary key alone;
# docs/benchmarks.md, issue #18). SQLite keeps them whole: its planner uses a partial index
# only where a query repeats the index's WHERE verbatim.
TOUCHING = "('planned', 'deferred', 'retry', 'sent')"
Index(
    "ix_send_recipients_person",
    send_recipients.c.group_id,
    send_recipients.c.person_id,
    send_recipients.c.due_at,
    postgresql_where=text(f"status IN {TOUCHING}"),
)
# The due index leads with the purpose: the outbox reads one purpose's waiting rows at a
# time, marketing only outside quiet hours (outbox._DUE; migration 0037).
Index(
    "ix_send_recipients_due",
    send_recipients.c.group_id,
    send_recipients.c.purpose,
    send_recipients.c.status,
    send_recipients.c.due_at,
    postgresql_where=text(f"status IN {TOUCHING}"),
)

# The members a planning skipped, compactly: one row per send, reason and block of 65,536
# member ids, holding the block's skipped members as (member, person, address) triples.
# Half of a large send is skipped; as rows of `send_recipients` they cost a heap row and a
# primary-key entry each and made half of the planning's time (docs/architecture.md,
# "Skipped members as sets"). A member is in one place only: a row (what may be sent, and
# what was skipped after planning: withdrawn consent, a cancelled send) or a skip set.
SKIP_BLOCK = 65_536
send_skips = Table(
    "send_skips",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("send_id", BigInteger, nullable=False, autoincrement=False),
    Column("reason", String(32), nullable=False),
    Column("id_block", BigInteger, nullable=False, autoincrement=False),  # member_id // SKIP_BLOCK
    Column("member_count", Integer, nullable=False),
    Column("members", IdSet, nullable=False),
    PrimaryKeyConstraint("group_id", "send_id", "reason", "id_block"),
)

# Delivery status callbacks and clicks, append-only; idempotent on the provider's event id.
message_events = Table(
    "message_events",
    metadata,
    Column("event_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("send_id", BigInteger, nullable=False),
    Column("member_id", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("external_id", String(128), nullable=False),  # the provider's event id
    Column("detail", String(300)),
    Column("at", DateTime, nullable=False),
    CheckConstraint("kind IN ('delivered', 'failed', 'read', 'clicked')", name="kind"),
    UniqueConstraint("group_id", "external_id"),
)
Index("ix_message_events_send", message_events.c.group_id, message_events.c.send_id)
# What reads a message by the platform's reference: a delivery receipt (receipts.py) and
# a WeCom task's results. Partial on PostgreSQL: only a sent message has a reference.
Index(
    "ix_send_recipients_provider_ref",
    send_recipients.c.group_id,
    send_recipients.c.provider_ref,
    postgresql_where=text("provider_ref IS NOT NULL"),
)

# Delivery receipts that came before their message was marked sent (a platform can report
# a message delivered before the worker that sent it has settled its batch), or for a
# message siyu never sent (another system of the brand on the same account): kept until
# the message is settled (`receipts.adopt` moves them to message_events), at most a day.
parked_receipts = Table(
    "parked_receipts",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("external_id", String(128), nullable=False),  # the provider's event id
    Column("channel", String(32), nullable=False),
    Column("provider_ref", String(128), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("detail", String(300)),
    Column("at", DateTime, nullable=False),
    Column("received_at", DateTime, nullable=False),
    CheckConstraint("kind IN ('delivered', 'failed', 'read', 'clicked')", name="kind"),
    PrimaryKeyConstraint("group_id", "external_id"),
)
Index("ix_parked_receipts_ref", parked_receipts.c.group_id, parked_receipts.c.provider_ref)
Index("ix_parked_receipts_received", parked_receipts.c.group_id, parked_receipts.c.received_at)
