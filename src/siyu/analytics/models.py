"""What the analytics write back to the operational store, for serving (API, segments,
campaigns): the tables are replaced per run, never edited row by row.

member_stages has no foreign key, like the other tables keyed by member (see
siyu.orders.models): it is rewritten whole per brand group, and distributed by member_id
on Citus with the facts.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from siyu.store.metadata import BigId, metadata

member_stages = Table(
    "member_stages",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("member_id", BigInteger, nullable=False, autoincrement=False),
    # prospect, new_1 .. new_{knee-1}, loyal, at_risk, lapsed (siyu.analytics.stages)
    Column("stage", String(32), nullable=False),
    Column("orders", Integer, nullable=False),
    Column("last_order_at", DateTime),
    Column("computed_at", DateTime, nullable=False),
    PrimaryKeyConstraint("group_id", "member_id"),
)
Index("ix_member_stages_group_id", member_stages.c.group_id, member_stages.c.stage)

# Each buyer's RFM scores and segment as the last snapshot scored them
# (analytics.writeback.write_member_rfm), so the RFM page's counts open the members
# behind them (segments.lists). Rewritten whole per brand group with each snapshot.
member_rfm = Table(
    "member_rfm",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("member_id", BigInteger, nullable=False, autoincrement=False),
    Column("r", Integer, nullable=False),
    Column("f", Integer, nullable=False),
    Column("m", Integer, nullable=False),
    Column("segment", String(32), nullable=False),
    Column("computed_at", DateTime, nullable=False),
    PrimaryKeyConstraint("group_id", "member_id"),
)
Index("ix_member_rfm_segment", member_rfm.c.group_id, member_rfm.c.segment)

# Each buyer's customer lifetime value over the next 12 months as the last snapshot fitted
# it (analytics.writeback.write_member_clv: BG/NBD + Gamma-Gamma on the brand's own buyers),
# so the guides' follow-up tasks rank by what a member is worth (guides.tasks). Rewritten
# whole per brand group with each snapshot; no rows when the fit could not run.
member_clv = Table(
    "member_clv",
    metadata,
    Column("group_id", String(64), nullable=False),
    Column("member_id", BigInteger, nullable=False, autoincrement=False),
    Column("expected_purchases", Float, nullable=False),  # over the horizon
    Column("p_alive", Float, nullable=False),
    Column("clv_fen", BigInteger, nullable=False),  # expected spend over the horizon
    Column("horizon_days", Integer, nullable=False),
    Column("computed_at", DateTime, nullable=False),
    PrimaryKeyConstraint("group_id", "member_id"),
)

# Aggregates the console serves (siyu.analytics.snapshot): one JSON payload per kind and
# run, computed from the warehouse so no page request touches DuckDB. A few runs are kept
# per kind (the newest is served); the index finds the newest in one seek.
analytics_snapshots = Table(
    "analytics_snapshots",
    metadata,
    Column("snapshot_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("as_of", DateTime, nullable=False),  # the end of the data it describes
    Column("computed_at", DateTime, nullable=False),
    Column("payload", Text, nullable=False),  # JSON: aggregates only, no personal data
)
Index(
    "ix_analytics_snapshots_kind",
    analytics_snapshots.c.group_id,
    analytics_snapshots.c.kind,
    analytics_snapshots.c.snapshot_id,
)
