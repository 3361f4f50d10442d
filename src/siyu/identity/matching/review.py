"""The review queue: member pairs whose match probability lies between the review and the
auto-merge thresholds wait here (`match_reviews`) for a person at HQ to decide.

Reads go through the async read port, as the console's and the API's member pages do;
the profiles are `identity.profile`'s, so personal data is masked exactly as there
(in the clear only for roles that may see it). A decision is one transaction: accepting
merges the pair (`merge_matched`, mode `review`), after which balances follow the merge;
rejecting blocks the pair, and `blocked_pairs` is what later batch runs skip.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, text, update

from siyu.auth.principal import Principal
from siyu.auth.scope import survivor
from siyu.config import DEFAULT_STRONG_TYPES
from siyu.identity.errors import ReviewDecided, ReviewNotFound
from siyu.identity.follow import follow
from siyu.identity.matching.merge import merge_matched
from siyu.identity.models import match_reviews
from siyu.identity.profile import PROFILE, render_profile
from siyu.privacy import Vault
from siyu.store.reads import Reader, Sql
from siyu.store.times import stored_now, stored_time

# Pairs a later run must not propose again: a person said no, or undid the merge.
BLOCKING = ("rejected", "undone")

_COLUMNS = """SELECT r.review_id, r.member_a, r.member_b, r.match_weight, r.match_probability,
    r.status, r.model_id, r.merge_id, r.detected_at, r.decided_at, r.decided_by,
    r.field_weights, ma.name_masked AS name_a, mb.name_masked AS name_b
    FROM match_reviews r
    LEFT JOIN members ma ON ma.group_id = r.group_id AND ma.member_id = r.member_a
    LEFT JOIN members mb ON mb.group_id = r.group_id AND mb.member_id = r.member_b"""
# Strongest evidence first; the id keeps the order total, so a page ends where the next begins.
_ORDER = "ORDER BY r.match_weight DESC, r.review_id LIMIT :n"
QUEUE = Sql(f"{_COLUMNS} WHERE r.group_id = :g AND r.status = :s {_ORDER}")
# The page after review :after (the previous page's last), by its weight and id.
QUEUE_AFTER = Sql(
    f"""{_COLUMNS} JOIN match_reviews c ON c.group_id = r.group_id AND c.review_id = :after
    WHERE r.group_id = :g AND r.status = :s
      AND (r.match_weight < c.match_weight
           OR (r.match_weight = c.match_weight AND r.review_id > c.review_id)) {_ORDER}"""
)
QUEUE_COUNT = Sql("SELECT COUNT(*) AS n FROM match_reviews WHERE group_id = :g AND status = :s")
REVIEW = Sql(f"{_COLUMNS} WHERE r.group_id = :g AND r.review_id = :r")
POSTCODE = Sql("SELECT postcode FROM members WHERE group_id = :g AND member_id = :m")


@dataclass(frozen=True)
class FieldWeight:
    """How much one compared field moved the match: its level (a label such as "one digit
    off", never a personal value) and the match weight it added (log2 of its Bayes factor)."""

    field: str
    level: str
    weight: float


@dataclass(frozen=True)
class Review:
    review_id: int
    member_a: int
    member_b: int
    match_weight: float
    match_probability: float
    status: str
    model_id: int | None
    merge_id: int | None
    detected_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    name_a: str | None  # masked, whoever reads
    name_b: str | None
    fields: list[FieldWeight]


@dataclass(frozen=True)
class ReviewPage:
    total: int  # reviews in this status
    reviews: list[Review]
    next_after: int | None  # pass as `after` for the next page; None: the last page


@dataclass(frozen=True)
class Side:
    """One member of the pair: the id scored, the member holding it now (itself, or the
    member it was merged into since), that member's profile as the reader may see it."""

    member_id: int
    current_id: int
    profile: dict[str, Any]
    postcode: str | None


@dataclass(frozen=True)
class ReviewDetail:
    review: Review
    sides: tuple[Side, Side]

    @property
    def same_member(self) -> bool:
        """Merged by another path since they were scored: accepting changes nothing."""
        return self.sides[0].current_id == self.sides[1].current_id


@dataclass(frozen=True)
class Decision:
    review_id: int
    status: str
    merge_id: int | None  # None: rejected, or the pair was one member already
    survivor_id: int | None  # None: rejected


def actor(who: Principal) -> str:
    """What `decided_by` holds for a decision made with an API key (or its session)."""
    return f"key:{who.key_id}"


def actor_key(decided_by: str | None) -> int | None:
    """The API key id of `decided_by`, None when a run (not a person) decided."""
    if decided_by and decided_by.startswith("key:") and decided_by[4:].isdigit():
        return int(decided_by[4:])
    return None


# --- reads ----------------------------------------------------------------------------------


async def list_reviews(
    reader: Reader,
    group_id: str,
    status: str = "pending",
    limit: int = 50,
    after: int | None = None,
) -> ReviewPage:
    """Reviews in `status`, strongest match first, `limit` per page; `after` is the last
    review of the page before (keyset paging: a decision between pages skips no pair)."""
    params: dict[str, Any] = {"g": group_id, "s": status, "n": limit + 1}
    if after is None:
        rows = await reader.all(QUEUE, params)
    else:
        rows = await reader.all(QUEUE_AFTER, {**params, "after": after})
    counted = await reader.first(QUEUE_COUNT, {"g": group_id, "s": status})
    more = len(rows) > limit
    reviews = [_review(r) for r in rows[:limit]]
    return ReviewPage(
        int(counted.n) if counted else 0,
        reviews,
        reviews[-1].review_id if more else None,
    )


async def get_review(reader: Reader, vault: Vault, who: Principal, review_id: int) -> ReviewDetail:
    """One review with both members side by side, masked for `who`'s role as a profile
    is; `ReviewNotFound` when the principal's group has none of that id."""
    row = await reader.first(REVIEW, {"g": who.group_id, "r": review_id})
    if row is None:
        raise ReviewNotFound(review_id)
    review = _review(row)
    sides = [await _side(reader, vault, who, m) for m in (review.member_a, review.member_b)]
    return ReviewDetail(review, (sides[0], sides[1]))


async def _side(reader: Reader, vault: Vault, who: Principal, member_id: int) -> Side:
    current = await survivor(reader, who.group_id, member_id)
    params = {"g": who.group_id, "m": current}
    profile = render_profile(vault, who, await reader.all(PROFILE, params))
    found = await reader.first(POSTCODE, params)
    return Side(member_id, current, profile, None if found is None else found.postcode)


def _review(r: Any) -> Review:
    return Review(
        review_id=int(r.review_id),
        member_a=int(r.member_a),
        member_b=int(r.member_b),
        match_weight=float(r.match_weight),
        match_probability=float(r.match_probability),
        status=str(r.status),
        model_id=None if r.model_id is None else int(r.model_id),
        merge_id=None if r.merge_id is None else int(r.merge_id),
        detected_at=stored_time(r.detected_at),
        decided_at=None if r.decided_at is None else stored_time(r.decided_at),
        decided_by=r.decided_by,
        name_a=r.name_a,
        name_b=r.name_b,
        fields=field_weights(r.field_weights),
    )


def field_weights(raw: str | None) -> list[FieldWeight]:
    """The stored JSON list of per-field weights; entries of another shape are left out
    rather than failing the page (the engine writes them, a person reads them)."""
    try:
        items = json.loads(raw or "[]")
    except ValueError:
        return []
    found = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        field, level, weight = item.get("field"), item.get("level"), item.get("weight")
        if isinstance(field, str) and isinstance(weight, int | float):
            found.append(FieldWeight(field, str(level or ""), float(weight)))
    return found


# --- decisions ------------------------------------------------------------------------------


def accept_review(
    engine: Engine,
    group_id: str,
    review_id: int,
    decided_by: str,
    strong_types: tuple[str, ...] = DEFAULT_STRONG_TYPES,
) -> Decision:
    """Accept a pending review: its pair merges (mode `review`, undoable) and the review
    records who decided, when, and the merge, in one transaction; then balances follow
    the merge. `ReviewDecided` (409) if it is not pending; MergeError (409) if a strong
    identifier refuses the pair, and then nothing was written."""
    with engine.begin() as conn:
        pair = _pair(conn, group_id, review_id)
        done = merge_matched(
            conn,
            group_id,
            pair[0],
            pair[1],
            "review",
            review_id=review_id,
            reason=f"match review {review_id} accepted",
            decided_by=decided_by,
            strong_types=strong_types,
        )
    if done.merge_id is not None:
        follow(engine, group_id)
    return Decision(review_id, "accepted", done.merge_id, done.survivor_id)


def reject_review(engine: Engine, group_id: str, review_id: int, decided_by: str) -> Decision:
    """Reject a pending review: the pair stays two members and later runs skip it
    (`blocked_pairs`). `ReviewDecided` (409) if it is not pending."""
    with engine.begin() as conn:
        changed = conn.execute(
            update(match_reviews)
            .where(
                match_reviews.c.group_id == group_id,
                match_reviews.c.review_id == review_id,
                match_reviews.c.status == "pending",
            )
            .values(status="rejected", decided_at=stored_now(), decided_by=decided_by)
        ).rowcount
        if changed != 1:
            _pair(conn, group_id, review_id)  # raises: unknown, or decided already
    return Decision(review_id, "rejected", None, None)


def _pair(conn: Connection, group_id: str, review_id: int) -> tuple[int, int]:
    row = conn.execute(
        text(
            "SELECT member_a, member_b, status FROM match_reviews "
            "WHERE group_id = :g AND review_id = :r"
        ),
        {"g": group_id, "r": review_id},
    ).first()
    if row is None:
        raise ReviewNotFound(review_id)
    if row.status != "pending":
        raise ReviewDecided(review_id, str(row.status))
    return int(row.member_a), int(row.member_b)


# A pair a person said is two people: a rejected or undone review, or any undone merge
# (a hand merge or a batch one has no review row, and its undo must hold against the
# matcher too), lower member first.
UNDONE_MERGES = """SELECT
    CASE WHEN survivor_id < merged_id THEN survivor_id ELSE merged_id END,
    CASE WHEN survivor_id < merged_id THEN merged_id ELSE survivor_id END
    FROM merges WHERE group_id = :g AND undone_at IS NOT NULL"""
_BLOCKED = text(
    "SELECT member_a, member_b FROM match_reviews WHERE group_id = :g AND status IN :s "
    f"UNION {UNDONE_MERGES}"
).bindparams(bindparam("s", expanding=True))
_MERGED_INTO = text(
    "SELECT member_id, merged_into FROM members WHERE group_id = :g AND status = 'merged' "
    "AND member_id IN :ids"
).bindparams(bindparam("ids", expanding=True))
_CHUNK = 5_000  # ids per IN list


def blocked_pairs(conn: Connection, group_id: str) -> set[tuple[int, int]]:
    """Member pairs (lower id first) a batch run must not merge nor queue: each rejected
    or undone pair (a review, or a merge of any mode) as stored and as the members now
    holding it (a member merged into another since carries the decision with it)."""
    pairs = {
        (int(a), int(b)) for a, b in conn.execute(_BLOCKED, {"g": group_id, "s": list(BLOCKING)})
    }
    current = _survivors(conn, group_id, {m for pair in pairs for m in pair})
    found = set(pairs)
    for a, b in pairs:
        x, y = current.get(a, a), current.get(b, b)
        if x != y:
            found.add((min(x, y), max(x, y)))
    return found


def _survivors(conn: Connection, group_id: str, members: set[int]) -> dict[int, int]:
    """member -> the member it was merged into, followed to the end (merged ones only)."""
    step: dict[int, int] = {}
    todo = set(members)
    for _ in range(32):  # merge chains are short
        todo -= step.keys()
        if not todo:
            break
        ordered = sorted(todo)
        found: dict[int, int] = {}
        for i in range(0, len(ordered), _CHUNK):
            rows = conn.execute(_MERGED_INTO, {"g": group_id, "ids": ordered[i : i + _CHUNK]})
            found.update({int(m): int(s) for m, s in rows if s is not None})
        step.update(found)
        todo = set(found.values())
    out = {}
    for member in members:
        current = member
        for _ in range(32):
            if current not in step:
                break
            current = step[current]
        if current != member:
            out[member] = current
    return out
