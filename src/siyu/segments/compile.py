"""A segment rule compiled to ONE Ibis expression: the distinct active member_ids it selects.

Each condition is a set of member_ids (a filter, a semi or anti join, or an aggregate left
joined to the active members when a comparison holds at zero); `all`, `any` and `not` are
intersect, union and difference, so the whole rule is one query the engine plans and runs
(DuckDB by default, Spark alike: no pandas, no round trips). The result is intersected with
the active members, so merged members never appear.

Time: every window is relative to the as-of time T (default: the latest non-cancelled
order). "within n days" is (T - n days, T]; facts after T are ignored. Times are compared as
whole epoch seconds (`analytics.orders.epoch_seconds`), which DuckDB and Spark compute alike.
Cancelled orders (status 'cancelled') never count.

Tables (`SegmentTables`), any of them None when no rule needs it:
- members: member_id, status ('active' selects), attribute columns (stage, tier, brand_id,
  registered_at, ...)
- orders: order_id, member_id, ordered_at, amount_fen, status?, brand_id?, channel?, store_id?
- order_lines: order_id, sku; products: sku, category
- events: member_id, type, occurred_at, sku
- memberships: segment, member_id (nested segments)
- tags: tag, member_id, value (the tags a rule names; `segments.sources` loads them)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ibis
import ibis.expr.types as ir

from siyu.analytics.orders import epoch_seconds
from siyu.errors import ValidationError
from siyu.segments.rules import (
    All,
    AnyOf,
    Attribute,
    Bought,
    Compare,
    Condition,
    Event,
    EventThenNot,
    LastOrder,
    Not,
    Orders,
    OrderScope,
    RuleDocument,
    Segment,
    Tag,
    parse_document,
)

DAY = 86_400
HOUR = 3_600
DAYS_AGO = "_days_ago"


@dataclass(frozen=True)
class SegmentTables:
    members: ir.Table
    orders: ir.Table | None = None
    order_lines: ir.Table | None = None
    products: ir.Table | None = None
    events: ir.Table | None = None
    memberships: ir.Table | None = None
    tags: ir.Table | None = None


@dataclass(frozen=True)
class Preview:
    size: int
    sample: list[str]  # the first member_ids in sorted order


def compile_rule(
    doc: dict[str, Any] | RuleDocument, tables: SegmentTables, as_of: datetime | None = None
) -> ir.Table:
    """The members `doc` selects at `as_of`: one column member_id, distinct, active only."""
    document = doc if isinstance(doc, RuleDocument) else parse_document(doc)
    return _Compiler(tables, as_of).compile(document.rule)


def count_members(
    doc: dict[str, Any] | RuleDocument, tables: SegmentTables, as_of: datetime | None = None
) -> int:
    return int(compile_rule(doc, tables, as_of).count().execute())


def preview(
    doc: dict[str, Any] | RuleDocument,
    tables: SegmentTables,
    as_of: datetime | None = None,
    sample: int = 20,
) -> Preview:
    """The segment's size and its first `sample` member_ids (sorted, so a preview is stable)."""
    members = compile_rule(doc, tables, as_of)
    size = int(members.count().execute())
    first = members.order_by("member_id").limit(sample).execute()
    return Preview(size, [str(m) for m in first["member_id"]])


class _Compiler:
    def __init__(self, tables: SegmentTables, as_of: datetime | None) -> None:
        self.tables = tables
        self.as_of = as_of
        self.active = (
            tables.members.filter(tables.members.status == "active").select("member_id").distinct()
        )

    def compile(self, rule: Condition) -> ir.Table:
        return self.condition(rule).intersect(self.active)

    # -- time -----------------------------------------------------------------------------

    def t(self, path: str) -> ir.IntegerScalar:
        """T in epoch seconds: `as_of`, else the latest non-cancelled order."""
        if self.as_of is not None:
            return epoch_seconds(ibis.timestamp(self.as_of))
        orders = self._paid_orders(path)
        return epoch_seconds(orders.ordered_at.max()).as_scalar()

    def _in_window(self, ts: ir.IntegerValue, seconds: int | None, path: str) -> ir.BooleanValue:
        t = self.t(path)
        inside = ts <= t
        return inside if seconds is None else inside & (ts > t - seconds)

    # -- conditions -----------------------------------------------------------------------

    def condition(self, rule: Condition) -> ir.Table:
        if isinstance(rule, All):
            first, *rest = (self.condition(c) for c in rule.conditions)
            return first.intersect(*rest) if rest else first
        if isinstance(rule, AnyOf):
            first, *rest = (self.condition(c) for c in rule.conditions)
            return first.union(*rest, distinct=True) if rest else first
        if isinstance(rule, Not):
            return self.active.difference(self.condition(rule.condition))
        if isinstance(rule, Attribute):
            return self.attribute(rule)
        if isinstance(rule, Orders):
            return self.orders(rule)
        if isinstance(rule, LastOrder):
            return self.last_order(rule)
        if isinstance(rule, Bought):
            return self.bought(rule)
        if isinstance(rule, Event):
            return self.event(rule)
        if isinstance(rule, EventThenNot):
            return self.event_then_not(rule)
        if isinstance(rule, Segment):
            return self.segment(rule)
        if isinstance(rule, Tag):
            return self.tag(rule)
        raise TypeError(f"not a condition: {rule!r}")  # pragma: no cover

    def attribute(self, rule: Attribute) -> ir.Table:
        members = self.tables.members
        schema = members.schema()
        if rule.name.endswith(DAYS_AGO) and f"{rule.name[: -len(DAYS_AGO)]}_at" in schema:
            at = members[f"{rule.name[: -len(DAYS_AGO)]}_at"]
            if not at.type().is_timestamp():
                raise ValidationError(f"{rule.path}.attribute", "must name a timestamp _at column")
            # floor of a float division: integer division rounds negatives differently by engine
            column: ir.Value = ((self.t(rule.path) - epoch_seconds(at)) / DAY).floor()
            kind = "number"
        elif rule.name in schema and rule.name not in ("member_id", "status"):
            column = members[rule.name]
            dtype = column.type()
            kind = (
                "number"
                if dtype.is_numeric()
                else "string"
                if dtype.is_string()
                else "boolean"
                if dtype.is_boolean()
                else "other"
            )
            if kind == "other":
                raise ValidationError(
                    f"{rule.path}.attribute",
                    f"column of type {dtype} is not comparable; for a time use <name>_days_ago",
                )
        else:
            raise ValidationError(f"{rule.path}.attribute", "no such member attribute", rule.name)
        values = rule.value if isinstance(rule.value, tuple) else (rule.value,)
        for value in values:
            if _kind(value) != kind:
                raise ValidationError(
                    f"{rule.path}.value", f"must be a {kind} for attribute {rule.name}", value
                )
        if kind != "number" and rule.op in ("gte", "lte", "between"):
            raise ValidationError(f"{rule.path}.op", f"{rule.op} needs a number attribute")
        # a null attribute matches no op (SQL comparison with null is unknown, so filtered)
        predicate = {
            "eq": lambda: column == values[0],
            "ne": lambda: column != values[0],
            "in": lambda: column.isin(values),
            "not_in": lambda: column.notin(values),
            "gte": lambda: column >= values[0],
            "lte": lambda: column <= values[0],
            "between": lambda: column.between(values[0], values[1]),
        }[rule.op]()
        return members.filter(predicate).select("member_id").distinct()

    def orders(self, rule: Orders) -> ir.Table:
        orders = self._scoped_orders(rule.scope, rule.path, rule.scope.within_days)
        per_member = orders.group_by("member_id").aggregate(
            n=orders.order_id.nunique(), spend=orders.amount_fen.sum()
        )
        count = rule.count or (Compare("gte", 1) if rule.spend_fen is None else None)
        # members without orders in scope have count 0 and spend 0: a comparison that holds
        # at zero ("count lte 0": never bought) must see them, so start from the active ones
        joined = self.active.left_join(per_member, "member_id")
        facts = joined.select("member_id", n=joined.n.fill_null(0), spend=joined.spend.fill_null(0))
        predicate = ibis.literal(True)
        if count is not None:
            predicate &= _compare(facts.n, count)
        if rule.spend_fen is not None:
            predicate &= _compare(facts.spend, rule.spend_fen)
        return facts.filter(predicate).select("member_id")

    def last_order(self, rule: LastOrder) -> ir.Table:
        orders = self._scoped_orders(rule.scope, rule.path, None)
        last = orders.group_by("member_id").aggregate(at=epoch_seconds(orders.ordered_at).max())
        t = self.t(rule.path)
        if rule.more_than_days is not None:
            return last.filter(last.at <= t - rule.more_than_days * DAY).select("member_id")
        assert rule.within_days is not None
        return last.filter(last.at > t - rule.within_days * DAY).select("member_id")

    def bought(self, rule: Bought) -> ir.Table:
        lines = self._table("order_lines", rule.path)
        orders = self._scoped_orders(OrderScope(), rule.path, rule.within_days)
        wanted = ibis.literal(False)
        if rule.sku:
            wanted |= lines.sku.isin(rule.sku)
        if rule.category:
            products = self._table("products", rule.path)
            in_category = products.filter(products.category.isin(rule.category)).select("sku")
            wanted |= lines.sku.isin(in_category.sku)
        matching = lines.filter(wanted).select("order_id").distinct()
        return orders.semi_join(matching, "order_id").select("member_id").distinct()

    def event(self, rule: Event) -> ir.Table:
        events = self._table("events", rule.path)
        ts = epoch_seconds(events.occurred_at)
        predicate = (events.type == rule.type) & self._in_window(ts, rule.within_seconds, rule.path)
        if rule.sku:
            predicate &= events.sku.isin(rule.sku)
        chosen = events.filter(predicate)
        count = rule.count or Compare("gte", 1)
        per_member = chosen.group_by("member_id").aggregate(n=chosen.count())
        joined = self.active.left_join(per_member, "member_id")
        facts = joined.select("member_id", n=joined.n.fill_null(0))
        return facts.filter(_compare(facts.n, count)).select("member_id")

    def event_then_not(self, rule: EventThenNot) -> ir.Table:
        events = self._table("events", rule.path)
        t = self.t(rule.path)
        hold = rule.within_hours * HOUR
        ts = epoch_seconds(events.occurred_at)
        # the first event's follow-up window must have passed by T: e + hold <= T
        first = events.filter(
            (events.type == rule.event_type) & (ts > t - rule.since_days * DAY) & (ts <= t - hold)
        )
        if rule.sku:
            first = first.filter(first.sku.isin(rule.sku))
        first = first.select("member_id", "sku", at=epoch_seconds(first.occurred_at))
        if rule.follow_type is not None:
            follow = events.filter(events.type == rule.follow_type)
            follow = follow.select(
                f_member=follow.member_id, f_sku=follow.sku, f_at=epoch_seconds(follow.occurred_at)
            )
        else:
            paid = self._paid_orders(rule.path)
            follow = paid.select(f_member=paid.member_id, f_at=epoch_seconds(paid.ordered_at))
        # followed: a follow-up at or after the event, at most `within_hours` later
        predicates = [
            first.member_id == follow.f_member,
            follow.f_at >= first.at,
            follow.f_at <= first.at + hold,
        ]
        if rule.same_sku:
            predicates.append(first.sku == follow.f_sku)
        return first.anti_join(follow, predicates).select("member_id").distinct()

    def segment(self, rule: Segment) -> ir.Table:
        memberships = self._table("memberships", rule.path)
        return memberships.filter(memberships.segment == rule.slug).select("member_id").distinct()

    def tag(self, rule: Tag) -> ir.Table:
        held = self._table("tags", rule.path)
        held = held.filter(held.tag == rule.slug)
        if rule.values is not None:
            held = held.filter(held.value.isin(list(rule.values)))
        return held.select("member_id").distinct()

    # -- helpers --------------------------------------------------------------------------

    def _table(self, name: str, path: str) -> ir.Table:
        table = getattr(self.tables, name)
        if table is None:
            raise ValidationError(path, f"needs the {name} table, which was not given")
        return table

    def _paid_orders(self, path: str) -> ir.Table:
        orders = self._table("orders", path)
        if "status" in orders.schema():
            orders = orders.filter(orders.status.isnull() | (orders.status != "cancelled"))
        return orders

    def _scoped_orders(self, scope: OrderScope, path: str, within_days: int | None) -> ir.Table:
        """Non-cancelled orders up to T, in `within_days` and the scope's lists."""
        orders = self._paid_orders(path)
        ts = epoch_seconds(orders.ordered_at)
        predicate = self._in_window(ts, None if within_days is None else within_days * DAY, path)
        for column in ("brand_id", "channel", "store_id"):
            wanted = getattr(scope, column)
            if wanted:
                if column not in orders.schema():
                    raise ValidationError(f"{path}.{column}", "the orders have no such column")
                predicate &= orders[column].isin(wanted)
        return orders.filter(predicate)


def _compare(value: ir.IntegerValue, compare: Compare) -> ir.BooleanValue:
    if compare.op == "gte":
        return value >= compare.value
    if compare.op == "lte":
        return value <= compare.value
    return value == compare.value


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string"
