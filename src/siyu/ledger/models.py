"""The loyalty ledger: accounts, postings, entries and point lots.

Double-entry and append-only. A balance lives on its account row only so that the database
can refuse an overdraft in the same statement that changes it (a conditional UPDATE); it
always equals the sum of the account's entries, which are never updated or deleted. Every
posting's entries sum to zero, and every posting carries an idempotency key that is
unique in its brand group, so it is applied exactly once.

Assets are integers: points, and fen for stored value (principal and bonus apart).
System accounts (issuance, redemption, breakage, cash, debt) hold the other side of every
entry; they may go negative, a member's account never does unless a rule allows debt.

Like the fact tables, these declare no foreign keys (see docs/architecture.md); the
ledger service writes every reference itself, and every table is keyed by `member_id`
for distribution.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
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

POINTS, SV_PRINCIPAL, SV_BONUS = "points", "sv_principal", "sv_bonus"
ASSETS = (POINTS, SV_PRINCIPAL, SV_BONUS)
# The other side of every member entry. `member` is the member's own account.
SYSTEM_ACCOUNTS = ("issuance", "redemption", "breakage", "cash", "debt")
POSTING_KINDS = (
    "earn",
    "spend",
    "adjust",
    "expire",
    "top_up",
    "pay",
    "refund_top_up",
    "clawback",
    "merge",
    "unmerge",
)
# Why a member's tier changed (tier_changes.reason).
TIER_REASONS = ("upgrade", "downgrade", "grace", "merge")

ledger_accounts = Table(
    "ledger_accounts",
    metadata,
    Column("account_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    # "member" for a member's account, else one of SYSTEM_ACCOUNTS
    Column("owner", String(16), nullable=False),
    # 0 for system accounts: a real value keeps the unique key a plain one on every dialect
    Column("member_id", BigInteger, nullable=False),
    Column("asset", String(16), nullable=False),
    Column("balance", BigInteger, nullable=False),
    Column("allow_negative", Boolean, nullable=False),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("group_id", "member_id", "owner", "asset"),
)

ledger_postings = Table(
    "ledger_postings",
    metadata,
    Column("posting_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("idempotency_key", String(200), nullable=False),
    Column("request_sha256", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("member_id", BigInteger, nullable=False),
    Column("reference", String(128)),  # order id, top-up posting, merge id ...
    Column("store_id", String(64)),
    Column("channel", String(32)),
    Column("reason", String(500)),
    Column("detail", Text),  # JSON: what the posting decided (split, lots, rule applied)
    Column("key_id", BigInteger),  # the API key that asked, if any
    # When it happened in the business (the order's or refund's time; else when it was
    # recorded); `created_at` is when the ledger recorded it. See docs/architecture.md.
    Column("business_at", DateTime, nullable=False),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("group_id", "idempotency_key"),
    Index("ix_ledger_postings_member", "group_id", "member_id", "posting_id"),
    Index("ix_ledger_postings_reference", "group_id", "kind", "reference"),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("entry_id", BigId, primary_key=True, autoincrement=True),
    Column("posting_id", BigInteger, nullable=False),
    Column("group_id", String(64), nullable=False),
    Column("account_id", BigInteger, nullable=False),
    Column("member_id", BigInteger, nullable=False),  # the account's member (0: system)
    Column("asset", String(16), nullable=False),
    Column("amount", BigInteger, nullable=False),  # signed; sums to 0 per posting
    # The member account's balance around the entry; NULL on system accounts, which keep
    # no running balance (see ledger/posting.py).
    Column("balance_before", BigInteger),
    Column("balance_after", BigInteger),
    Column("business_at", DateTime, nullable=False),  # the posting's, for statements
    Column("created_at", DateTime, nullable=False),
    Index("ix_ledger_entries_account", "account_id", "entry_id"),
    Index("ix_ledger_entries_posting", "posting_id"),
    # statements, newest business time first
    Index("ix_ledger_entries_member", "group_id", "member_id", "business_at", "entry_id"),
)

point_lots = Table(
    "point_lots",
    metadata,
    Column("lot_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("member_id", BigInteger, nullable=False),
    Column("posting_id", BigInteger, nullable=False),  # the posting that earned it
    Column("points", BigInteger, nullable=False),
    Column("remaining", BigInteger, nullable=False),
    Column("expires_at", DateTime, nullable=False),
    Column("created_at", DateTime, nullable=False),
    Index("ix_point_lots_member", "group_id", "member_id", "expires_at", "lot_id"),
    Index("ix_point_lots_expiry", "group_id", "expires_at"),
)

# The loyalty program's documents (earn rules, tier rules), every version kept.
loyalty_programs = Table(
    "loyalty_programs",
    metadata,
    Column("program_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # 'earn' | 'tiers' | 'affinity' (program.Kind)
    Column("version", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("key_id", BigInteger),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("group_id", "kind", "version"),
)

# A member's tier, per scope: '*' when one tier spans the group, else the brand id.
member_tiers = Table(
    "member_tiers",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("member_id", BigInteger, nullable=False),
    Column("scope_key", String(64), nullable=False),
    Column("tier_code", String(64), nullable=False),
    Column("since", DateTime, nullable=False),
    # Set when a review finds the member below its tier; the downgrade waits until then.
    Column("grace_until", DateTime),
    Column("reviewed_at", DateTime),
    PrimaryKeyConstraint("group_id", "member_id", "scope_key"),
)

# Every tier change, append-only, with the metrics that decided it.
tier_changes = Table(
    "tier_changes",
    metadata,
    Column("change_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("member_id", BigInteger, nullable=False),
    Column("scope_key", String(64), nullable=False),
    Column("from_tier", String(64)),
    Column("to_tier", String(64), nullable=False),
    Column("reason", String(32), nullable=False),  # one of TIER_REASONS
    Column("detail", Text, nullable=False),  # JSON: metrics, coupon pack granted
    Column("created_at", DateTime, nullable=False),
    Index("ix_tier_changes_member", "group_id", "member_id", "change_id"),
)
