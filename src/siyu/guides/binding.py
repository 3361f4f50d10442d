"""A member's own guide (专属导购), bound by rule, rebound by HQ, released when a guide
leaves, followed through OneID merges; every binding a row of `guide_bindings`, ended rather
than deleted, so the rows are the member's history.

The rules, for every active member without a live binding (`bind_all`, one set-based
INSERT per step, safe to re-run: a bound member is never touched):

1. HQ's assignment (`rebind`): explicit, so it wins; the rules never replace a binding.
2. Acquisition: the guide of the QR scene whose scan first brought the member (a
   `first_touch` scan of a code naming a guide), or of the member's first WeCom contact
   (a `wecom_add` event carrying a guide), whichever came first.
3. First store purchase: the guide of the member's first till (`pos`) order that names a
   guide (a till sale without a guide binds nobody; the first one that names one does).
4. After a guide left (`release_guide`): another guide of the released binding's store,
   members spread evenly over the store's remaining guides (by member id, guides by id);
   a store without another guide leaves its members unbound, the ended row saying why.

A guide who left (`guide_departures`) is never chosen again by any rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from siyu.errors import NotFoundError, ValidationError
from siyu.guides.errors import GuideLeft, GuideNotFound
from siyu.guides.models import (
    FIRST_PURCHASE,
    GUIDE_LEFT,
    HQ,
    MERGED,
    REASON_MAX,
    REBOUND,
    SCENE,
    STORE,
    WECOM,
)
from siyu.guides.tasks import to_second
from siyu.store.dialect import dialect_of
from siyu.store.times import stored_now

LOCK = "guide_bindings"
MAX_ROUNDS = 32  # merge chains are short

_LIVE = "b.group_id = :g AND b.ended_at IS NULL"
_UNBOUND = (
    "m.group_id = :g AND m.status = 'active' AND NOT EXISTS (SELECT 1 FROM guide_bindings b "
    f"WHERE {_LIVE} AND b.member_id = m.member_id)"
)
_NOT_LEFT = (
    "NOT EXISTS (SELECT 1 FROM guide_departures d WHERE d.group_id = :g AND d.guide_id = {col})"
)
_COLUMNS = "(group_id, member_id, guide_id, store_id, rule, bound_at)"

# (The group is cast where it is selected: PostgreSQL must deduce one type per parameter.)
# Rules 2 and 3: the evidence of every unbound member, the best first (rule 2 before 3,
# then the earliest), and the guide's store from the reference data where it has one.
_BY_EVIDENCE = text(f"""
INSERT INTO guide_bindings {_COLUMNS}
WITH evidence AS (
  SELECT s.member_id, c.guide_id, c.store_id, '{SCENE}' AS rule, 1 AS priority, s.at AS seen_at
  FROM qr_scans s JOIN qr_scenes c ON c.group_id = s.group_id AND c.scene = s.scene
  WHERE s.group_id = :g AND s.first_touch AND c.guide_id IS NOT NULL
    AND s.member_id IS NOT NULL
  UNION ALL
  SELECT e.member_id, e.guide_id, e.store_id, '{WECOM}', 1, e.occurred_at FROM events e
  WHERE e.group_id = :g AND e.type = 'wecom_add' AND e.guide_id IS NOT NULL
    AND e.member_id IS NOT NULL
  UNION ALL
  SELECT o.member_id, o.guide_id, o.store_id, '{FIRST_PURCHASE}', 2, o.ordered_at FROM orders o
  WHERE o.group_id = :g AND o.channel = 'pos' AND o.guide_id IS NOT NULL
    AND o.member_id IS NOT NULL AND o.status <> 'cancelled'
), ranked AS (
  SELECT ev.member_id, ev.guide_id, ev.store_id, ev.rule, ROW_NUMBER() OVER (
    PARTITION BY ev.member_id ORDER BY ev.priority, ev.seen_at, ev.guide_id) AS rn
  FROM evidence ev JOIN members m ON m.member_id = ev.member_id
  WHERE {_UNBOUND} AND {_NOT_LEFT.format(col="ev.guide_id")}
)
SELECT CAST(:g AS VARCHAR(64)), r.member_id, r.guide_id, COALESCE(gd.store_id, r.store_id),
  r.rule, :at
FROM ranked r LEFT JOIN guides gd ON gd.group_id = :g AND gd.guide_id = r.guide_id
WHERE r.rn = 1
""")

# Rule 4: members whose latest binding ended because its guide left, to the store's
# remaining guides in turn (member k of the store to guide k mod n).
_BY_STORE = text(f"""
INSERT INTO guide_bindings {_COLUMNS}
WITH released AS (
  SELECT b.member_id, b.store_id,
    ROW_NUMBER() OVER (PARTITION BY b.store_id ORDER BY b.member_id) - 1 AS k
  FROM guide_bindings b JOIN members m ON m.member_id = b.member_id
  WHERE b.group_id = :g AND b.ended_reason = '{GUIDE_LEFT}' AND b.store_id IS NOT NULL
    AND {_UNBOUND}
    AND NOT EXISTS (SELECT 1 FROM guide_bindings later WHERE later.group_id = :g
                    AND later.member_id = b.member_id AND later.binding_id > b.binding_id)
), staff AS (
  SELECT gd.store_id, gd.guide_id,
    ROW_NUMBER() OVER (PARTITION BY gd.store_id ORDER BY gd.guide_id) - 1 AS j,
    COUNT(*) OVER (PARTITION BY gd.store_id) AS n
  FROM guides gd WHERE gd.group_id = :g AND {_NOT_LEFT.format(col="gd.guide_id")}
)
SELECT CAST(:g AS VARCHAR(64)), r.member_id, s.guide_id, r.store_id, '{STORE}', :at
FROM released r JOIN staff s ON s.store_id = r.store_id AND s.j = r.k % s.n
""")


@dataclass(frozen=True)
class Bound:
    """What a `bind_all` run bound: members per rule."""

    by_rule: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_rule.values())


def bind_all(engine: Engine, group_id: str, at: datetime | None = None) -> Bound:
    """Bind every active unbound member of the group by the rules (module docstring), in
    one transaction; a member already bound is left as it is, so re-running binds nobody
    twice."""
    with engine.begin() as conn:
        return bind_in(conn, group_id, at or stored_now())


_RULE_COUNTS = text(
    "SELECT rule, COUNT(*) AS n FROM guide_bindings WHERE group_id = :g AND bound_at = :at "
    "AND ended_at IS NULL AND key_id IS NULL AND merge_id IS NULL GROUP BY rule"
)


def bind_in(conn: Connection, group_id: str, at: datetime) -> Bound:
    """`bind_all` in the caller's transaction (release_guide binds in its own)."""
    dialect_of(conn).advisory_lock(conn, LOCK, group_id)
    params = {"g": group_id, "at": at}
    before = {str(r.rule): int(r.n) for r in conn.execute(_RULE_COUNTS, params)}
    conn.execute(_BY_EVIDENCE, params)
    conn.execute(_BY_STORE, params)
    after = {str(r.rule): int(r.n) for r in conn.execute(_RULE_COUNTS, params)}
    return Bound({k: n - before.get(k, 0) for k, n in after.items() if n > before.get(k, 0)})


# --- HQ: rebind a member, release a guide ------------------------------------------------------


@dataclass(frozen=True)
class Binding:
    binding_id: int
    member_id: int
    guide_id: str
    store_id: str | None
    rule: str
    bound_at: datetime
    ended_at: datetime | None
    ended_reason: str | None
    note: str | None


def clean_reason(reason: str | None, field: str = "reason") -> str:
    """The reason as stored: trimmed, required, at most REASON_MAX characters."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(field, "is required: say why")
    if len(reason) > REASON_MAX or any(ord(c) < 32 for c in reason):
        raise ValidationError(field, f"must be at most {REASON_MAX} printable characters")
    return reason


_SURVIVOR = text("SELECT status, merged_into FROM members WHERE group_id = :g AND member_id = :m")


def survivor_of(conn: Connection, group_id: str, member_id: int) -> int:
    """The member, or the one it was merged into; `NotFoundError` when there is none."""
    current = member_id
    for _ in range(MAX_ROUNDS):
        row = conn.execute(_SURVIVOR, {"g": group_id, "m": current}).first()
        if row is None:
            raise NotFoundError(f"member_id: no member {member_id}")
        if row.status != "merged" or row.merged_into is None:
            return current
        current = int(row.merged_into)
    return current


_GUIDE = text(
    "SELECT gd.store_id, d.left_at FROM guides gd LEFT JOIN guide_departures d "
    "ON d.group_id = gd.group_id AND d.guide_id = gd.guide_id "
    "WHERE gd.group_id = :g AND gd.guide_id = :gd"
)
_LIVE_OF = text(
    "SELECT binding_id, guide_id FROM guide_bindings WHERE group_id = :g AND member_id = :m "
    "AND ended_at IS NULL"
)
_END = text(
    "UPDATE guide_bindings SET ended_at = :at, ended_reason = :why, note = :note "
    "WHERE group_id = :g AND binding_id = :b AND ended_at IS NULL"
)
_BIND = text(
    f"INSERT INTO guide_bindings {_COLUMNS[:-1]}, note, key_id) "
    f"VALUES (:g, :m, :gd, :store, '{HQ}', :at, :note, :key)"
)


def guide_store(conn: Connection, group_id: str, guide_id: str) -> str:
    """The guide's store; `GuideNotFound` (404) when unknown, `GuideLeft` (409) when it left."""
    row = conn.execute(_GUIDE, {"g": group_id, "gd": guide_id}).first()
    if row is None:
        raise GuideNotFound(guide_id)
    if row.left_at is not None:
        raise GuideLeft(guide_id)
    return str(row.store_id)


def rebind(
    engine: Engine,
    group_id: str,
    member_id: int,
    guide_id: str,
    reason: str,
    key_id: int | None = None,
    at: datetime | None = None,
) -> Binding:
    """HQ binds the member (its survivor, after a merge) to `guide_id`: the live binding
    ends (`rebound`, with the reason) and an `hq` binding starts. Binding a member to the
    guide it already has changes nothing."""
    note = clean_reason(reason)
    at = at or stored_now()
    with engine.begin() as conn:
        dialect_of(conn).advisory_lock(conn, LOCK, group_id)
        member = survivor_of(conn, group_id, member_id)
        store = guide_store(conn, group_id, guide_id)
        live = conn.execute(_LIVE_OF, {"g": group_id, "m": member}).first()
        if live is None or live.guide_id != guide_id:
            if live is not None:
                end = {"at": at, "why": REBOUND, "note": note, "g": group_id}
                conn.execute(_END, {**end, "b": live.binding_id})
            bind = {"g": group_id, "m": member, "gd": guide_id, "store": store, "at": at}
            conn.execute(_BIND, {**bind, "note": note, "key": key_id})
        return current_binding(conn, group_id, member)  # type: ignore[return-value]


@dataclass(frozen=True)
class Released:
    guide_id: str
    released: int  # live bindings ended
    rebound: int  # of those members, bound again (to another guide of the store or by rule)


_DEPART = text(
    "INSERT INTO guide_departures (group_id, guide_id, left_at, note, key_id) "
    "SELECT CAST(:g AS VARCHAR(64)), CAST(:gd AS VARCHAR(64)), :at, "
    "CAST(:note AS VARCHAR(200)), :key WHERE NOT EXISTS (SELECT 1 FROM guide_departures "
    "WHERE group_id = :g AND guide_id = :gd)"
)
_RELEASE = text(
    f"UPDATE guide_bindings SET ended_at = :at, ended_reason = '{GUIDE_LEFT}', note = :note "
    "WHERE group_id = :g AND guide_id = :gd AND ended_at IS NULL"
)
_RELEASED_LIVE = text(
    "SELECT COUNT(*) FROM guide_bindings b JOIN guide_bindings old ON old.group_id = b.group_id "
    "AND old.member_id = b.member_id AND old.guide_id = :gd AND old.ended_at = :at "
    f"AND old.ended_reason = '{GUIDE_LEFT}' WHERE b.group_id = :g AND b.ended_at IS NULL"
)


def release_guide(
    engine: Engine,
    group_id: str,
    guide_id: str,
    reason: str,
    key_id: int | None = None,
    at: datetime | None = None,
) -> Released:
    """The guide leaves: it is recorded as gone (no rule binds to it again), its live
    bindings end (`guide_left`, with the reason), and the rules bind its members again in
    the same transaction: by their other evidence, else to another guide of the store;
    the rest stay unbound. Releasing a guide twice ends nothing more."""
    note = clean_reason(reason)
    at = at or stored_now()
    with engine.begin() as conn:
        dialect_of(conn).advisory_lock(conn, LOCK, group_id)
        if conn.execute(_GUIDE, {"g": group_id, "gd": guide_id}).first() is None:
            raise GuideNotFound(guide_id)
        params = {"g": group_id, "gd": guide_id, "at": at, "note": note}
        conn.execute(_DEPART, {**params, "key": key_id})
        released = conn.execute(_RELEASE, params).rowcount
        bind_in(conn, group_id, at)
        rebound = int(conn.execute(_RELEASED_LIVE, params).scalar_one()) if released else 0
    return Released(guide_id, released, rebound)


# --- reads -------------------------------------------------------------------------------------

_HISTORY = text(
    "SELECT binding_id, member_id, guide_id, store_id, rule, bound_at, ended_at, ended_reason, "
    "note FROM guide_bindings WHERE group_id = :g AND member_id = :m "
    "ORDER BY bound_at DESC, binding_id DESC"
)


def _binding(r: Any) -> Binding:
    return Binding(
        int(r.binding_id),
        int(r.member_id),
        str(r.guide_id),
        r.store_id,
        str(r.rule),
        to_second(r.bound_at),
        None if r.ended_at is None else to_second(r.ended_at),
        r.ended_reason,
        r.note,
    )


def history(conn: Connection, group_id: str, member_id: int) -> list[Binding]:
    """The member's bindings, the latest first (the live one, if any, leads)."""
    return [_binding(r) for r in conn.execute(_HISTORY, {"g": group_id, "m": member_id})]


def current_binding(conn: Connection, group_id: str, member_id: int) -> Binding | None:
    """The member's live binding, or None when it has no own guide."""
    return next((b for b in history(conn, group_id, member_id) if b.ended_at is None), None)


# --- OneID: bindings follow merges -------------------------------------------------------------

# The survivor without a live binding inherits the earliest-bound live binding of the
# members merged into it (its guide, store and start: the relation dates from then).
_INHERIT = """
INSERT INTO guide_bindings (group_id, member_id, guide_id, store_id, rule, bound_at, merge_id)
SELECT b.group_id, m.survivor_id, b.guide_id, b.store_id, 'inherited', b.bound_at, m.merge_id
FROM guide_bindings b
JOIN merges m ON m.group_id = b.group_id AND m.merged_id = b.member_id
  AND m.undone_at IS NULL {only}
WHERE b.group_id = :g AND b.ended_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM guide_bindings own WHERE own.group_id = b.group_id
                  AND own.member_id = m.survivor_id AND own.ended_at IS NULL)
  AND NOT EXISTS (
    SELECT 1 FROM guide_bindings earlier
    JOIN merges m2 ON m2.group_id = earlier.group_id AND m2.merged_id = earlier.member_id
      AND m2.undone_at IS NULL AND m2.survivor_id = m.survivor_id {only2}
    WHERE earlier.group_id = b.group_id AND earlier.ended_at IS NULL
      AND (earlier.bound_at < b.bound_at
           OR (earlier.bound_at = b.bound_at AND earlier.binding_id < b.binding_id)))
"""
_ABSORB = f"""
UPDATE guide_bindings SET ended_at = :at, ended_reason = '{MERGED}',
  merge_id = (SELECT m.merge_id FROM merges m WHERE m.group_id = guide_bindings.group_id
              AND m.merged_id = guide_bindings.member_id AND m.undone_at IS NULL {{only}})
WHERE group_id = :g AND ended_at IS NULL AND member_id IN (
  SELECT m.merged_id FROM merges m WHERE m.group_id = :g AND m.undone_at IS NULL {{only}})
"""


_UNDONE = "SELECT m.merge_id FROM merges m WHERE m.group_id = :g AND m.undone_at IS NOT NULL {only}"
# An undone merge: the copies it made go (while live: HQ may have rebound since), and each
# member it absorbed gets the binding it ended back, unless bound again meanwhile.
_DROP_COPIES = f"""DELETE FROM guide_bindings WHERE group_id = :g AND rule = 'inherited'
  AND ended_at IS NULL AND merge_id IN ({_UNDONE})"""
_RESTORE = f"""UPDATE guide_bindings SET ended_at = NULL, ended_reason = NULL, merge_id = NULL
WHERE group_id = :g AND ended_reason = '{MERGED}' AND merge_id IN ({_UNDONE})
  AND NOT EXISTS (SELECT 1 FROM guide_bindings b WHERE b.group_id = :g
                  AND b.member_id = guide_bindings.member_id AND b.ended_at IS NULL)"""


def follow_merges(
    engine: Engine,
    group_id: str,
    merge_ids: Sequence[int] | None = None,
    at: datetime | None = None,
) -> int:
    """After OneID merges (all, or `merge_ids`): the survivor keeps its own guide, or
    inherits the earliest-bound of its absorbed members'; every absorbed member's live
    binding ends (`merged`). After an unmerge, the survivor's inherited copy goes and the
    restored member's binding is live again. Returns the bindings ended; repeating changes
    nothing."""
    ids = None if merge_ids is None else ",".join(map(str, map(int, merge_ids))) or "NULL"
    only = "" if ids is None else f"AND m.merge_id IN ({ids})"
    only2 = "" if ids is None else f"AND m2.merge_id IN ({ids})"
    params = {"g": group_id, "at": at or stored_now()}
    ended = 0
    with engine.begin() as conn:
        dialect_of(conn).advisory_lock(conn, LOCK, group_id)
        # unmerges first: a member merged, unmerged and merged again ends merged
        conn.execute(text(_DROP_COPIES.format(only=only)), params)
        conn.execute(text(_RESTORE.format(only=only)), params)
        for _ in range(MAX_ROUNDS):
            conn.execute(text(_INHERIT.format(only=only, only2=only2)), params)
            taken = conn.execute(text(_ABSORB.format(only=only)), params).rowcount
            if not taken:
                break
            ended += taken
    return ended
