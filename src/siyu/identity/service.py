"""OneID operations as the faces (CLI, API) call them: the identity change, then the
ledger side, so balances follow merged members (and come back on unmerge).

Settling runs after the identity transaction has committed, in its own postings; it is
safe to repeat, so a crash between the two is repaired by the next operation.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from siyu.config import DEFAULT_STRONG_TYPES
from siyu.identity import merge as _merge
from siyu.identity import resolve as _resolve
from siyu.identity.attach import AttachResult, attach
from siyu.identity.follow import follow
from siyu.identity.ingest import Encoded, IdentifierEncoder
from siyu.identity.merge import UnmergeResult
from siyu.identity.resolve import ResolveReport, Step
from siyu.store.dialect import dialect_of

HAND_MERGE_CHANNEL = "oneid.manual"  # the channel of the evidence link a hand merge writes


def resolve_all(
    engine: Engine, group_id: str, strong_types: tuple[str, ...], step: Step | None = None
) -> ResolveReport:
    """Batch OneID over the whole group, then balances follow the members it merged."""
    report = _resolve.resolve_all(engine, group_id, strong_types, step)
    follow(engine, group_id)
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
        follow(engine, group_id)
    return result


def merge_members(
    engine: Engine,
    group_id: str,
    member_a: int,
    member_b: int,
    reason: str,
    *,
    strong_types: tuple[str, ...] = DEFAULT_STRONG_TYPES,
) -> tuple[int, int]:
    """Merge two members by hand (mode `manual`) in one transaction, then move the
    absorbed member's balances; returns (merge_id, survivor_id).

    A person at HQ decided the two are one: the merge is bridged by an evidence link
    (channel `oneid.manual`), so batch OneID keeps it, and undoing it blocks the link, so
    batch OneID keeps them apart. Where the OneID policy lets evidence join what an
    account link may not (each member holds a card of one brand), HQ's decision stands and
    batch OneID reports a duplicate registration. Where it never does (two unionids of one
    account, two verified phones in use at once) the merge is refused (StrongConflict,
    409 `merge_conflict`) and nothing is written, as a bind or an accepted match review
    would be: batch OneID would split such a merge at its next run, into a new member
    given every balance of the survivor, which is worse than saying no now."""
    with engine.begin() as conn:
        # The shared side of OneID's group lock, as an attach takes: no batch resolve between.
        dialect_of(conn).advisory_lock(conn, "siyu.oneid", group_id, shared=True)
        refused = _merge.strong_conflict(conn, member_a, member_b)
        if refused is not None:
            raise refused
        merged = _merge.merge_as_one_person(
            conn,
            group_id,
            member_a,
            member_b,
            reason,
            "manual",
            channel=HAND_MERGE_CHANNEL,
            strong_types=strong_types,
        )
    follow(engine, group_id)
    return merged


def unmerge(engine: Engine, group_id: str, merge_id: int, reason: str) -> UnmergeResult:
    """Undo a merge, then give the restored member its balances back."""
    result = _merge.unmerge(engine, group_id, merge_id, reason)
    follow(engine, group_id)
    return result
