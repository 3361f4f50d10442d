"""Distribution (分销): which guide an order is attributed to, and why.

A guide shares a product, a campaign or a mini-program page under a share code
(`guides.shares`); a member or a visitor opening it is a touch. For the orders placed in a
period (not cancelled; online and in store alike), one INSERT ... SELECT decides:

1. share: the last touch of one of the buyer's shares (the member's, or the buyer
   identity's) at or before the order and less than `window_days` before it; a touch after
   the order never counts. While the member's own guide is protected (the first
   `protect_own_guide_days` of its binding), a touch of another guide's share does not
   take the order; the own guide's own shares still do.
2. till: else the guide the order itself names (`orders.guide_id`).
3. own_guide: else the member's own guide at the order's time, if then protected.

Orders none of them names a guide for get no row. Each row keeps what decided it (share and
touch, or the binding) and the rules it was decided under, so every figure is explainable.
Re-running a period deletes its rows first: the result is the same however often it runs.
Refunds are not attribution's: commission claws back on refund.

Commission reads the result through `attributed_orders(conn, group_id, since, until)`:
rows (order_id, member_id, guide_id, basis, paid_fen, ordered_at) of the attributed orders
placed in [since, until), by order time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, text

from siyu.errors import ValidationError
from siyu.guides.models import OWN_GUIDE, SHARE, TILL
from siyu.guides.tasks import to_second
from siyu.store.dialect import dialect_of
from siyu.store.times import stored_now

DAY = 86_400
WORK_MEM = "256MB"
MAX_DAYS = 366


@dataclass(frozen=True)
class AttributionRules:
    """The brand's rules: the last-touch window and how long a new binding is protected
    (0: never, so another guide's touch takes any order)."""

    window_days: int = 7
    protect_own_guide_days: int = 30

    def __post_init__(self) -> None:
        if not 1 <= self.window_days <= MAX_DAYS:
            raise ValidationError("window_days", f"must be a whole number of days, 1..{MAX_DAYS}")
        if not 0 <= self.protect_own_guide_days <= MAX_DAYS:
            raise ValidationError(
                "protect_own_guide_days", f"must be a whole number of days, 0..{MAX_DAYS}"
            )


def _attribute_sql(epoch: Callable[[str], str]) -> str:
    return f"""
INSERT INTO order_attributions (group_id, order_id, member_id, guide_id, basis, share_id,
  touch_id, touched_at, binding_id, window_days, protect_days, ordered_at, attributed_at)
WITH scoped AS (
  SELECT o.order_id, o.member_id, o.buyer_identity_id, o.guide_id AS till_guide,
    o.ordered_at, {epoch("o.ordered_at")} AS t
  FROM orders o WHERE o.group_id = :g AND o.ordered_at >= :since AND o.ordered_at < :until
    AND o.status <> 'cancelled'
), owned AS (
  SELECT s.order_id, b.binding_id, b.guide_id,
    CASE WHEN s.t - {epoch("b.bound_at")} < :protect THEN 1 ELSE 0 END AS protected
  FROM scoped s JOIN guide_bindings b ON b.group_id = :g AND b.member_id = s.member_id
    AND b.bound_at <= s.ordered_at AND (b.ended_at IS NULL OR b.ended_at > s.ordered_at)
), touched AS (
  SELECT t.touch_id, t.share_id, sh.guide_id, t.touched_at, {epoch("t.touched_at")} AS tt,
    t.identity_id,
    COALESCE(i.member_id, m.merged_into, t.member_id) AS member_id
  FROM share_touches t
  JOIN guide_shares sh ON sh.group_id = t.group_id AND sh.share_id = t.share_id
  LEFT JOIN identities i ON i.identity_id = t.identity_id
  LEFT JOIN members m ON m.group_id = :g AND m.status = 'merged' AND m.member_id = t.member_id
  WHERE t.group_id = :g AND t.touched_at >= :touch_since AND t.touched_at < :until
    AND NOT EXISTS (SELECT 1 FROM guide_departures d WHERE d.group_id = :g
                    AND d.guide_id = sh.guide_id AND d.left_at <= t.touched_at)
), matched AS (
  SELECT s.order_id, x.touch_id, x.share_id, x.guide_id, x.touched_at
  FROM scoped s JOIN touched x ON x.member_id = s.member_id
  WHERE x.touched_at <= s.ordered_at AND s.t - x.tt < :window
  UNION
  SELECT s.order_id, x.touch_id, x.share_id, x.guide_id, x.touched_at
  FROM scoped s JOIN touched x ON x.identity_id = s.buyer_identity_id
  WHERE x.touched_at <= s.ordered_at AND s.t - x.tt < :window
), last_touch AS (
  SELECT mt.order_id, mt.touch_id, mt.share_id, mt.guide_id, mt.touched_at,
    ROW_NUMBER() OVER (PARTITION BY mt.order_id
                       ORDER BY mt.touched_at DESC, mt.touch_id DESC) AS rn
  FROM matched mt LEFT JOIN owned w ON w.order_id = mt.order_id
  WHERE w.order_id IS NULL OR w.protected = 0 OR mt.guide_id = w.guide_id
)
SELECT CAST(:g AS VARCHAR(64)), s.order_id, s.member_id,
  COALESCE(lt.guide_id, s.till_guide, w.guide_id),
  CASE WHEN lt.guide_id IS NOT NULL THEN '{SHARE}'
       WHEN s.till_guide IS NOT NULL THEN '{TILL}' ELSE '{OWN_GUIDE}' END,
  lt.share_id, lt.touch_id, lt.touched_at,
  CASE WHEN lt.guide_id IS NULL AND s.till_guide IS NULL THEN w.binding_id END,
  :window_days, :protect_days, s.ordered_at, :at
FROM scoped s
LEFT JOIN last_touch lt ON lt.order_id = s.order_id AND lt.rn = 1
LEFT JOIN owned w ON w.order_id = s.order_id AND w.protected = 1
WHERE lt.guide_id IS NOT NULL OR s.till_guide IS NOT NULL OR w.guide_id IS NOT NULL
"""


_CLEAR = text(
    "DELETE FROM order_attributions WHERE group_id = :g "
    "AND ordered_at >= :since AND ordered_at < :until"
)
_BASES = text(
    "SELECT basis, COUNT(*) AS n FROM order_attributions WHERE group_id = :g "
    "AND ordered_at >= :since AND ordered_at < :until GROUP BY basis"
)


@dataclass(frozen=True)
class Attributed:
    """A period's run: orders attributed per basis."""

    since: datetime
    until: datetime
    by_basis: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_basis.values())


def attribute(
    engine: Engine,
    group_id: str,
    since: datetime,
    until: datetime,
    rules: AttributionRules | None = None,
    at: datetime | None = None,
) -> Attributed:
    """Attribute the orders placed in [since, until) by the module's rules, replacing the
    period's earlier rows, in one transaction."""
    if until <= since:
        raise ValidationError("until", "must be after since")
    rules = rules or AttributionRules()
    params = {
        "g": group_id,
        "since": since,
        "until": until,
        "touch_since": since - timedelta(days=rules.window_days),
        "window": rules.window_days * DAY,
        "protect": rules.protect_own_guide_days * DAY,
        "window_days": rules.window_days,
        "protect_days": rules.protect_own_guide_days,
        "at": at or stored_now(),
    }
    with engine.begin() as conn:
        dialect = dialect_of(conn)
        dialect.advisory_lock(conn, "order_attributions", group_id)
        # A month of a 10M-member brand's orders (issue #19): its sorts and hashes in
        # memory, and no JIT, whose compile time the statement's row estimates set off.
        dialect.tune_for_set_statement(conn, WORK_MEM)
        conn.execute(_CLEAR, params)
        conn.execute(text(_attribute_sql(dialect.epoch_seconds)), params)
        # the accrual that follows joins a month of new rows: let its planner see them
        # (autovacuum would, minutes later; a sample, under a second at 10M members)
        dialect.refresh_statistics(conn, "order_attributions")
        counts = {str(r.basis): int(r.n) for r in conn.execute(_BASES, params)}
    return Attributed(since, until, counts)


# --- reads: commission's port, and one order's explanation ------------------------------------


@dataclass(frozen=True)
class AttributedOrder:
    order_id: str
    member_id: int | None
    guide_id: str
    basis: str
    paid_fen: int
    ordered_at: datetime


_ATTRIBUTED = text(
    "SELECT a.order_id, o.member_id, a.guide_id, a.basis, o.paid_fen, o.ordered_at "
    "FROM order_attributions a JOIN orders o ON o.group_id = a.group_id "
    "AND o.order_id = a.order_id WHERE a.group_id = :g AND a.ordered_at >= :since "
    "AND a.ordered_at < :until ORDER BY a.ordered_at, a.order_id"
)


def attributed_orders(
    conn: Connection, group_id: str, since: datetime, until: datetime
) -> list[AttributedOrder]:
    """The attributed orders placed in [since, until): who gets each and on what basis,
    with the order's paid amount (the member is the order's current one, after merges)."""
    rows = conn.execute(_ATTRIBUTED, {"g": group_id, "since": since, "until": until})
    return [
        AttributedOrder(
            str(r.order_id),
            None if r.member_id is None else int(r.member_id),
            str(r.guide_id),
            str(r.basis),
            int(r.paid_fen),
            to_second(r.ordered_at),
        )
        for r in rows
    ]


@dataclass(frozen=True)
class Explanation:
    """Why an order is its guide's: the basis and the evidence behind it."""

    order_id: str
    guide_id: str
    basis: str
    window_days: int
    protect_days: int
    ordered_at: datetime
    attributed_at: datetime
    share_code: str | None
    share_kind: str | None
    share_target: str | None
    touch_id: int | None
    touched_at: datetime | None
    binding_id: int | None
    binding_rule: str | None


_EXPLAIN = text(
    "SELECT a.order_id, a.guide_id, a.basis, a.window_days, a.protect_days, a.ordered_at, "
    "a.attributed_at, a.touch_id, a.touched_at, a.binding_id, s.share_code, s.kind, s.target, "
    "b.rule FROM order_attributions a "
    "LEFT JOIN guide_shares s ON s.group_id = a.group_id AND s.share_id = a.share_id "
    "LEFT JOIN guide_bindings b ON b.group_id = a.group_id AND b.binding_id = a.binding_id "
    "WHERE a.group_id = :g AND a.order_id = :o"
)


def explain(conn: Connection, group_id: str, order_id: str) -> Explanation | None:
    """The order's attribution and its evidence; None when no run attributed it."""
    r = conn.execute(_EXPLAIN, {"g": group_id, "o": order_id}).first()
    if r is None:
        return None
    return Explanation(
        str(r.order_id),
        str(r.guide_id),
        str(r.basis),
        int(r.window_days),
        int(r.protect_days),
        to_second(r.ordered_at),
        to_second(r.attributed_at),
        r.share_code,
        r.kind,
        r.target,
        None if r.touch_id is None else int(r.touch_id),
        None if r.touched_at is None else to_second(r.touched_at),
        None if r.binding_id is None else int(r.binding_id),
        r.rule,
    )
