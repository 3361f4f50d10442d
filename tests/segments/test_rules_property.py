"""Random valid rules on random small data: the compiled expression (DuckDB) selects exactly
the members of an independent reference written here, member by member in pandas and
Python, sharing no code with compile.py. Times are whole hours before a fixed T, so window
edges (exactly n days, exactly T) come up often."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import ibis
import pandas as pd
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from tests.segments.tables import arrow, arrow_tables

from siyu.segments.compile import SegmentTables, compile_rule

T = datetime(2024, 1, 31)
MEMBERS = [f"m{i}" for i in range(8)]
SKUS = ["s1", "s2", "s3"]
CATEGORY = {"s1": "c1", "s2": "c1", "s3": "c2"}
SEGMENTS = ["x", "y"]

# -- data ---------------------------------------------------------------------------------

hours_before_t = st.integers(min_value=-24, max_value=24 * 40)


def at(hours: int) -> datetime:
    return T - timedelta(hours=hours)


member_rows = st.tuples(
    st.sampled_from(["active", "active", "active", "merged"]),
    st.sampled_from(["a", "b", None]),
    st.sampled_from(["gold", "silver"]),
    st.one_of(st.none(), st.integers(0, 5)),
    hours_before_t,
)
order_rows = st.lists(
    st.tuples(
        st.sampled_from(MEMBERS),
        hours_before_t,
        st.integers(0, 500),
        st.sampled_from(["paid", "paid", "cancelled"]),
        st.sampled_from(["B1", "B2"]),
        st.sampled_from(["pos", "online"]),
        st.lists(st.sampled_from(SKUS), min_size=1, max_size=2),
    ),
    max_size=14,
)
event_rows = st.lists(
    st.tuples(
        st.sampled_from(MEMBERS),
        st.sampled_from(["cart", "pay"]),
        st.integers(min_value=-2, max_value=24 * 10),
        st.sampled_from(SKUS),
    ),
    max_size=14,
)
membership_rows = st.lists(
    st.tuples(st.sampled_from(SEGMENTS), st.sampled_from(MEMBERS)), max_size=8
)


@st.composite
def datasets(draw: st.DrawFn) -> dict[str, list[tuple[Any, ...]]]:
    members = [
        (m, status, stage, tier, points, at(reg))
        for m, (status, stage, tier, points, reg) in zip(
            MEMBERS, draw(st.lists(member_rows, min_size=8, max_size=8)), strict=True
        )
    ]
    orders, lines = [], []
    for i, (m, hours, fen, status, brand, channel, skus) in enumerate(draw(order_rows)):
        orders.append((f"o{i}", m, at(hours), fen, status, brand, channel))
        lines += [(f"o{i}", sku) for sku in skus]
    return {
        "members": members,
        "orders": orders,
        "order_lines": lines,
        "products": list(CATEGORY.items()),
        "events": [(m, kind, at(h), sku) for m, kind, h, sku in draw(event_rows)],
        "memberships": draw(membership_rows),
    }


# -- rules --------------------------------------------------------------------------------

days = st.sampled_from([1, 2, 5, 10, 30])
compare = st.builds(lambda op, v: {op: v}, st.sampled_from(["gte", "lte", "eq"]), st.integers(0, 3))
spend = st.builds(lambda op, v: {op: v}, st.sampled_from(["gte", "lte", "eq"]), st.integers(0, 800))


def optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


attribute = st.one_of(
    st.builds(
        lambda op, v: {"attribute": "stage", "op": op, "value": v},
        st.sampled_from(["eq", "ne"]),
        st.sampled_from(["a", "b"]),
    ),
    st.builds(
        lambda op, v: {"attribute": "stage", "op": op, "value": v},
        st.sampled_from(["in", "not_in"]),
        st.lists(st.sampled_from(["a", "b"]), min_size=1, max_size=2),
    ),
    st.builds(
        lambda op, v: {"attribute": "points", "op": op, "value": v},
        st.sampled_from(["gte", "lte"]),
        st.integers(0, 5),
    ),
    st.builds(
        lambda lo, width: {"attribute": "points", "op": "between", "value": [lo, lo + width]},
        st.integers(0, 5),
        st.integers(0, 3),
    ),
    st.builds(
        lambda op, v: {"attribute": "registered_days_ago", "op": op, "value": v},
        st.sampled_from(["gte", "lte", "eq"]),
        st.integers(-1, 40),
    ),
)
orders_rule = st.builds(
    lambda body: {"orders": body},
    optional(
        within_days=days,
        brand_id=st.lists(st.sampled_from(["B1", "B2"]), min_size=1, max_size=2),
        channel=st.just(["pos"]),
        count=compare,
        spend_fen=spend,
    ),
)
last_order = st.one_of(
    st.builds(lambda n: {"last_order": {"more_than_days": n}}, st.sampled_from([0, 1, 5, 30])),
    st.builds(lambda n: {"last_order": {"within_days": n}}, days),
    st.builds(lambda n: {"last_order": {"more_than_days": n, "brand_id": ["B1"]}}, days),
)
bought = st.builds(
    lambda sku, category, body: {"bought": {**sku, **category, **body}},
    st.one_of(
        st.just({}),
        st.builds(lambda v: {"sku": v}, st.lists(st.sampled_from(SKUS), min_size=1, max_size=2)),
    ),
    st.builds(
        lambda v: {"category": v}, st.lists(st.sampled_from(["c1", "c2"]), min_size=1, max_size=1)
    ),
    optional(within_days=days),
)
event = st.builds(
    lambda kind, body: {"event": {"type": kind, **body}},
    st.sampled_from(["cart", "pay"]),
    optional(
        within_hours=st.sampled_from([1, 24, 48]),
        sku=st.lists(st.sampled_from(SKUS), min_size=1, max_size=2),
        count=compare,
    ),
)
event_then_not = st.builds(
    lambda event_sku, follow, hours, since: {
        "event_then_not": {
            "event": {"type": "cart", **event_sku},
            "not_followed_by": follow[0],
            "within_hours": hours,
            "since_days": since,
            **follow[1],
        }
    },
    optional(sku=st.lists(st.sampled_from(SKUS), min_size=1, max_size=1)),
    st.sampled_from(
        [({"type": "pay"}, {}), ({"type": "pay"}, {"same_sku": True}), ({"order": {}}, {})]
    ),
    st.sampled_from([1, 2, 24]),
    st.sampled_from([1, 2, 7]),
)
segment = st.builds(lambda s: {"segment": s}, st.sampled_from(SEGMENTS))
leaves = st.one_of(attribute, orders_rule, last_order, bought, event, event_then_not, segment)
rules = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(lambda c: {"all": c}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: {"any": c}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda c: {"not": c}, inner),
    ),
    max_leaves=6,
)


def depth(rule: dict[str, Any]) -> int:
    (kind,) = rule if "attribute" not in rule else ("attribute",)
    if kind in ("all", "any"):
        return 1 + max(depth(c) for c in rule[kind])
    if kind == "not":
        return 1 + depth(rule["not"])
    return 1


# -- the reference ------------------------------------------------------------------------


class Reference:
    """The rule language's definitions, one member at a time (docs/segments.md)."""

    def __init__(self, data: dict[str, list[tuple[Any, ...]]]) -> None:
        self.members = arrow("members", data["members"]).to_pandas()
        self.order_rows = arrow("orders", data["orders"]).to_pandas()
        self.lines = arrow("order_lines", data["order_lines"]).to_pandas()
        self.event_rows = arrow("events", data["events"]).to_pandas()
        self.memberships = arrow("memberships", data["memberships"]).to_pandas()
        self.active = set(self.members.member_id[self.members.status == "active"])

    def select(self, rule: dict[str, Any]) -> set[str]:
        return self.run(rule) & self.active

    def run(self, rule: dict[str, Any]) -> set[str]:
        if "attribute" in rule:
            return self.attribute(rule)
        ((kind, body),) = rule.items()
        if kind == "all":
            return set.intersection(*(self.run(c) for c in body))
        if kind == "any":
            return set.union(*(self.run(c) for c in body))
        if kind == "not":
            return self.active - self.run(body)
        method: Callable[[Any], set[str]] = getattr(self, kind)
        return method(body)

    def attribute(self, rule: dict[str, Any]) -> set[str]:
        out = set()
        for row in self.members.itertuples():
            if rule["attribute"] == "registered_days_ago":
                value: Any = math.floor((T - row.registered_at).total_seconds() / 86400)
            else:
                value = getattr(row, rule["attribute"])
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue  # a missing attribute matches nothing
            if _holds(value, rule["op"], rule["value"]):
                out.add(row.member_id)
        return out

    def paid(self, body: dict[str, Any], within_days: int | None) -> pd.DataFrame:
        o = self.order_rows
        keep = (o.status != "cancelled") & (o.ordered_at <= T)
        if within_days is not None:
            keep &= o.ordered_at > T - timedelta(days=within_days)
        for column in ("brand_id", "channel"):
            if column in body:
                keep &= o[column].isin(body[column])
        return o[keep]

    @staticmethod
    def holds(value: int, comparison: dict[str, int]) -> bool:
        ((op, bound),) = comparison.items()
        return {"gte": value >= bound, "lte": value <= bound, "eq": value == bound}[op]

    def orders(self, body: dict[str, Any]) -> set[str]:
        o = self.paid(body, body.get("within_days"))
        count = body.get("count", {"gte": 1} if "spend_fen" not in body else None)
        out = set()
        for m in self.active:
            mine = o[o.member_id == m]
            if count is not None and not self.holds(mine.order_id.nunique(), count):
                continue
            if "spend_fen" in body and not self.holds(
                int(mine.amount_fen.sum()), body["spend_fen"]
            ):
                continue
            out.add(m)
        return out

    def last_order(self, body: dict[str, Any]) -> set[str]:
        o = self.paid(body, None)
        out = set()
        for m, when in o.groupby("member_id").ordered_at.max().items():
            if "more_than_days" in body and when <= T - timedelta(days=body["more_than_days"]):
                out.add(m)
            if "within_days" in body and when > T - timedelta(days=body["within_days"]):
                out.add(m)
        return out

    def bought(self, body: dict[str, Any]) -> set[str]:
        o = self.paid({}, body.get("within_days"))
        skus = set(body.get("sku", [])) | {
            s for s, c in CATEGORY.items() if c in body.get("category", [])
        }
        orders = set(self.lines.order_id[self.lines.sku.isin(skus)])
        return set(o.member_id[o.order_id.isin(orders)])

    def event(self, body: dict[str, Any]) -> set[str]:
        e = self.event_rows
        keep = (e.type == body["type"]) & (e.occurred_at <= T)
        if "within_hours" in body:
            keep &= e.occurred_at > T - timedelta(hours=body["within_hours"])
        if "sku" in body:
            keep &= e.sku.isin(body["sku"])
        counts = e[keep].groupby("member_id").size()
        count = body.get("count", {"gte": 1})
        return {m for m in self.active if self.holds(int(counts.get(m, 0)), count)}

    def event_then_not(self, body: dict[str, Any]) -> set[str]:
        hold = timedelta(hours=body["within_hours"])
        since = T - timedelta(days=body["since_days"])
        out = set()
        for first in self.event_rows.itertuples():
            if first.type != "cart" or not since < first.occurred_at <= T - hold:
                continue
            if "sku" in body["event"] and first.sku not in body["event"]["sku"]:
                continue
            if "order" in body["not_followed_by"]:
                o = self.order_rows
                times = o.ordered_at[(o.member_id == first.member_id) & (o.status != "cancelled")]
            else:
                e = self.event_rows
                mine = (e.member_id == first.member_id) & (
                    e.type == body["not_followed_by"]["type"]
                )
                if body.get("same_sku"):
                    mine &= e.sku == first.sku
                times = e.occurred_at[mine]
            if not any(first.occurred_at <= t <= first.occurred_at + hold for t in times):
                out.add(first.member_id)
        return out

    def segment(self, slug: str) -> set[str]:
        return set(self.memberships.member_id[self.memberships.segment == slug])


def _holds(value: Any, op: str, v: Any) -> bool:
    if op == "eq":
        return bool(value == v)
    if op == "ne":
        return bool(value != v)
    if op == "in":
        return value in v
    if op == "not_in":
        return value not in v
    if op == "gte":
        return bool(value >= v)
    if op == "lte":
        return bool(value <= v)
    return bool(v[0] <= value <= v[1])


# -- the property -------------------------------------------------------------------------

CON = ibis.duckdb.connect()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=datasets(), rule=rules)
def test_compiled_rule_equals_the_reference(
    data: dict[str, list[tuple[Any, ...]]], rule: dict[str, Any]
) -> None:
    assume(depth(rule) <= 8)
    tables = SegmentTables(
        **{name: ibis.memtable(table) for name, table in arrow_tables(data).items()}
    )
    got = CON.execute(compile_rule({"version": 1, "rule": rule}, tables, T))
    assert sorted(got.member_id) == sorted(Reference(data).select(rule)), rule
