"""Merging two members that probabilistic matching says are one person.

A matched pair merges as a hand merge does (`identity.merge.merge_as_one_person`: the
older survives, the identities moved are recorded, the merge can be undone, and an
`evidence` link between a representative identity of each member, channel `oneid.match`,
bridges them). Batch OneID recomputes members from identity links, so without that link
the next `resolve_all` would split the pair again; with it the pair stays one member.
The link is the merge's bridging link, so undoing the merge blocks it and no later run
joins the pair again.

Used by the batch run's automatic merges (mode `probabilistic`) and by a reviewer's
acceptance (mode `review`, `identity.matching.review`).
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import Connection, text, update

from siyu.config import DEFAULT_STRONG_TYPES
from siyu.errors import NotFoundError, ValidationError
from siyu.identity.errors import MergeError, ReviewDecided, ReviewNotFound
from siyu.identity.merge import merge_as_one_person, strong_conflict
from siyu.identity.models import match_reviews
from siyu.store.dialect import dialect_of
from siyu.store.times import stored_now

MATCH_CHANNEL = "oneid.match"  # the channel of every evidence link a match writes
MATCH_MODES = ("probabilistic", "review")
# What a review becomes when its pair merges, by the merge's mode.
MERGED_STATUS = {"probabilistic": "merged", "review": "accepted"}
_CHAIN_MAX = 32  # merge chains are short; the bound guards against a cycle


class MatchedMerge(NamedTuple):
    """What `merge_matched` did: `merge_id` None means the two were one member already
    (merged by another path since they were scored) and nothing was written."""

    merge_id: int | None
    survivor_id: int


def merge_matched(
    conn: Connection,
    group_id: str,
    member_a: int,
    member_b: int,
    mode: str,
    review_id: int | None = None,
    reason: str = "probabilistic match",
    *,
    decided_by: str | None = None,
    strong_types: tuple[str, ...] = DEFAULT_STRONG_TYPES,
) -> MatchedMerge:
    """Merge the members now holding `member_a` and `member_b` (each followed to the
    member it was merged into since) as one recorded, undoable merge bridged by an
    evidence link. With `review_id`, that pending review becomes accepted (mode
    `review`) or merged (`probabilistic`) in the same transaction, which the caller
    holds. Refused (StrongConflict, a MergeError) when strong identifiers conflict: two
    unionids, two verified phones in use at once."""
    if mode not in MATCH_MODES:
        raise ValidationError("mode", f"must be one of {', '.join(MATCH_MODES)}", mode)
    # The shared side of OneID's group lock, as an attach takes: no batch resolve between.
    dialect_of(conn).advisory_lock(conn, "siyu.oneid", group_id, shared=True)
    if review_id is not None:
        _claim_review(conn, group_id, review_id, member_a, member_b)
    a, b = _lock_current(conn, group_id, member_a, member_b)
    if a == b:
        done = MatchedMerge(None, a)
    else:
        refused = strong_conflict(conn, a, b)
        if refused is not None:
            raise refused
        merge_id, survivor = merge_as_one_person(
            conn, group_id, a, b, reason, mode, channel=MATCH_CHANNEL, strong_types=strong_types
        )
        done = MatchedMerge(merge_id, survivor)
    if review_id is not None:
        conn.execute(
            update(match_reviews)
            .where(match_reviews.c.review_id == review_id, match_reviews.c.status == "pending")
            .values(
                status=MERGED_STATUS[mode],
                merge_id=done.merge_id,
                decided_at=stored_now(),
                decided_by=decided_by,
            )
        )
    return done


def current_member(conn: Connection, group_id: str, member_id: int) -> int:
    """The member itself, or the member it was merged into (followed to the end)."""
    current = member_id
    for _ in range(_CHAIN_MAX):
        row = conn.execute(
            text("SELECT status, merged_into FROM members WHERE group_id = :g AND member_id = :m"),
            {"g": group_id, "m": current},
        ).first()
        if row is None:
            raise NotFoundError(f"member_id: no member {member_id} in brand group {group_id}")
        if row.status != "merged" or row.merged_into is None:
            return current
        current = int(row.merged_into)
    raise MergeError(f"member_id: member {member_id}'s merge chain is longer than {_CHAIN_MAX}")


def _claim_review(
    conn: Connection, group_id: str, review_id: int, member_a: int, member_b: int
) -> None:
    """Lock the review and check it is pending and names this pair."""
    row = conn.execute(
        text(
            "SELECT member_a, member_b, status FROM match_reviews "
            "WHERE group_id = :g AND review_id = :r "
            + dialect_of(conn).lock_rows_in_order("review_id")
        ),
        {"g": group_id, "r": review_id},
    ).first()
    if row is None:
        raise ReviewNotFound(review_id)
    if row.status != "pending":
        raise ReviewDecided(review_id, str(row.status))
    if {int(row.member_a), int(row.member_b)} != {member_a, member_b}:
        raise ValidationError(
            "review_id", f"review {review_id} is the pair {row.member_a} and {row.member_b}"
        )


def _lock_current(conn: Connection, group_id: str, member_a: int, member_b: int) -> tuple[int, int]:
    """The two current members, row-locked in key order while both are active, so neither
    is merged elsewhere between this check and the merge (retried if one was)."""
    for _ in range(_CHAIN_MAX):
        a, b = current_member(conn, group_id, member_a), current_member(conn, group_id, member_b)
        if a == b:
            return a, b
        rows = conn.execute(
            text(
                "SELECT member_id, status FROM members WHERE group_id = :g "
                "AND member_id IN (:a, :b) " + dialect_of(conn).lock_rows_in_order("member_id")
            ),
            {"g": group_id, "a": a, "b": b},
        ).all()
        if len(rows) == 2 and all(r.status == "active" for r in rows):
            return a, b
    raise MergeError(f"members {member_a} and {member_b} keep changing; try again")
