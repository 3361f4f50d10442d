"""Segment rules compiled to Ibis: one table of per-member facts, and a filter per rule.

Every condition of a rule becomes a column of facts about each active member: how many
orders and how much spend in a window and scope, the last order's time, how many events
of a type, whether a line of a SKU or category was bought, whether a tag or another
segment is held. Conditions on the same table share ONE grouped pass over it (orders,
order lines, events, tags, memberships), each condition an aggregate with its own filter
(`count(...) FILTER (WHERE ...)`); the passes are left joined to the active members, and
the rule is a boolean expression over those columns. `all`, `any` and `not` are and, or
and not on the columns (each leaf is true or false, never null, so `not` is exact).

Several rules compile together (`compile_rules`): their conditions are pooled, equal
conditions share a column, and the facts are computed once for all of them, which is how
fifty segments cost about one scan of each table instead of fifty (docs/benchmarks.md).
A rule nesting a segment that is being evaluated with it reads that segment's rule
(inlined) rather than its stored members, which would be a run old.

The engine plans and runs it all (DuckDB by default, Spark alike: no pandas, no round
trips). Members who are not active (merged by OneID) never appear.

Time: every window is relative to the as-of time T (default: the latest non-cancelled
order). "within n days" is (T - n days, T]; facts after T are ignored. Times are compared as
whole epoch seconds (`analytics.orders.epoch_seconds`), which DuckDB and Spark compute alike.
Cancelled orders (status 'cancelled') never count.

Tables (`SegmentTables`), any of them None when no rule needs it:
- members: member_id, status ('active' selects), attribute columns (stage, tier, brand_id,
  registered_at, ...)
- orders: order_id, member_id, ordered_at, amount_fen, status?, brand_id?, channel?, store_id?,
  guide_id?
- order_lines: member_id, ordered_at, status?, sku (each line with its order's member, time
  and status, as `Warehouse.lines` lands them); products: sku, category
- events: member_id, type, occurred_at, sku
- memberships: segment, member_id (nested segments)
- tags: tag, member_id, value (the tags a rule names; `segments.sources` loads them)
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
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
FEW_AGGREGATES = 4  # a pass this small first keeps only the rows its aggregates read
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


Predicate = Callable[[ir.Table], ir.BooleanValue]


@dataclass(frozen=True)
class CompiledRules:
    """Rules over one table of per-member facts. Compute `facts` once (materialise it when
    several rules read it), then `members(i, facts)` is rule i's members."""

    facts: ir.Table
    predicates: tuple[Predicate, ...]

    def members(self, i: int, facts: ir.Table | None = None) -> ir.Table:
        table = self.facts if facts is None else facts
        return table.filter(self.predicates[i](table)).select("member_id")


def compile_rule(
    doc: dict[str, Any] | RuleDocument, tables: SegmentTables, as_of: datetime | None = None
) -> ir.Table:
    """The members `doc` selects at `as_of`: one column member_id, distinct, active only."""
    return compile_rules([doc], tables, as_of).members(0)


def compile_rules(
    docs: Sequence[dict[str, Any] | RuleDocument],
    tables: SegmentTables,
    as_of: datetime | None = None,
    inline: Mapping[str, dict[str, Any] | RuleDocument] | None = None,
) -> CompiledRules:
    """`docs` over shared facts. `inline` maps a segment's slug to its rule: a rule nesting
    that segment reads the rule (evaluated with it), not the stored members."""
    compiler = _Compiler(tables, as_of, {k: _document(v).rule for k, v in (inline or {}).items()})
    compiled = [compiler.condition(_document(doc).rule) for doc in docs]
    # a pass every rule needs a row of (a member without one matches none of them) is inner
    # joined: the facts then hold those members only, not every active member
    needed = frozenset.intersection(*(c.needs for c in compiled)) if compiled else frozenset()
    return CompiledRules(compiler.facts(needed), tuple(c.holds for c in compiled))


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


def _document(doc: dict[str, Any] | RuleDocument) -> RuleDocument:
    return doc if isinstance(doc, RuleDocument) else parse_document(doc)


# Which rows of a pass an aggregate reads, and the aggregate over them (given the rows and
# that filter): the value per member.
Where = Callable[[ir.Table], ir.BooleanValue]
Aggregate = Callable[[ir.Table, ir.BooleanValue], ir.Value]


@dataclass(frozen=True)
class _Compiled:
    """A condition: whether it holds, over the facts; and the passes a member must have a
    row in for it to hold (a condition false at zero: "bought", "≥ 3 orders")."""

    holds: Predicate
    needs: frozenset[str] = frozenset()


class _Pass:
    """The aggregates one grouped pass over a table computes, one column each; an equal
    condition (same key) reuses its column."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.columns: dict[Hashable, tuple[str, Where, Aggregate]] = {}
        self.windows: list[int | None] = []  # seconds back from T each aggregate reads

    def column(
        self, key: Hashable, where: Where, aggregate: Aggregate, window: int | None = None
    ) -> str:
        if key not in self.columns:
            self.columns[key] = (f"{self.prefix}{len(self.columns)}", where, aggregate)
            self.windows.append(window)
        return self.columns[key][0]

    def widest(self) -> int | None:
        """How far back any aggregate reads (None: all time), to cut rows before grouping."""
        if None in self.windows:
            return None
        return max((w for w in self.windows if w is not None), default=None)

    def group(self, rows: ir.Table) -> ir.Table:
        """One row per member with rows. With a few aggregates, only the rows some
        aggregate reads: a member whose rows none reads is left out, as its columns would
        all be zero or null, which is what the left join gives it (and a pass a rule needs
        is one it cannot hold without). With many (segments evaluated together) the
        either-of filter costs more per row than it saves: 48 s against 45 s for the
        fifty of bench_segments at 10M members."""
        if len(self.columns) <= FEW_AGGREGATES:
            read = functools.reduce(
                operator.or_, (where(rows) for _, where, _ in self.columns.values())
            )
            rows = rows.filter(read)
        return rows.group_by("member_id").aggregate(
            **{
                name: aggregate(rows, where(rows))
                for name, where, aggregate in self.columns.values()
            }
        )


class _Compiler:
    def __init__(
        self, tables: SegmentTables, as_of: datetime | None, inline: Mapping[str, Condition]
    ) -> None:
        self.tables = tables
        self.as_of = as_of
        self.inline = inline
        self.inlining: list[str] = []  # the nested segments being read, against cycles
        self.active = (
            tables.members.filter(tables.members.status == "active").select("member_id").distinct()
        )
        self.passes = {
            name: _Pass(prefix)
            for name, prefix in (
                ("members", "a"),
                ("orders", "o"),
                ("lines", "l"),
                ("events", "e"),
                ("tags", "t"),
                ("memberships", "s"),
            )
        }
        self.sets: dict[Hashable, tuple[str, ir.Table]] = {}  # member sets joined as flags
        self.categories: set[str] = set()
        self.skus: set[str] = set()

    # -- the facts ------------------------------------------------------------------------

    def facts(self, needed: frozenset[str] = frozenset()) -> ir.Table:
        """The active members with one column per condition (null where no row matched);
        only those with a row in each of the `needed` passes."""
        parts = {
            "members": self._members_pass(),
            "orders": self._orders_pass(),
            "lines": self._lines_pass(),
            "events": self._events_pass(),
            "tags": self._tags_pass(),
            "memberships": self._memberships_pass(),
            **{
                name: found.select("member_id").distinct().mutate(**{name: ibis.literal(1)})
                for name, found in self.sets.values()
            },
        }
        first = next((n for n in sorted(needed) if parts.get(n) is not None), None)
        if first is None:
            wide = self.active
        else:  # a needed pass's members that are active (a semi join: no distinct of all)
            members = self.tables.members
            wide = parts.pop(first).semi_join(
                members.filter(members.status == "active"), "member_id"
            )
        # the needed passes first: they cut the rows every later join carries
        for name in sorted(parts, key=lambda n: n not in needed):
            part = parts[name]
            if part is None:
                continue
            part = part.rename(f_member="member_id")
            on = wide.member_id == part.f_member
            joined = wide.join(part, on) if name in needed else wide.left_join(part, on)
            wide = joined.select(*wide.columns, *(c for c in part.columns if c != "f_member"))
        return wide

    def _members_pass(self) -> ir.Table | None:
        if not self.passes["members"].columns:
            return None
        # every row of a member (an attribute joined from the store may give a member two,
        # e.g. a group tier and a brand tier): the condition holds if it holds on any
        return self.passes["members"].group(self.tables.members)

    def _orders_pass(self) -> ir.Table | None:
        found = self.passes["orders"]
        if not found.columns:
            return None
        return found.group(self._timed(self._paid_orders("rule"), "ordered_at", found.widest()))

    def _lines_pass(self) -> ir.Table | None:
        found = self.passes["lines"]
        if not found.columns:
            return None
        # a line carries its order's member, time and status: no join back to the orders
        lines = self._table("order_lines", "rule")
        if "status" in lines.schema():
            lines = lines.filter(lines.status.isnull() | (lines.status != "cancelled"))
        lines = self._timed(lines, "ordered_at", found.widest())
        lines = lines.select("member_id", "ts", "sku")
        if self.categories:
            products = self._table("products", "rule")
            products = products.filter(products.category.isin(sorted(self.categories)))
            products = products.select(p_sku=products.sku, category=products.category)
            # with no SKU named, only the categories' lines are wanted: an inner join
            join = lines.left_join if self.skus else lines.join
            lines = join(products, lines.sku == products.p_sku).select(
                "member_id", "ts", "sku", "category"
            )
        else:
            lines = lines.mutate(category=ibis.null("string"))
        if self.skus:  # only the lines some condition wants
            lines = lines.filter(lines.sku.isin(sorted(self.skus)) | lines.category.notnull())
        return found.group(lines)

    def _events_pass(self) -> ir.Table | None:
        found = self.passes["events"]
        if not found.columns:
            return None
        events = self._table("events", "rule")
        return found.group(self._timed(events, "occurred_at", found.widest()))

    def _tags_pass(self) -> ir.Table | None:
        found = self.passes["tags"]
        return found.group(self._table("tags", "rule")) if found.columns else None

    def _memberships_pass(self) -> ir.Table | None:
        found = self.passes["memberships"]
        return found.group(self._table("memberships", "rule")) if found.columns else None

    def _timed(self, table: ir.Table, column: str, widest: int | None) -> ir.Table:
        """`table` with `ts` (epoch seconds of `column`), up to T and no further back than
        `widest` seconds (when every aggregate has a window)."""
        if self.as_of is not None and self.as_of.tzinfo is None:
            # first a plain comparison of the stored time, a day wider than the window on
            # each side (never narrower, whatever an engine's time zone), which is cheap and
            # lets a time-sorted table skip row groups; the exact cut is on whole seconds
            near = table[column] < ibis.timestamp(self.as_of + timedelta(days=1))
            if widest is not None:
                earliest = self.as_of - timedelta(seconds=widest, days=1)
                near &= table[column] > ibis.timestamp(earliest)
            table = table.filter(near)
        rows = table.mutate(ts=epoch_seconds(table[column]))
        return rows.filter(self._in_window(rows.ts, widest, "rule"))

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

    def condition(self, rule: Condition) -> _Compiled:
        if isinstance(rule, All):
            parts = [self.condition(c) for c in rule.conditions]
            return _Compiled(
                lambda w: functools.reduce(operator.and_, (p.holds(w) for p in parts)),
                frozenset.union(*(p.needs for p in parts)),
            )
        if isinstance(rule, AnyOf):
            parts = [self.condition(c) for c in rule.conditions]
            return _Compiled(
                lambda w: functools.reduce(operator.or_, (p.holds(w) for p in parts)),
                frozenset.intersection(*(p.needs for p in parts)),
            )
        if isinstance(rule, Not):
            inner = self.condition(rule.condition).holds
            return _Compiled(lambda w: ~inner(w))
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

    def attribute(self, rule: Attribute) -> _Compiled:
        members = self.tables.members
        schema = members.schema()
        days_ago = rule.name.endswith(DAYS_AGO) and f"{rule.name[: -len(DAYS_AGO)]}_at" in schema
        if days_ago:
            if not members[f"{rule.name[: -len(DAYS_AGO)]}_at"].type().is_timestamp():
                raise ValidationError(f"{rule.path}.attribute", "must name a timestamp _at column")
            kind = "number"
        elif rule.name in schema and rule.name not in ("member_id", "status"):
            dtype = members[rule.name].type()
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
        t = self.t(rule.path) if days_ago else None

        def holds(m: ir.Table) -> ir.BooleanValue:
            if t is not None:
                at = m[f"{rule.name[: -len(DAYS_AGO)]}_at"]
                # floor of a float division: integer division rounds negatives differently
                column: ir.Value = ((t - epoch_seconds(at)) / DAY).floor()
            else:
                column = m[rule.name]
            # a null attribute matches no op (a comparison with null is unknown: not counted)
            predicate = {
                "eq": lambda: column == values[0],
                "ne": lambda: column != values[0],
                "in": lambda: column.isin(values),
                "not_in": lambda: column.notin(values),
                "gte": lambda: column >= values[0],
                "lte": lambda: column <= values[0],
                "between": lambda: column.between(values[0], values[1]),
            }[rule.op]()
            return predicate.fill_null(False)

        name = self.passes["members"].column(("attribute", _key(rule)), holds, _count)
        return _flag(name, "members")

    def orders(self, rule: Orders) -> _Compiled:
        count = rule.count or (Compare("gte", 1) if rule.spend_fen is None else None)
        # members without orders in scope have count 0 and spend 0: a comparison that holds
        # at zero ("count lte 0": never bought) holds for them
        parts: list[Predicate] = []
        if count is not None:
            n = self._order_count(rule.scope, rule.path)
            parts.append(lambda w: _compare(w[n].fill_null(0), count))
        if rule.spend_fen is not None:
            spend_fen = rule.spend_fen
            chosen = self._order_scope(rule.scope, rule.path)
            spend = self.passes["orders"].column(
                ("spend", rule.scope),
                chosen,
                lambda o, where: o.amount_fen.sum(where=where),
                _seconds(rule.scope.within_days),
            )
            parts.append(lambda w: _compare(w[spend].fill_null(0), spend_fen))
        at_zero = (count is None or _compare_ints(0, count)) and (
            rule.spend_fen is None or _compare_ints(0, rule.spend_fen)
        )
        return _Compiled(
            lambda w: functools.reduce(operator.and_, (p(w) for p in parts)),
            frozenset() if at_zero else frozenset({"orders"}),
        )

    def last_order(self, rule: LastOrder) -> _Compiled:
        if rule.within_days is not None:  # the last order is recent: an order in the window
            n = self._order_count(replace(rule.scope, within_days=rule.within_days), rule.path)
            return _Compiled(_flag(n).holds, frozenset({"orders"}))
        scope = self._order_scope(replace(rule.scope, within_days=None), rule.path)
        at = self.passes["orders"].column(
            ("last", replace(rule.scope, within_days=None)),
            scope,
            lambda o, where: o.ts.max(where=where),
        )
        t = self.t(rule.path)
        assert rule.more_than_days is not None
        days = rule.more_than_days
        return _Compiled(
            lambda w: (w[at] <= t - days * DAY).fill_null(False), frozenset({"orders"})
        )

    def _order_count(self, scope: OrderScope, path: str) -> str:
        """The column counting a member's orders in `scope` (the orders table holds one row
        per order, as `Warehouse.purchases` does: a count, not a distinct count)."""
        chosen = self._order_scope(scope, path)
        return self.passes["orders"].column(
            ("n", scope), chosen, _count, _seconds(scope.within_days)
        )

    def _order_scope(self, scope: OrderScope, path: str) -> Callable[[ir.Table], ir.BooleanValue]:
        self._paid_orders(path)
        return self._window_and(_seconds(scope.within_days), self._scope(scope, path))

    def bought(self, rule: Bought) -> _Compiled:
        self._table("order_lines", rule.path)
        self._paid_orders(rule.path)
        if rule.category:
            self._table("products", rule.path)
        self.skus.update(rule.sku)
        self.categories.update(rule.category)
        window = None if rule.within_days is None else rule.within_days * DAY
        chosen = self._window_and(window, lambda rows: _bought_line(rows, rule))
        name = self.passes["lines"].column(("bought", _key(rule)), chosen, _count, window)
        return _flag(name, "lines")

    def event(self, rule: Event) -> _Compiled:
        events = self._table("events", rule.path)
        if rule.channel and "channel" not in events.schema():
            raise ValidationError(f"{rule.path}.channel", "the events have no such column")

        def wanted(e: ir.Table) -> ir.BooleanValue:
            predicate = e.type == rule.type
            if rule.sku:
                predicate &= e.sku.isin(rule.sku)
            if rule.channel:
                predicate &= e.channel.isin(rule.channel)
            return predicate

        chosen = self._window_and(rule.within_seconds, wanted)
        name = self.passes["events"].column(
            ("event", _key(replace(rule, count=None))), chosen, _count, rule.within_seconds
        )
        count = rule.count or Compare("gte", 1)
        return _Compiled(
            lambda w: _compare(w[name].fill_null(0), count),
            frozenset() if _compare_ints(0, count) else frozenset({"events"}),
        )

    def event_then_not(self, rule: EventThenNot) -> _Compiled:
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
        return self._set(("then_not", _key(rule)), first.anti_join(follow, predicates))

    def segment(self, rule: Segment) -> _Compiled:
        if rule.slug in self.inline and rule.slug not in self.inlining:
            self.inlining.append(rule.slug)
            try:
                return self.condition(self.inline[rule.slug])
            finally:
                self.inlining.pop()
        self._table("memberships", rule.path)
        name = self.passes["memberships"].column(
            ("segment", rule.slug), lambda s: s.segment == rule.slug, _count
        )
        return _flag(name, "memberships")

    def tag(self, rule: Tag) -> _Compiled:
        self._table("tags", rule.path)

        def held(h: ir.Table) -> ir.BooleanValue:
            predicate = h.tag == rule.slug
            if rule.values is not None:
                predicate &= h.value.isin(list(rule.values))
            return predicate

        return _flag(self.passes["tags"].column(("tag", _key(rule)), held, _count), "tags")

    # -- helpers --------------------------------------------------------------------------

    def _set(self, key: Hashable, found: ir.Table) -> _Compiled:
        if key not in self.sets:
            self.sets[key] = (f"x{len(self.sets)}", found)
        name = self.sets[key][0]
        return _flag(name, name)

    def _window_and(
        self, seconds: int | None, wanted: Callable[[ir.Table], ir.BooleanValue]
    ) -> Callable[[ir.Table], ir.BooleanValue]:
        """Rows (with `ts`, already cut at T by `_timed`) no further back than `seconds`
        that `wanted` keeps."""
        if seconds is None:
            return wanted
        t = self.t("rule")
        return lambda rows: (rows.ts > t - seconds) & wanted(rows)

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

    def _scope(self, scope: OrderScope, path: str) -> Callable[[ir.Table], ir.BooleanValue]:
        """The orders of the scope's lists (checked now, so an error names the rule's path)."""
        schema = self._table("orders", path).schema()
        wanted = []
        for column in ("brand_id", "channel", "store_id", "guide_id"):
            values = getattr(scope, column)
            if values:
                if column not in schema:
                    raise ValidationError(f"{path}.{column}", "the orders have no such column")
                wanted.append((column, values))
        return lambda o: functools.reduce(
            operator.and_, (o[c].isin(v) for c, v in wanted), ibis.literal(True)
        )


def _bought_line(rows: ir.Table, rule: Bought) -> ir.BooleanValue:
    wanted = ibis.literal(False)
    if rule.sku:
        wanted |= rows.sku.isin(rule.sku)
    if rule.category:
        wanted |= rows.category.isin(rule.category)
    return wanted


def _flag(column: str, needs: str | None = None) -> _Compiled:
    """A count above zero: the member has a row of `needs`."""
    return _Compiled(
        lambda w: w[column].fill_null(0) > 0, frozenset({needs}) if needs else frozenset()
    )


def _count(rows: ir.Table, where: ir.BooleanValue) -> ir.IntegerValue:
    return rows.member_id.count(where=where)


def _seconds(days: int | None) -> int | None:
    return None if days is None else days * DAY


def _compare_ints(value: int, compare: Compare) -> bool:
    """`_compare` on a Python number: whether the comparison holds at `value`."""
    return {"gte": value >= compare.value, "lte": value <= compare.value}.get(
        compare.op, value == compare.value
    )


def _key(rule: Condition) -> Hashable:
    """A condition's identity for sharing a column: its fields, not where it sits."""
    return replace(rule, path="rule")


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
