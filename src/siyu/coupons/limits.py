"""Limit counters: raised by a conditional UPDATE in the caller's transaction.

`UPDATE ... SET used = used + n WHERE ... AND used + n <= cap` is checked and applied by
the database in one statement on the locked row: two transactions can never both take
the last unit (PostgreSQL re-checks the condition on the row once the first commits;
SQLite runs one writer at a time). Counting always happens, limit or not, so a cap set
by a later template version counts what came before it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, bindparam, text

from siyu.coupons.errors import LimitReached
from siyu.coupons.models import coupon_counters
from siyu.store.dialect import dialect_of

EVERYONE = 0  # the member_id of a counter over all members

_RAISE = text("""UPDATE coupon_counters SET used = used + :n
                 WHERE group_id = :g AND counter = :c AND member_id = :m
                   AND (:cap < 0 OR used + :n <= :cap)""")
_RAISE_MEMBERS = text("""UPDATE coupon_counters SET used = used + 1
                         WHERE group_id = :g AND counter = :c AND member_id IN :ms
                           AND (:cap < 0 OR used + 1 <= :cap)
                         RETURNING member_id""").bindparams(bindparam("ms", expanding=True))
_USED = text("""SELECT used FROM coupon_counters
                WHERE group_id = :g AND counter = :c AND member_id = :m""")


def counter(template_code: str, what: str) -> str:
    return f"{template_code}:{what}"


def _ensure(conn: Connection, group_id: str, name: str, member_ids: Sequence[int]) -> None:
    conn.execute(
        dialect_of(conn).insert_ignore(coupon_counters),
        [{"group_id": group_id, "counter": name, "member_id": m, "used": 0} for m in member_ids],
    )


def hold(conn: Connection, group_id: str, names: Sequence[str]) -> dict[str, int]:
    """Lock the group-wide counters `names` until commit, in one order (by name), before
    anything else is locked; returns their counts. Two batches of redemptions that share
    a coupon would otherwise deadlock: one holding the counter and waiting for the
    coupon, the other holding the coupon and waiting for the counter (PostgreSQL aborts
    one after a second)."""
    ordered = sorted(set(names))
    if not ordered:
        return {}
    query = text(f"""SELECT counter, used FROM coupon_counters
                     WHERE group_id = :g AND member_id = :m AND counter IN :cs
                     ORDER BY counter{dialect_of(conn).row_lock}""").bindparams(
        bindparam("cs", expanding=True)
    )
    params = {"g": group_id, "m": EVERYONE, "cs": ordered}
    rows = conn.execute(query, params).all()
    if len(rows) < len(ordered):  # a template's first use: make its rows, then lock them
        _ensure_all(conn, group_id, ordered)
        rows = conn.execute(query, params).all()
    return {str(r.counter): int(r.used) for r in rows}


def _ensure_all(conn: Connection, group_id: str, names: Sequence[str]) -> None:
    conn.execute(
        dialect_of(conn).insert_ignore(coupon_counters),
        [{"group_id": group_id, "counter": n, "member_id": EVERYONE, "used": 0} for n in names],
    )


def take(conn: Connection, group_id: str, name: str, n: int, cap: int | None, limit: str) -> None:
    """Count `n` more on the group-wide counter `name`, or raise `LimitReached` (naming
    `limit`) and count nothing."""
    _ensure(conn, group_id, name, [EVERYONE])
    params = {"g": group_id, "c": name, "m": EVERYONE, "n": n, "cap": -1 if cap is None else cap}
    if conn.execute(_RAISE, params).rowcount != 1:
        assert cap is not None
        raise LimitReached(limit, cap, used(conn, group_id, name))


def take_up_to(conn: Connection, group_id: str, name: str, n: int, cap: int | None) -> int:
    """Count as many of `n` as the cap leaves (all of them without a cap); returns how
    many. The row is locked by the first UPDATE, so the count it reads stays true."""
    _ensure(conn, group_id, name, [EVERYONE])
    params = {"g": group_id, "c": name, "m": EVERYONE, "n": 0, "cap": -1}
    conn.execute(_RAISE, params)  # lock the row (adds 0) before reading it
    left = n if cap is None else max(0, min(n, cap - used(conn, group_id, name)))
    if left:
        conn.execute(_RAISE, {**params, "n": left})
    return left


def take_per_member(
    conn: Connection, group_id: str, name: str, member_ids: Sequence[int], cap: int | None
) -> set[int]:
    """Count one for each member whose own counter is below `cap`; returns those members."""
    if not member_ids:
        return set()
    _ensure(conn, group_id, name, member_ids)
    rows = conn.execute(
        _RAISE_MEMBERS,
        {"g": group_id, "c": name, "ms": list(member_ids), "cap": -1 if cap is None else cap},
    )
    return {int(r[0]) for r in rows}


def give_back(
    conn: Connection, group_id: str, name: str, n: int, member_id: int = EVERYONE
) -> None:
    """Uncount `n` (a refund returned a redemption, a refused issue gives back its slot)."""
    conn.execute(
        text("""UPDATE coupon_counters SET used = used - :n
                WHERE group_id = :g AND counter = :c AND member_id = :m AND used >= :n"""),
        {"g": group_id, "c": name, "m": member_id, "n": n},
    )


def used(conn: Connection, group_id: str, name: str, member_id: int = EVERYONE) -> int:
    found = conn.execute(_USED, {"g": group_id, "c": name, "m": member_id}).scalar()
    return int(found or 0)
