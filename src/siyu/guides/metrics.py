"""A guide's metrics for a period [since, until), as E-Land measured its guides: sales,
shares and what they drew (PV, UV, carts), conversion, refunds, members served and
follow-up completion. One set-based statement counts everything per guide of the brand
group's reference data (`guides`; or of some stores', or one guide's); the ratios are
derived from the counts in integer basis points (1/10,000), so a class threshold compares
exactly.

- orders, paid_fen: the period's attributed orders (`order_attributions`, by order time;
  run attribution for the period first) and what was paid for them;
- refunded_fen: refunds of those orders recorded before `at`; sales_fen = paid - refunded;
- members_bound: members bound to the guide at some time in the period; buyers: members
  who bought through it; members_served: either (each member once);
- shares: shares the guide made in the period; share_opens (PV): touches of any of its
  shares in the period; share_openers (UV): distinct openers (a member, else the visitor
  identity); carted_openers: openers who added to cart within `window_days` after an open
  (and before `until`);
- conversion_bp = orders / UV; refund_rate_bp = refunded / paid;
- tasks_done, tasks_dismissed: tasks closed in the period; tasks_overdue: live tasks (open
  or contacted: a contact is not the job done) due in the period;
  task_completion_bp = done / (done + dismissed + overdue).
A ratio with a zero denominator is None: no threshold holds on it.

`spam_risk`: shares were opened but no order was attributed (Yike: a high share rate with
zero orders harms the private domain).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, bindparam, text

from siyu.errors import ValidationError
from siyu.guides.attribution import DAY, MAX_DAYS
from siyu.store.dialect import dialect_of

BP = 10_000  # a ratio in basis points


def _ratio(numerator: int, denominator: int) -> int | None:
    return None if denominator == 0 else numerator * BP // denominator


@dataclass(frozen=True)
class GuideMetrics:
    guide_id: str
    store_id: str
    orders: int
    paid_fen: int
    refunded_fen: int
    members_bound: int
    buyers: int
    members_served: int
    shares: int
    share_opens: int
    share_openers: int
    carted_openers: int
    tasks_done: int
    tasks_dismissed: int
    tasks_overdue: int

    @property
    def sales_fen(self) -> int:
        return self.paid_fen - self.refunded_fen

    @property
    def conversion_bp(self) -> int | None:
        return _ratio(self.orders, self.share_openers)

    @property
    def refund_rate_bp(self) -> int | None:
        return _ratio(self.refunded_fen, self.paid_fen)

    @property
    def task_completion_bp(self) -> int | None:
        closed_or_due = self.tasks_done + self.tasks_dismissed + self.tasks_overdue
        return _ratio(self.tasks_done, closed_or_due)

    @property
    def spam_risk(self) -> bool:
        return self.share_opens > 0 and self.orders == 0

    def value(self, name: str) -> int | None:
        """A metric by name (a class rule's threshold names one of METRICS)."""
        value: int | None = getattr(self, name)
        return value

    def snapshot(self) -> dict[str, Any]:
        """Every metric, counted and derived, as the class history keeps it."""
        counted = {k: v for k, v in asdict(self).items() if k not in ("guide_id", "store_id")}
        derived = {name: self.value(name) for name in DERIVED}
        return {**counted, **derived, "spam_risk": self.spam_risk}


COUNTED = tuple(f for f in GuideMetrics.__dataclass_fields__ if f not in ("guide_id", "store_id"))
DERIVED = ("sales_fen", "conversion_bp", "refund_rate_bp", "task_completion_bp")
METRICS = COUNTED + DERIVED  # the names a class rule may put a threshold on


def _metrics_sql(epoch: Callable[[str], str], scope: str) -> str:
    """`scope`: the conditions on `guides` narrowing the guides counted, pushed into every
    fact's CTE too (a store's page counts its guides, not the brand's thousands)."""

    def only(column: str) -> str:
        return f"AND {column} IN (SELECT guide_id FROM scope)" if scope else ""

    return f"""
WITH scope AS (
  SELECT guide_id, store_id FROM guides WHERE group_id = :g {scope}
), sold AS (
  SELECT a.guide_id, a.order_id, a.member_id, o.paid_fen
  FROM order_attributions a
  JOIN orders o ON o.group_id = a.group_id AND o.order_id = a.order_id
  WHERE a.group_id = :g AND a.ordered_at >= :since AND a.ordered_at < :until
    {only("a.guide_id")}
), sales AS (
  SELECT guide_id, COUNT(*) AS orders, SUM(paid_fen) AS paid_fen,
    COUNT(DISTINCT member_id) AS buyers
  FROM sold GROUP BY guide_id
), refunded AS (
  SELECT s.guide_id, SUM(r.amount_fen) AS fen
  FROM sold s JOIN refunds r ON r.group_id = :g AND r.order_id = s.order_id
    AND r.refunded_at < :at
  GROUP BY s.guide_id
), bound AS (
  SELECT DISTINCT guide_id, member_id FROM guide_bindings
  WHERE group_id = :g AND bound_at < :until AND (ended_at IS NULL OR ended_at > :since)
    {only("guide_id")}
), bound_n AS (
  SELECT guide_id, COUNT(*) AS n FROM bound GROUP BY guide_id
), served AS (
  SELECT guide_id, COUNT(*) AS n FROM (
    SELECT guide_id, member_id FROM bound
    UNION
    SELECT guide_id, member_id FROM sold WHERE member_id IS NOT NULL
  ) x GROUP BY guide_id
), shared AS (
  SELECT guide_id, COUNT(*) AS n FROM guide_shares
  WHERE group_id = :g AND created_at >= :since AND created_at < :until {only("guide_id")}
  GROUP BY guide_id
), opens AS (
  SELECT sh.guide_id, t.touched_at, {epoch("t.touched_at")} AS tt,
    COALESCE(t.member_id, i.member_id) AS member_id,
    CASE WHEN COALESCE(t.member_id, i.member_id) IS NULL THEN t.identity_id END AS visitor,
    t.identity_id
  FROM share_touches t
  JOIN guide_shares sh ON sh.group_id = t.group_id AND sh.share_id = t.share_id
  LEFT JOIN identities i ON i.identity_id = t.identity_id
  WHERE t.group_id = :g AND t.touched_at >= :since AND t.touched_at < :until
    {only("sh.guide_id")}
), opened AS (
  SELECT guide_id, COUNT(*) AS pv,
    COUNT(DISTINCT member_id) + COUNT(DISTINCT visitor) AS uv
  FROM opens GROUP BY guide_id
), carts AS (
  SELECT occurred_at, {epoch("occurred_at")} AS ct, member_id, identity_id FROM events
  WHERE group_id = :g AND type = 'add_to_cart' AND occurred_at >= :since
    AND occurred_at < :until
), carted AS (
  SELECT guide_id, COUNT(DISTINCT member_id) + COUNT(DISTINCT visitor) AS n FROM (
    SELECT p.guide_id, p.member_id, p.visitor
    FROM opens p JOIN carts c ON c.member_id = p.member_id
    WHERE c.occurred_at >= p.touched_at AND c.ct - p.tt < :window
    UNION
    SELECT p.guide_id, p.member_id, p.visitor
    FROM opens p JOIN carts c ON c.identity_id = p.identity_id
    WHERE c.occurred_at >= p.touched_at AND c.ct - p.tt < :window
  ) x GROUP BY guide_id
), closed AS (
  SELECT t.guide_id,
    SUM(CASE WHEN e.state = 'done' THEN 1 ELSE 0 END) AS done,
    SUM(CASE WHEN e.state = 'dismissed' THEN 1 ELSE 0 END) AS dismissed
  FROM (SELECT DISTINCT task_id, state FROM guide_task_events
        WHERE group_id = :g AND state IN ('done', 'dismissed')
          AND at >= :since AND at < :until) e
  JOIN guide_tasks t ON t.group_id = :g AND t.task_id = e.task_id {only("t.guide_id")}
  GROUP BY t.guide_id
), overdue AS (
  SELECT guide_id, COUNT(*) AS n FROM guide_tasks
  WHERE group_id = :g AND state IN ('open', 'contacted')
    AND due_on >= :since_day AND due_on < :until_day {only("guide_id")}
  GROUP BY guide_id
)
SELECT gd.guide_id, gd.store_id,
  COALESCE(s.orders, 0) AS orders, COALESCE(s.paid_fen, 0) AS paid_fen,
  COALESCE(r.fen, 0) AS refunded_fen, COALESCE(b.n, 0) AS members_bound,
  COALESCE(s.buyers, 0) AS buyers, COALESCE(sv.n, 0) AS members_served,
  COALESCE(sh.n, 0) AS shares, COALESCE(op.pv, 0) AS share_opens,
  COALESCE(op.uv, 0) AS share_openers, COALESCE(ca.n, 0) AS carted_openers,
  COALESCE(cl.done, 0) AS tasks_done, COALESCE(cl.dismissed, 0) AS tasks_dismissed,
  COALESCE(od.n, 0) AS tasks_overdue
FROM scope gd
LEFT JOIN sales s ON s.guide_id = gd.guide_id
LEFT JOIN refunded r ON r.guide_id = gd.guide_id
LEFT JOIN bound_n b ON b.guide_id = gd.guide_id
LEFT JOIN served sv ON sv.guide_id = gd.guide_id
LEFT JOIN shared sh ON sh.guide_id = gd.guide_id
LEFT JOIN opened op ON op.guide_id = gd.guide_id
LEFT JOIN carted ca ON ca.guide_id = gd.guide_id
LEFT JOIN closed cl ON cl.guide_id = gd.guide_id
LEFT JOIN overdue od ON od.guide_id = gd.guide_id
ORDER BY gd.guide_id
"""


def guide_metrics(
    conn: Connection,
    group_id: str,
    since: datetime,
    until: datetime,
    at: datetime,
    window_days: int = 7,
    stores: tuple[str, ...] | None = None,
    guide_id: str | None = None,
) -> list[GuideMetrics]:
    """Every guide's metrics for [since, until) (refunds as recorded before `at`; a cart
    counts within `window_days` of an open), by guide id; `stores` (the guide's store) and
    `guide_id` narrow to those guides, each one's figures as the whole brand's run gives."""
    if until <= since:
        raise ValidationError("until", "must be after since")
    if not 1 <= window_days <= MAX_DAYS:
        raise ValidationError("window_days", f"must be a whole number of days, 1..{MAX_DAYS}")
    params = {
        "g": group_id,
        "since": since,
        "until": until,
        "since_day": since.date(),
        "until_day": until.date(),
        "at": at,
        "window": window_days * DAY,
    }
    scope = []
    if stores is not None:
        scope.append("AND store_id IN :stores")
        params["stores"] = list(stores)
    if guide_id is not None:
        scope.append("AND guide_id = :guide")
        params["guide"] = guide_id
    query = text(_metrics_sql(dialect_of(conn).epoch_seconds, " ".join(scope)))
    if stores is not None:
        # typed: no stores is an empty set, which PostgreSQL compares only as text
        query = query.bindparams(bindparam("stores", expanding=True, type_=String()))
    rows = conn.execute(query, params).mappings()
    return [
        GuideMetrics(str(r["guide_id"]), str(r["store_id"]), *(int(r[name]) for name in COUNTED))
        for r in rows
    ]
