"""Redemption identifies a person: a phone or card presented with a coupon at a counter is
linked, through OneID, to the member who holds the coupon ("from redeeming coupons to
redeeming people"). OneID decides what the link means: a new identifier joins the holder,
one held by another member merges the two or is recorded as a conflict, by its policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from siyu.identity.ingest import Encoded, IdentifierEncoder
from siyu.identity.queries import anchor_encoded
from siyu.identity.service import attach_identity


@dataclass
class Identified:
    linked: bool
    member_id: int  # whose the presented identifier is now (the holder, unless refused)
    merges: list[int] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    why_not: str | None = None


def identify(
    engine: Engine,
    encoder: IdentifierEncoder,
    group_id: str,
    holder_id: int,
    presented: Encoded,
    channel: str,
    at: datetime,
    strong_types: tuple[str, ...],
) -> Identified:
    """Link `presented` to the coupon's holder, in OneID's own transaction (after the
    redemption has committed: a redemption never waits for, or fails on, identity)."""
    with engine.connect() as conn:
        anchor = anchor_encoded(conn, group_id, holder_id, strong_types)
    if anchor is None:
        return Identified(False, holder_id, why_not="the holder has no identifier to link to")
    result = attach_identity(
        engine, encoder, group_id, presented, channel, at, strong_types, linked=anchor
    )
    return Identified(True, result.member_id, result.merges, result.conflicts)
