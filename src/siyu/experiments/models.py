"""Experiments: the plan (a validated document, with the salt drawn at creation) and each
member's variant.

`experiment_members` is keyed by member_id and declares no foreign keys, like the other
tables keyed by member. A member's variant is decided once, by the hash of the member and
the experiment's salt, and never changes; `bucket` is that hash (0..9,999) and `stage` the
member's lifecycle stage when assigned (the results are broken down by it). `exposed_at`
is the first exposure a caller logged (`assign.expose`), set once; the first exposure the
results read also counts the treatment's delivery (`exposure.py`, derived when read).

OneID merges (`identity/experiment_follow.py`): a person keeps one assignment per
experiment. The absorbed member's row is kept with `merged_into` (the survivor) and
`merged_by` (the merge) set, and leaves the results; where the survivor had no row of its
own it gets a copy of the earliest-assigned absorbed member's, marked `inherited_by` (the
merge). An unmerge clears `merged_into` and deletes the copies that merge made.
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
)

from siyu.store.metadata import BigId, metadata

STATUSES = ("draft", "running", "stopped")

experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("code", String(64), nullable=False),
    Column("body", Text, nullable=False),  # the validated document (experiments.plan.Plan)
    Column("salt", String(64), nullable=False),  # drawn at creation, never changed
    Column("status", String(16), nullable=False),
    Column("started_at", DateTime),
    Column("stopped_at", DateTime),
    Column("key_id", BigInteger),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    CheckConstraint("status IN ('draft', 'running', 'stopped')", name="status"),
    UniqueConstraint("group_id", "code"),
)

experiment_members = Table(
    "experiment_members",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("experiment_id", BigInteger, nullable=False, autoincrement=False),
    Column("member_id", BigInteger, nullable=False, autoincrement=False),
    Column("variant", String(64), nullable=False),
    Column("bucket", Integer, nullable=False),
    Column("stage", String(32)),
    Column("assigned_at", DateTime, nullable=False),
    Column("exposed_at", DateTime),
    Column("merged_into", BigInteger),  # set while this member is absorbed by a merge
    Column("merged_by", BigInteger),  # that merge's id
    Column("inherited_by", BigInteger),  # a copy the survivor got from this merge
    PrimaryKeyConstraint("group_id", "experiment_id", "member_id"),
    Index("ix_experiment_members_member", "group_id", "member_id"),
    # an unmerge finds the rows its merge marked or made
    Index("ix_experiment_members_merged_by", "group_id", "merged_by"),
    Index("ix_experiment_members_inherited_by", "group_id", "inherited_by"),
)
