"""Points: earned in lots that expire, spent first-expiring first, swept into breakage.

A member's points balance always equals the remaining points of their lots (a debt, when
a rule allows one, is the only exception and is kept on its own account).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from siyu.errors import ValidationError
from siyu.ledger.errors import InsufficientBalance
from siyu.ledger.models import POINTS
from siyu.ledger.posting import Item, Plan, Request, Result, post, post_in
from siyu.store.dialect import dialect_of


def default_expiry(earned_at: datetime) -> datetime:
    """The end of the year after the one the points were earned in, the common rule."""
    return datetime(earned_at.year + 1, 12, 31, 23, 59, 59)


def earn(engine: Engine, request: Request, points: int, expires_at: datetime | None) -> Result:
    return post(engine, *earn_item(request, points, expires_at))


def earn_item(request: Request, points: int, expires_at: datetime | None) -> Item:
    """The posting of `earn`, for `post` or a batch (`ledger.batch.post_many`)."""
    _positive("points", points)

    def plan(work: Plan) -> None:
        expiry = expires_at or default_expiry(work.now)
        if expiry <= work.now:
            raise ValidationError("expires_at", "must be in the future")
        add_points(work, points, expiry)

    return request, plan


def add_points(work: Plan, points: int, expiry: datetime) -> None:
    """Issue points into a new lot. A member in debt (a clawback of points already
    spent) repays it first: the lot holds only what is left over."""
    balance = work.balances()[POINTS]
    repaid = min(points, -balance) if balance < 0 else 0
    lot_id = _add_lot(work, points, expiry, remaining=points - repaid)
    work.move(POINTS, points, "issuance")
    work.detail.update(points=points, lot_id=lot_id, expires_at=expiry.isoformat())
    if repaid:
        work.detail["debt_repaid"] = repaid


def spend(engine: Engine, request: Request, points: int) -> Result:
    return post(engine, *spend_item(request, points))


def spend_in(
    conn: Connection, system: dict[tuple[str, str], int], request: Request, points: int
) -> Result:
    """`spend` on the caller's transaction (`posting.post_in`): the points go only if
    what they pay for commits with them."""
    return post_in(conn, system, *spend_item(request, points))


def spend_item(request: Request, points: int) -> Item:
    _positive("points", points)

    def plan(work: Plan) -> None:
        take_points(work, points, "redemption")
        work.detail["points"] = points

    return request, plan


def adjust(engine: Engine, request: Request, points: int, expires_at: datetime | None) -> Result:
    """A correction by HQ: positive adds a lot, negative takes from lots like a spend.
    The other side is the issuance account: an adjustment issues or un-issues points."""
    if points == 0:
        raise ValidationError("points", "must not be zero")

    def plan(work: Plan) -> None:
        if points > 0:
            add_points(work, points, expires_at or default_expiry(work.now))
        else:
            take_points(work, -points, "issuance")
        work.detail["points"] = points

    return post(engine, request, plan)


def expire_due(engine: Engine, group_id: str, now: datetime) -> int:
    """Post breakage for every member's lots expired by `now`; returns the postings made.
    Safe to run any time and twice: each posting's key names the last lot it expires."""
    with engine.connect() as conn:
        due = conn.execute(
            text("""SELECT member_id, MAX(lot_id) AS last_lot FROM point_lots
                    WHERE group_id = :g AND remaining > 0 AND expires_at <= :now
                    GROUP BY member_id ORDER BY member_id"""),
            {"g": group_id, "now": now},
        ).all()
    made = 0
    for member_id, last_lot in due:
        request = Request(
            group_id,
            int(member_id),
            "expire",
            f"expire:{member_id}:{last_lot}",
            {"until_lot": int(last_lot)},
            reason="points expired",
        )

        def plan(work: Plan, last_lot: int = int(last_lot)) -> None:
            work.balances()  # lock the member's accounts before touching lots
            expired = _expire_lots(work, now, last_lot)
            work.move(POINTS, -expired, "breakage")
            work.detail["points"] = expired

        if not post(engine, request, plan).replayed:
            made += 1
    return made


def take_points(work: Plan, points: int, counter: str) -> None:
    """Consume `points` from the member's lots, first-expiring first; lots already past
    their expiry are expired in the same posting, never spent."""
    available = spendable(work)
    if available < points:
        raise InsufficientBalance(POINTS, points, available)
    lots = _lots(work.conn, work, "expires_at > :now")
    taken: list[list[int]] = []
    left = points
    for lot_id, remaining in lots:
        if left == 0:
            break
        n = min(left, remaining)
        work.write(
            text("UPDATE point_lots SET remaining = remaining - :n WHERE lot_id = :l"),
            {"n": n, "l": lot_id},
        )
        taken.append([lot_id, n])
        left -= n
    if left:  # the balance and the lots disagree: refuse rather than overdraw a lot
        raise InsufficientBalance(POINTS, points, points - left)
    work.move(POINTS, -points, counter)
    work.detail["lots"] = taken


def spendable(work: Plan) -> int:
    """The member's points that can be spent now, after expiring (in this posting) the
    lots already past their date."""
    balance = work.balances()[POINTS]
    expired = _expire_lots(work, work.now, None)
    if expired:
        work.move(POINTS, -expired, "breakage")
        work.detail["expired"] = expired
    return max(balance - expired, 0)


def _expire_lots(work: Plan, now: datetime, up_to_lot: int | None) -> int:
    condition = "expires_at <= :now" + (" AND lot_id <= :last" if up_to_lot else "")
    lots = _lots(work.conn, work, condition, {"now": now, "last": up_to_lot})
    for lot_id, _ in lots:
        work.write(text("UPDATE point_lots SET remaining = 0 WHERE lot_id = :l"), {"l": lot_id})
    if lots:
        work.detail["expired_lots"] = [lot for lot, _ in lots]
    return sum(remaining for _, remaining in lots)


def _lots(
    conn: Connection, work: Plan, condition: str, params: dict[str, Any] | None = None
) -> list[tuple[int, int]]:
    in_order = dialect_of(conn).lock_rows_in_order("expires_at", "lot_id")
    rows = conn.execute(
        text(f"""SELECT lot_id, remaining FROM point_lots
                 WHERE group_id = :g AND member_id = :m AND remaining > 0 AND {condition}
                 {in_order}"""),
        {"g": work.group_id, "m": work.member_id, "now": work.now, **(params or {})},
    ).all()
    return [(int(r.lot_id), int(r.remaining)) for r in rows]


def _add_lot(work: Plan, points: int, expires_at: datetime, remaining: int) -> int:
    row = work.write(
        text("""INSERT INTO point_lots (group_id, member_id, posting_id, points, remaining,
                  expires_at, created_at)
                VALUES (:g, :m, :p, :n, :r, :e, :now) RETURNING lot_id"""),
        {
            "g": work.group_id,
            "m": work.member_id,
            "p": work.posting_id,
            "n": points,
            "r": remaining,
            "e": expires_at,
            "now": work.now,
        },
    ).one()
    return int(row[0])


def _positive(field: str, value: int) -> None:
    if value <= 0:
        raise ValidationError(field, "must be a positive integer")
