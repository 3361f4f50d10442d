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

# Commission (guides/commission_*.py). A guide's money lives on the loyalty ledger, in
# accounts of owner 'guide' (ledger_accounts), one per state; the ledger keys accounts by
# a number, so each guide gets one here. The ledger's `member_id` of a guide's accounts,
# entries and postings is the NEGATED number: members are positive and system accounts 0,
# so no member's statement or balance query (WHERE member_id = :m) can ever read a guide's.
GUIDE_OWNER = "guide"
CM_ACCRUED, CM_FROZEN, CM_PAYABLE, CM_PAID = "cm_accrued", "cm_frozen", "cm_payable", "cm_paid"
COMMISSION_ASSETS = (CM_ACCRUED, CM_FROZEN, CM_PAYABLE, CM_PAID)
# ledger_postings.kind of the commission postings
CM_ACCRUE, CM_RELEASE, CM_CLAWBACK, CM_PAY = "cm_accrue", "cm_release", "cm_clawback", "cm_pay"

guide_accounts = Table(
    "guide_accounts",
    metadata,
    Column("account_no", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("guide_id", String(64), nullable=False),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("group_id", "guide_id"),
)

# What an accrual decided for one order (the rule, the basis, the fen, when its freeze
# ends): the accruals' sub-ledger (issue #19). A run writes one ledger posting per guide,
# store and month of payment, moving the sum of its rows from cm_accrued to cm_frozen
# (commission_statements.unbalanced_accruals checks it); before revision 0035 each order
# had its own posting. The release job finds matured orders by `freeze_until`.
commission_accruals = Table(
    "commission_accruals",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("order_id", String(128), nullable=False),
    Column("guide_id", String(64), nullable=False),
    Column("store_id", String(64)),  # the guide's store when accrued (store statements)
    Column("rule", String(64)),  # the rule's name; NULL: the document's default rate
    Column("rules_version", Integer, nullable=False),
    Column("basis_fen", BigInteger, nullable=False),  # the order's paid fen
    # why the order is this guide's (guides.attribution): share, till or own_guide
    Column("attribution", String(16), nullable=False),
    Column("commission_fen", BigInteger, nullable=False),
    Column("freeze_until", DateTime, nullable=False),
    Column("posting_id", BigInteger, nullable=False),  # the (summary) accrual posting
    Column("created_at", DateTime, nullable=False),
    # the order's payment: the accrual's business time (its statement month and line)
    Column("accrued_at", DateTime, nullable=False),
    PrimaryKeyConstraint("group_id", "order_id"),
    CheckConstraint("commission_fen >= 0", name="commission_not_negative"),
)
# a posting's rows (statement lines, the balance check, a guide's accruals through its
# postings): the one index beside the key, since a month's rows are written by the million
Index("ix_commission_accruals_posting", commission_accruals.c.posting_id)

# What a release run moved of each order (issue #19: one ledger posting per guide and run,
# the per-order amounts here). An order is released once (the key); `released_fen` is what
# was still frozen of its accrual then, and the summary posting's cm_payable move is the
# sum of its rows (commission_statements.unbalanced_releases checks it). `posting_id` is
# NULL only for a zero release of a guide whose run released nothing at all (no posting
# with no moves is written).
commission_releases = Table(
    "commission_releases",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("order_id", String(128), nullable=False),
    Column("guide_id", String(64), nullable=False),
    Column("posting_id", BigInteger),  # the summary release posting
    Column("released_fen", BigInteger, nullable=False),
    Column("freeze_until", DateTime, nullable=False),
    Column("created_at", DateTime, nullable=False),
    PrimaryKeyConstraint("group_id", "order_id"),
    CheckConstraint("released_fen >= 0", name="released_not_negative"),
    CheckConstraint("posting_id IS NOT NULL OR released_fen = 0", name="posted_unless_zero"),
)
Index("ix_commission_releases_posting", commission_releases.c.posting_id)
# --- binding: a member's own guide (专属导购), with history (guides.binding) -----------------

# How a binding was made: by HQ, by the guide's QR scene or WeCom contact that brought the
# member, by the guide of the first store purchase, by another guide of the store when the
# bound guide left, or inherited by a OneID survivor from an absorbed member.
HQ, SCENE, WECOM, FIRST_PURCHASE, STORE, INHERITED = (
    "hq",
    "scene",
    "wecom",
    "first_purchase",
    "store",
    "inherited",
)
RULES = (HQ, SCENE, WECOM, FIRST_PURCHASE, STORE, INHERITED)
# Why a binding ended: HQ bound the member to another guide, the guide left, OneID merged
# the member into another.
REBOUND, GUIDE_LEFT, MERGED = "rebound", "guide_left", "merged"
END_REASONS = (REBOUND, GUIDE_LEFT, MERGED)
REASON_MAX = 200

# One row per binding; a live binding has no `ended_at`, and a member has at most one (the
# partial unique index). Ending a binding never deletes it: the rows are the history.
guide_bindings = Table(
    "guide_bindings",
    metadata,
    Column("binding_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("member_id", BigInteger, nullable=False),
    Column("guide_id", String(64), nullable=False),
    Column("store_id", String(64)),
    Column("rule", String(16), nullable=False),
    Column("bound_at", DateTime, nullable=False),
    Column("ended_at", DateTime),
    Column("ended_reason", String(16)),
    Column("note", String(REASON_MAX)),  # the person's words: why HQ rebound, why it ended
    Column("key_id", BigInteger),  # the API key that bound (HQ); NULL for the rules
    Column("merge_id", BigInteger),  # inherited through this merge / ended by it
    CheckConstraint(
        "rule IN ('hq', 'scene', 'wecom', 'first_purchase', 'store', 'inherited')", name="rule"
    ),
    CheckConstraint(
        "ended_reason IS NULL OR ended_reason IN ('rebound', 'guide_left', 'merged')",
        name="ended_reason",
    ),
    CheckConstraint("(ended_at IS NULL) = (ended_reason IS NULL)", name="ended_with_reason"),
)
Index(
    "uq_guide_bindings_live",
    guide_bindings.c.group_id,
    guide_bindings.c.member_id,
    unique=True,
    sqlite_where=guide_bindings.c.ended_at.is_(None),
    postgresql_where=guide_bindings.c.ended_at.is_(None),
)
Index("ix_guide_bindings_member", guide_bindings.c.group_id, guide_bindings.c.member_id)
Index("ix_guide_bindings_guide", guide_bindings.c.group_id, guide_bindings.c.guide_id)

# A guide who left (released): the rules bind nobody to it again.
guide_departures = Table(
    "guide_departures",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("guide_id", String(64), nullable=False),
    Column("left_at", DateTime, nullable=False),
    Column("note", String(REASON_MAX), nullable=False),
    Column("key_id", BigInteger),
    PrimaryKeyConstraint("group_id", "guide_id"),
)

# --- distribution (分销): shares, touches, attributions (guides.attribution) -----------------

SHARE_KINDS = ("product", "campaign", "page")
SHARE, TILL, OWN_GUIDE = "share", "till", "own_guide"
BASES = (SHARE, TILL, OWN_GUIDE)

# What a guide shared: a product (sku), a campaign (code) or a mini-program page (path),
# under a share code the link or QR carries.
guide_shares = Table(
    "guide_shares",
    metadata,
    Column("share_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("share_code", String(64), nullable=False),
    Column("guide_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("target", String(200), nullable=False),
    Column("created_at", DateTime, nullable=False),
    Column("key_id", BigInteger),
    UniqueConstraint("group_id", "share_code"),
    CheckConstraint("kind IN ('product', 'campaign', 'page')", name="kind"),
)
Index("ix_guide_shares_guide", guide_shares.c.group_id, guide_shares.c.guide_id)

# Someone opened a share: a member, or an identity (a visitor the channel saw) whose member
# is looked up when orders are attributed. Keyed by an idempotency key unique in the group,
# so a channel delivering one open twice records it once.
share_touches = Table(
    "share_touches",
    metadata,
    Column("touch_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("idempotency_key", String(200), nullable=False),
    Column("share_id", BigInteger, nullable=False),
    Column("member_id", BigInteger),
    Column("identity_id", BigInteger),
    Column("touched_at", DateTime, nullable=False),
    Column("key_id", BigInteger),
    UniqueConstraint("group_id", "idempotency_key"),
    CheckConstraint("member_id IS NOT NULL OR identity_id IS NOT NULL", name="who"),
)
Index("ix_share_touches_time", share_touches.c.group_id, share_touches.c.touched_at)

# Which guide an order is attributed to, and why: the share and touch (basis share), the
# till's guide (till) or the member's own guide under protection (own_guide, its binding).
# A period's run replaces the rows of the orders it covers (`ordered_at` is copied so the
# run finds them without the orders table).
order_attributions = Table(
    "order_attributions",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("order_id", String(128), nullable=False),
    Column("member_id", BigInteger),
    Column("guide_id", String(64), nullable=False),
    Column("basis", String(16), nullable=False),
    Column("share_id", BigInteger),
    Column("touch_id", BigInteger),
    Column("touched_at", DateTime),
    Column("binding_id", BigInteger),
    Column("window_days", Integer, nullable=False),
    Column("protect_days", Integer, nullable=False),
    Column("ordered_at", DateTime, nullable=False),
    Column("attributed_at", DateTime, nullable=False),
    PrimaryKeyConstraint("group_id", "order_id"),
    CheckConstraint("basis IN ('share', 'till', 'own_guide')", name="basis"),
)
Index(
    "ix_order_attributions_guide",
    order_attributions.c.group_id,
    order_attributions.c.guide_id,
    order_attributions.c.ordered_at,
)
# A period's rows by time (the run's own replace, commission's staging, the counts): on
# PostgreSQL a BRIN index, since a period's rows are written together and so lie together;
# a B-tree there was 8 of the 23 s of writing a 10M brand's month (migration 0036).
Index(
    "ix_order_attributions_time",
    order_attributions.c.group_id,
    order_attributions.c.ordered_at,
    postgresql_using="brin",
    postgresql_with={"autosummarize": "on"},
)

# --- classes: A/B/C from the period's metrics by HQ's rules (guides.classes) ----------------

CLASSES = ("A", "B", "C")

# Every version of the group's class rules (guides.classes.ClassRules as JSON, code
# "default"); a class row keeps the version it was computed under.
guide_class_rules = Table(
    "guide_class_rules",
    metadata,
    Column("rule_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("code", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("key_id", BigInteger),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("group_id", "code", "version"),
)

# A guide's class for a period, with the metrics it was decided on (JSON) and the rules
# version: the history. Re-running a period replaces that period's rows; a guide's current
# class is the one of its latest period.
guide_classes = Table(
    "guide_classes",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("guide_id", String(64), nullable=False),
    Column("period_start", DateTime, nullable=False),
    Column("period_end", DateTime, nullable=False),
    Column("guide_class", String(1), nullable=False),
    Column("spam_risk", Integer, nullable=False),  # 1: shares opened, no order attributed
    Column("metrics", Text, nullable=False),
    Column("rule_id", BigInteger, nullable=False),
    Column("rules_version", Integer, nullable=False),
    Column("computed_at", DateTime, nullable=False),
    PrimaryKeyConstraint("group_id", "guide_id", "period_start", "period_end"),
    CheckConstraint("guide_class IN ('A', 'B', 'C')", name="class_known"),
)
Index(
    "ix_guide_classes_period",
    guide_classes.c.group_id,
    guide_classes.c.period_end,
    guide_classes.c.period_start,
)
# HQ's programme for guides (guides.programme): its stages, each with the metrics guides
# are measured on while it is in force; a versioned document like the class rules.
guide_programmes = Table(
    "guide_programmes",
    metadata,
    Column("programme_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("code", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("key_id", BigInteger),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("group_id", "code", "version"),
)
