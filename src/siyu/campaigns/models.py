"""Campaigns: a target, a period, incentives, a budget and a holdout, and who was in which
arm. `campaign_members` is keyed by member_id and declares no foreign keys, like the
other tables keyed by member; a member's arm is decided once, when the campaign is
launched (or when it enters a target evaluated later, or an experiment's `campaign`
variant enrols it: `experiment_id`), and never changes.
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

ARMS = ("treatment", "holdout")
STATUSES = ("draft", "launched", "ended")

campaigns = Table(
    "campaigns",
    metadata,
    Column("campaign_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("code", String(64), nullable=False),
    Column("body", Text, nullable=False),  # the validated document (campaigns.plan.Plan)
    Column("status", String(16), nullable=False),
    Column("launched_at", DateTime),
    Column("key_id", BigInteger),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    CheckConstraint("status IN ('draft', 'launched', 'ended')", name="status"),
    UniqueConstraint("group_id", "code"),
)

campaign_members = Table(
    "campaign_members",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("campaign_id", BigInteger, nullable=False, autoincrement=False),
    Column("member_id", BigInteger, nullable=False, autoincrement=False),
    Column("arm", String(16), nullable=False),
    Column("assigned_at", DateTime, nullable=False),
    # when the member's incentives were granted within the budget (treatment only); the
    # coupons and points follow under keys of their own, so a crash in between is
    # finished by the next launch
    Column("granted_at", DateTime),
    # the experiment whose `campaign` variant enrolled the member (always in the
    # treatment: the experiment's control is its comparison); NULL for the campaign's own
    # launch and scans. The campaign's report compares only its own arms (report.py).
    Column("experiment_id", BigInteger),
    CheckConstraint("arm IN ('treatment', 'holdout')", name="arm"),
    PrimaryKeyConstraint("group_id", "campaign_id", "member_id"),
    Index("ix_campaign_members_member", "group_id", "member_id"),
)

# The group's global holdout: a share of members (by a hash of the member and this salt)
# kept out of every campaign's and every experiment's treatment, so the long-run effect of
# all of them together can be measured against members who never got any. One row per
# group; the salt is drawn once and never changes, the share may be changed (members
# already assigned to a campaign or experiment keep their arm). Here rather than in
# experiments/ because campaigns must read it and experiments import campaigns.
global_holdouts = Table(
    "global_holdouts",
    metadata,
    Column("group_id", String(64), primary_key=True),
    Column("share_bp", Integer, nullable=False),
    Column("salt", String(64), nullable=False),
    Column("key_id", BigInteger),
    Column("updated_at", DateTime, nullable=False),
    # since when the members now held out have been (None: no share held out);
    # migration 0038 says when it moves
    Column("started_at", DateTime),
    CheckConstraint("share_bp >= 0 AND share_bp <= 5000", name="share_bp"),
)
