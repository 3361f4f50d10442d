"""Prize pools, their prizes, the member counters and the draws.

No foreign keys, like the coupons' tables: the service writes every reference itself, and
what is per member is keyed by `member_id` so the tables can be distributed by member.

A prize is an inventory item at a location (`sku`, `location_id`): a unit awarded leaves
`stock_levels` by a movement in the draw's transaction, so the shelf and the pool are one
stock. `units` is the pool's allotment of that item and `awarded` its running count,
raised by a guarded UPDATE (`awarded + n <= units`): a prize is never over-awarded,
whichever of the two runs out first.

`prize_draws` is the log an auditor recomputes (lotteries/audit.py): a row per draw, never
deleted; only the claim (`claimed_at`, `claimed_store_id`, `claim_key`) is filled in,
once, by a conditional UPDATE.
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

ENTRIES = ("free", "scan", "purchase", "points", "campaign")
OUTCOMES = ("won", "no_prize", "sold_out")
ODDS_SCALE = 1_000_000  # odds are parts per million of the draws

prize_pools = Table(
    "prize_pools",
    metadata,
    Column("pool_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("code", String(64), nullable=False),
    Column("name_zh", String(200), nullable=False),
    Column("name_en", String(200), nullable=False),
    Column("starts_at", DateTime, nullable=False),
    Column("ends_at", DateTime, nullable=False),  # exclusive
    Column("claim_until", DateTime, nullable=False),  # exclusive
    # the entry rule: free, a QR scan of one of `scenes`, a paid order of at least
    # `min_paid_fen`, `points` spent per draw, or being granted `campaign`'s incentives
    Column("entry", String(16), nullable=False),
    Column("scenes", Text),  # JSON list, entry 'scan'
    Column("min_paid_fen", BigInteger),  # entry 'purchase'
    Column("points", BigInteger),  # entry 'points'
    Column("campaign", String(64)),  # entry 'campaign': the campaign's code
    Column("per_member", Integer, nullable=False),  # draws per member in the pool
    # the commitment published when the pool opens, and the seed, revealed after it ends
    Column("seed_sha256", String(64), nullable=False),
    Column("seed", String(128), nullable=False),
    Column("revealed_at", DateTime),
    Column("request_sha256", String(64), nullable=False),  # the definition, for replays
    Column("key_id", BigInteger),
    Column("created_at", DateTime, nullable=False),
    CheckConstraint("entry IN ('free', 'scan', 'purchase', 'points', 'campaign')", name="entry"),
    UniqueConstraint("group_id", "code"),
)

prize_pool_prizes = Table(
    "prize_pool_prizes",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("pool_code", String(64), nullable=False),
    Column("prize_code", String(64), nullable=False),
    Column("name_zh", String(200), nullable=False),
    Column("name_en", String(200), nullable=False),
    Column("sku", String(64), nullable=False),
    Column("location_id", String(64), nullable=False),
    Column("odds_ppm", Integer, nullable=False),  # chance per draw, parts per million
    Column("units", BigInteger, nullable=False),  # the pool's allotment of the item
    Column("awarded", BigInteger, nullable=False),
    PrimaryKeyConstraint("group_id", "pool_code", "prize_code"),
    CheckConstraint("awarded >= 0 AND awarded <= units", name="never_over_awarded"),
)

# Draws per member and pool: raised by a guarded UPDATE, so a limit is never exceeded.
prize_pool_entrants = Table(
    "prize_pool_entrants",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("pool_code", String(64), nullable=False),
    Column("member_id", BigInteger, nullable=False),
    Column("draws", Integer, nullable=False),
    PrimaryKeyConstraint("group_id", "pool_code", "member_id"),
)

prize_draws = Table(
    "prize_draws",
    metadata,
    Column("draw_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("pool_code", String(64), nullable=False),
    Column("member_id", BigInteger, nullable=False),
    Column("idempotency_key", String(200), nullable=False),
    Column("request_sha256", String(64), nullable=False),
    # the entry that paid for the draw: the scene scanned, the order, the points posting
    Column("entry", String(16), nullable=False),
    Column("scene", String(64)),
    Column("order_id", String(128)),
    Column("posting_id", BigInteger),
    # HMAC-SHA256(seed, "<pool>|<member>|<key>") and the roll taken from it
    Column("random_hex", String(64), nullable=False),
    Column("roll", Integer, nullable=False),
    Column("outcome", String(16), nullable=False),
    # the prize the roll fell on (also when it was sold out), its item and place
    Column("prize_code", String(64)),
    Column("sku", String(64)),
    Column("location_id", String(64)),
    Column("claim_code", String(16)),
    Column("claimed_at", DateTime),
    Column("claimed_store_id", String(64)),
    Column("claim_key", String(200)),
    Column("key_id", BigInteger),
    Column("drawn_at", DateTime, nullable=False),
    CheckConstraint("outcome IN ('won', 'no_prize', 'sold_out')", name="outcome"),
    UniqueConstraint("group_id", "idempotency_key"),
    UniqueConstraint("group_id", "claim_code"),
    # an order enters a pool once (NULLs, the other entries, are distinct)
    UniqueConstraint("group_id", "pool_code", "order_id"),
    Index("ix_prize_draws_member", "group_id", "pool_code", "member_id", "draw_id"),
    Index("ix_prize_draws_pool", "group_id", "pool_code", "draw_id"),
)
