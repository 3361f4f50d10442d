"""Tags: what a brand calls its members. A tag is defined once per brand group (`tags`),
held by members (`member_tags`, the current set) and every enter and leave is kept
(`member_tag_history`), so "who was in it last month" and "why is this member in it" have
answers.

A tag is `automatic` (a rule or a computation sets it, on its refresh), `manual` (HQ or
a guide sets it on a member) or `imported` (a file from another system sets it). All
three write through `segments.tags`, which keeps history in the same transaction.

member_tags and member_tag_history declare no foreign keys, like the other tables keyed
by member (see siyu.orders.models): they are written set-wise by `apply_membership`.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from siyu.store.metadata import BigId, metadata

TAG_KINDS = ("automatic", "manual", "imported")
REFRESHES = ("nightly", "hourly", "manual", "on_import")
CHANGES = ("enter", "leave", "value")  # value: the member stays, its value changed
SLUG_PATTERN = r"[a-z0-9_.-]{1,64}"
NAME_MAX = 128
VALUE_MAX = 256

tags = Table(
    "tags",
    metadata,
    Column("tag_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("slug", String(64), nullable=False),
    Column("name_zh", String(NAME_MAX), nullable=False),
    Column("name_en", String(NAME_MAX), nullable=False),
    Column("kind", String(16), nullable=False),
    # JSON: an automatic tag's rule or computation, an imported tag's source.
    Column("definition", Text, nullable=False, server_default="{}"),
    # Who owns it: 'key:<id>', 'role:<role>' or a user id; free text, never personal data.
    Column("owner", String(128), nullable=False),
    Column("refresh", String(16), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("archived_at", DateTime),
    UniqueConstraint("group_id", "slug"),
    CheckConstraint("kind IN ('automatic', 'manual', 'imported')", name="kind"),
    CheckConstraint("refresh IN ('nightly', 'hourly', 'manual', 'on_import')", name="refresh"),
)

member_tags = Table(
    "member_tags",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("tag_id", BigInteger, nullable=False, autoincrement=False),
    Column("member_id", BigInteger, nullable=False, autoincrement=False),
    Column("value", String(VALUE_MAX)),  # optional: a band, a score label
    # 'key:<id>' (a principal), 'system' (a rule), 'import:<batch>', 'merge:<id>'
    Column("set_by", String(128), nullable=False),
    Column("set_at", DateTime, nullable=False),
    PrimaryKeyConstraint("group_id", "tag_id", "member_id"),
)
# "tags of a member"
Index("ix_member_tags_member", member_tags.c.group_id, member_tags.c.member_id)

member_tag_history = Table(
    "member_tag_history",
    metadata,
    Column("change_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("tag_id", BigInteger, nullable=False),
    Column("member_id", BigInteger, nullable=False),
    Column("change", String(8), nullable=False),
    Column("value", String(VALUE_MAX)),
    Column("by", String(128), nullable=False),
    Column("at", DateTime, nullable=False),
    CheckConstraint("change IN ('enter', 'leave', 'value')", name="change"),
)
Index(
    "ix_member_tag_history_member",
    member_tag_history.c.group_id,
    member_tag_history.c.member_id,
    member_tag_history.c.at,
)
Index(
    "ix_member_tag_history_tag",
    member_tag_history.c.group_id,
    member_tag_history.c.tag_id,
    member_tag_history.c.at,
)

# --- stored segments ---------------------------------------------------------------------------
# A segment is a rule (segments.rules) kept under a slug. Editing it adds a version, so
# "which rule put this member in" has an answer; evaluating it replaces its members
# (segment_members) and records each enter and leave (segment_member_history) and the run
# (segment_evaluations: size per evaluation, hence per day).

SEGMENT_REFRESHES = ("nightly", "hourly", "manual", "realtime")
EVALUATION_TRIGGERS = ("schedule", "manual", "event", "define")

segments = Table(
    "segments",
    metadata,
    Column("segment_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("slug", String(64), nullable=False),
    Column("name_zh", String(NAME_MAX), nullable=False),
    Column("name_en", String(NAME_MAX), nullable=False),
    Column("owner", String(128), nullable=False),
    Column("refresh", String(16), nullable=False),
    Column("version", BigInteger, nullable=False),  # the current one
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("archived_at", DateTime),
    UniqueConstraint("group_id", "slug"),
    CheckConstraint(
        "refresh IN ('nightly', 'hourly', 'manual', 'realtime')", name="segment_refresh"
    ),
)

segment_versions = Table(
    "segment_versions",
    metadata,
    Column("segment_id", BigInteger, nullable=False, autoincrement=False),
    Column("version", BigInteger, nullable=False, autoincrement=False),
    Column("rule", Text, nullable=False),  # the validated rule document, JSON
    Column("created_by", String(128), nullable=False),
    Column("created_at", DateTime, nullable=False),
    PrimaryKeyConstraint("segment_id", "version"),
)

segment_members = Table(
    "segment_members",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("segment_id", BigInteger, nullable=False, autoincrement=False),
    Column("member_id", BigInteger, nullable=False, autoincrement=False),
    Column("set_by", String(128), nullable=False),  # 'evaluation:<id>'
    Column("set_at", DateTime, nullable=False),  # when the member entered
    PrimaryKeyConstraint("group_id", "segment_id", "member_id"),
)
# "segments of a member"
Index("ix_segment_members_member", segment_members.c.group_id, segment_members.c.member_id)

segment_member_history = Table(
    "segment_member_history",
    metadata,
    Column("change_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("segment_id", BigInteger, nullable=False),
    Column("member_id", BigInteger, nullable=False),
    Column("change", String(8), nullable=False),
    Column("by", String(128), nullable=False),
    Column("at", DateTime, nullable=False),
    CheckConstraint("change IN ('enter', 'leave')", name="segment_change"),
)
Index(
    "ix_segment_member_history_segment",
    segment_member_history.c.group_id,
    segment_member_history.c.segment_id,
    segment_member_history.c.at,
)
Index(
    "ix_segment_member_history_member",
    segment_member_history.c.group_id,
    segment_member_history.c.member_id,
    segment_member_history.c.at,
)

segment_evaluations = Table(
    "segment_evaluations",
    metadata,
    Column("evaluation_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("segment_id", BigInteger, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("as_of", DateTime, nullable=False),  # the data's time the rule was read at
    Column("trigger", String(16), nullable=False),
    Column("engine", String(16), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("entered", BigInteger, nullable=False),
    Column("left", BigInteger, nullable=False),
    Column("seconds", Float, nullable=False),
    Column("at", DateTime, nullable=False),
    CheckConstraint(
        "trigger IN ('schedule', 'manual', 'event', 'define')", name="evaluation_trigger"
    ),
)
Index(
    "ix_segment_evaluations_segment",
    segment_evaluations.c.group_id,
    segment_evaluations.c.segment_id,
    segment_evaluations.c.at,
)

# --- affinity scores ---------------------------------------------------------------------------
# Each member's affinity score (segments.affinity) as of the last `siyu tags refresh`, so a
# rule can compare it as a number (`affinity gte 300`); `auto.affinity` bands the same rows.
# The score is a fraction shown to 4 decimals everywhere (API, CLI, bands), so it is kept as
# that shown value times 10,000 in an integer: exact on SQLite and PostgreSQL alike, staged
# and read as integers like every other per-member result. Only members whose shown score
# is not 0 have a row; no row reads as 0. Written whole per group (DELETE and INSERT in one
# transaction): with decay every score moves every day, so a diff would rewrite them all.

AFFINITY_SCALE = 10_000  # score_e4 = round(score, 4) × AFFINITY_SCALE

member_affinity = Table(
    "member_affinity",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("member_id", BigInteger, nullable=False, autoincrement=False),
    Column("score_e4", BigInteger, nullable=False),
    Column("rules_version", BigInteger, nullable=False),  # 0: the default rules
    Column("as_of", DateTime, nullable=False),  # the data's time the score was computed at
    Column("computed_at", DateTime, nullable=False),
    PrimaryKeyConstraint("group_id", "member_id"),
)
