"""OneID operations as the faces (CLI, API) call them: the identity change, then the
ledger side, so balances follow merged members (and come back on unmerge).

Settling runs after the identity transaction has committed, in its own postings; it is
safe to repeat, so a crash between the two is repaired by the next operation.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from siyu.identity import merge as _merge
from siyu.identity import resolve as _resolve
from siyu.identity.attach import AttachResult, attach
from siyu.identity.ingest import Encoded, IdentifierEncoder
from siyu.identity.merge import UnmergeResult
from siyu.identity.resolve import ResolveReport, Step
from siyu.ledger.merges import settle_merges


def resolve_all(
    engine: Engine, group_id: str, strong_types: tuple[str, ...], step: Step | None = None
) -> ResolveReport:
    """Batch OneID over the whole group, then balances follow the members it merged."""
    report = _resolve.resolve_all(engine, group_id, strong_types, step)
    settle_merges(engine, group_id)
    return report


def attach_identity(
    engine: Engine,
    encoder: IdentifierEncoder,
    group_id: str,
    ident: Encoded,
    channel: str,
    observed_at: datetime,
    strong_types: tuple[str, ...],
    verified: bool = False,
    linked: Encoded | None = None,
) -> AttachResult:
    """Incremental OneID for one observed identifier; when it merged members, their
    balances follow. Conflicts are in the result, for the caller to report."""
    result = attach(
        engine, encoder, group_id, ident, channel, observed_at, strong_types, verified, linked
    )
    if result.merges:
        settle_merges(engine, group_id)
    return result


def merge_members(
    engine: Engine, group_id: str, member_a: int, member_b: int, reason: str
) -> tuple[int, int]:
    """Merge two members by hand (mode `manual`) in one transaction, then move the
    absorbed member's balances; returns (merge_id, survivor_id)."""
    with engine.begin() as conn:
        merged = _merge.merge_members(conn, group_id, member_a, member_b, reason, [], mode="manual")
    settle_merges(engine, group_id)
    return merged


def unmerge(engine: Engine, group_id: str, merge_id: int, reason: str) -> UnmergeResult:
    """Undo a merge, then give the restored member its balances back."""
    result = _merge.unmerge(engine, group_id, merge_id, reason)
    settle_merges(engine, group_id)
    return result
