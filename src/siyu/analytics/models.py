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
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
)

from siyu.store.metadata import metadata

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
