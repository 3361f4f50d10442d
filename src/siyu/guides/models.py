"""Follow-up tasks for shopping guides: one row per task, and an append-only log of every
change of its state (who, when, a note).

A task is a guide's job for one member (win back a member at risk or lapsed, bring a new
member one order before the knee back for the next order). `guides.service.generate_tasks`
creates them from the lifecycle stages; guides and HQ move them through their states
(`guides.service.change_state`), each move a row of `guide_task_events`.

`cycle` names the episode a task belongs to: the member's stage and last order time when
it was created. The unique key makes generation idempotent, and a closed task (done,
dismissed) is not created again while the member stays in that stage with that last order.

No foreign keys to members (as on the other tables keyed by member): distributed by
member_id with the facts on Citus.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Date,
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

WIN_BACK_AT_RISK, WIN_BACK_LAPSED, NEXT_ORDER = "win_back_at_risk", "win_back_lapsed", "next_order"
HQ_TASK = "hq"  # authored by HQ (guides.campaigns); its code is the row's campaign_code
KINDS = (WIN_BACK_AT_RISK, WIN_BACK_LAPSED, NEXT_ORDER, HQ_TASK)
OPEN, CONTACTED, DONE, DISMISSED = "open", "contacted", "done", "dismissed"
STATES = (OPEN, CONTACTED, DONE, DISMISSED)
LIVE = (OPEN, CONTACTED)  # a guide still has something to do
CLOSED = (DONE, DISMISSED)
NOTE_MAX = 500

guide_tasks = Table(
    "guide_tasks",
    metadata,
    Column("task_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("guide_id", String(64), nullable=False),
    Column("member_id", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),
    # the member's stage and last order when the task was made: "<stage>@<ISO time>"
    Column("cycle", String(64), nullable=False),
    Column("stage", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("expected_value_fen", BigInteger, nullable=False),
    Column("urgency", Integer, nullable=False),  # per mille (guides.tasks.urgency)
    Column("due_on", Date, nullable=False),
    Column("last_order_at", DateTime),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    # HQ-authored tasks (guides.campaigns): the task document's code and its script; NULL
    # for the tasks the stages generate
    Column("campaign_code", String(64)),
    Column("script", Text),
    UniqueConstraint("group_id", "guide_id", "member_id", "kind", "cycle"),
    # one HQ task per code and member, whichever guide holds it (NULLs never collide)
    UniqueConstraint("group_id", "campaign_code", "member_id"),
    CheckConstraint("state IN ('open', 'contacted', 'done', 'dismissed')", name="state_known"),
    CheckConstraint("expected_value_fen >= 0", name="value_not_negative"),
)
# a guide's list: its live tasks by value, then urgency
Index(
    "ix_guide_tasks_rank",
    guide_tasks.c.group_id,
    guide_tasks.c.guide_id,
    guide_tasks.c.state,
    guide_tasks.c.expected_value_fen,
)
Index("ix_guide_tasks_member", guide_tasks.c.group_id, guide_tasks.c.member_id)

# Append-only: every state a task entered, by whom (the API key; NULL for the generator,
# which only ever closes a task whose member's stage moved on) and a note. Notes are free
# text a guide typed: personal data, never logged, shown only to roles that see it.
guide_task_events = Table(
    "guide_task_events",
    metadata,
    Column("event_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("task_id", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),
    Column("actor_key_id", BigInteger),
    Column("note", Text),
    Column("at", DateTime, nullable=False),
)
Index("ix_guide_task_events_task", guide_task_events.c.task_id, guide_task_events.c.event_id)


# --- HQ-authored tasks (issue #19) ------------------------------------------------------------
# A task document HQ wrote (guides.campaigns.TaskDocument), one row per code; assigning it
# makes one guide_tasks row per target member (kind 'hq', campaign_code = code).
TARGET_KINDS = ("segment", "stage", "funnel")
ARMS = ("task", "control", "no_guide")
guide_task_campaigns = Table(
    "guide_task_campaigns",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("code", String(64), nullable=False),
    Column("title_zh", String(200), nullable=False),
    Column("title_en", String(200), nullable=False),
    Column("target_kind", String(16), nullable=False),
    Column("target", String(64), nullable=False),  # a segment slug, a stage, a funnel step
    Column("due_on", Date, nullable=False),
    Column("script", Text, nullable=False),
    Column("training_code", String(64)),
    Column("holdout_pct", Integer, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("assigned_at", DateTime),  # the first assignment: the effect window opens
    PrimaryKeyConstraint("group_id", "code"),
    CheckConstraint("target_kind IN ('segment', 'stage', 'funnel')", name="target_kind_known"),
    CheckConstraint("holdout_pct >= 0 AND holdout_pct <= 50", name="holdout_range"),
)

# Every member a task code targeted, and what became of it: tasked, held out by hash (the
# control the effect is measured against) or without a guide (counted, not compared).
guide_task_targets = Table(
    "guide_task_targets",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("code", String(64), nullable=False),
    Column("member_id", BigInteger, nullable=False),
    Column("arm", String(16), nullable=False),
    Column("guide_id", String(64)),
    Column("task_id", BigInteger),
    Column("assigned_at", DateTime, nullable=False),
    PrimaryKeyConstraint("group_id", "code", "member_id"),
    CheckConstraint("arm IN ('task', 'control', 'no_guide')", name="arm_known"),
)

# Training content (Bestore): an item for a guide class (A/B/C) or a task code, and who
# completed it (the guide marks it; one row per guide and item).
training_items = Table(
    "training_items",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("code", String(64), nullable=False),
    Column("title_zh", String(200), nullable=False),
    Column("title_en", String(200), nullable=False),
    Column("url", String(500)),
    Column("body", Text),
    Column("for_class", String(1)),
    Column("for_task", String(64)),
    Column("created_at", DateTime, nullable=False),
    PrimaryKeyConstraint("group_id", "code"),
    CheckConstraint("for_class IS NULL OR for_class IN ('A', 'B', 'C')", name="class_known"),
)
training_completions = Table(
    "training_completions",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("code", String(64), nullable=False),
    Column("guide_id", String(64), nullable=False),
    Column("completed_at", DateTime, nullable=False),
    PrimaryKeyConstraint("group_id", "code", "guide_id"),
)
