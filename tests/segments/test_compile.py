"""Segment rules compiled to one Ibis expression, on DuckDB and Spark, against hand-made
adversarial data: window edges (an order exactly n days before T is outside, one at T
inside, one after T ignored), cancelled orders, members without orders, a merged member,
the edges of "event then not" and nested segments. Each case's set is written by hand;
both engines must give it exactly."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from ibis import BaseBackend
from tests.segments.tables import register

from siyu.analytics.engines import load_arrow
from siyu.errors import ValidationError
from siyu.segments.compile import SegmentTables, compile_rule, count_members, preview

T = datetime(2024, 6, 30, 12, 0, 0)
D = timedelta(days=1)
H = timedelta(hours=1)
S = timedelta(seconds=1)
ACTIVE = {f"m{i}" for i in range(1, 9)}  # m9 is merged into another member

DATA: dict[str, list[tuple[Any, ...]]] = {
    "members": [
        ("m1", "active", "new", "gold", 10, T - 10 * D),
        ("m2", "active", "loyal", "silver", 20, T - 30 * D),
        ("m3", "active", "loyal", "gold", 30, T - 30 * D + S),  # 29.99 days: 29
        ("m4", "active", "at_risk", None, 40, T - 400 * D),
        ("m5", "active", None, "silver", None, T - 1000 * D),
        ("m6", "active", "lapsed", "gold", 60, T - 1000 * D),
        ("m7", "active", "loyal", None, 70, T - 1000 * D),
        ("m8", "active", "new", "gold", 80, T + D),  # registered after T: -1 days ago
        ("m9", "merged", "loyal", "gold", 90, T - 10 * D),
    ],
    "orders": [
        ("o1", "m1", T - 365 * D, 1000, "paid", "B1", "pos"),  # exactly 365 days: outside
        ("o2", "m1", T, 2000, "paid", "B1", "online"),  # exactly T: inside
        ("o3", "m2", T - 10 * D, 5000, "cancelled", "B1", "pos"),
        ("o4", "m2", T - 400 * D, 3000, "paid", "B2", "pos"),
        ("o5", "m3", T - 1 * D, 4000, "paid", "B1", "pos"),
        ("o6", "m3", T - 2 * D, 4000, "paid", "B1", "pos"),
        ("o7", "m3", T - 3 * D, 4000, "paid", "B2", "online"),
        ("o8", "m4", T - 100 * D, 100, "paid", "B1", "pos"),
        ("o9", "m4", T - 200 * D, 100, "paid", "B1", "pos"),
        ("o10", "m4", T - 300 * D, 100, "paid", "B1", "pos"),
        ("o11", "m9", T - 1 * D, 9000, "paid", "B1", "pos"),
        ("o12", "m5", T + D, 9000, "paid", "B1", "pos"),  # after T: ignored
    ],
    "order_lines": [
        ("o1", "durian-1"),
        ("o2", "apple"),
        ("o3", "durian-1"),
        ("o5", "durian-1"),
        ("o5", "apple"),
        ("o8", "durian-2"),
        ("o11", "durian-1"),
        ("o12", "durian-1"),
    ],
    "products": [("durian-1", "durian"), ("durian-2", "durian"), ("apple", "apple")],
    "events": [
        ("m1", "cart", T - 48 * H, "s1"),
        ("m1", "pay", T - 24 * H, "s1"),  # exactly 24 h after: followed
        ("m2", "cart", T - 48 * H, "s1"),
        ("m2", "pay", T - 49 * H, "s1"),  # before the cart: not a follow-up
        ("m3", "cart", T - 30 * H, "s1"),
        ("m3", "pay", T - 29 * H, "s2"),  # another sku
        ("m4", "cart", T - 10 * H, "s1"),  # 24 h not yet passed at T
        ("m5", "cart", T - 8 * D, "s1"),  # before since_days
        ("m6", "cart", T - 50 * H, "s1"),
        ("m6", "pay", T - 26 * H + S, "s1"),  # 24 h + 1 s after: too late
        ("m7", "cart", T - 7 * D, "s1"),  # exactly since_days: outside
        ("m9", "cart", T - 48 * H, "s1"),  # merged
    ],
    "memberships": [("vip", "m1"), ("vip", "m2"), ("vip", "m9"), ("churn", "m2")],
}


def orders(**body: Any) -> dict[str, Any]:
    return {"orders": body}


def attr(name: str, op: str, value: Any) -> dict[str, Any]:
    return {"attribute": name, "op": op, "value": value}


CART_THEN_NO_PAY = {
    "event_then_not": {
        "event": {"type": "cart"},
        "not_followed_by": {"type": "pay"},
        "within_hours": 24,
        "since_days": 7,
    }
}

CASES: dict[str, tuple[dict[str, Any], set[str]]] = {
    "order at T in, at T-1d out": (orders(within_days=1), {"m1"}),
    "order at T-365d out": (orders(within_days=365, count={"gte": 2}), {"m3", "m4"}),
    "never bought in window (count lte 0)": (
        orders(within_days=365, count={"lte": 0}),
        {"m2", "m5", "m6", "m7", "m8"},
    ),
    "never bought at all": ({"not": orders()}, {"m5", "m6", "m7", "m8"}),
    "count eq 0 with spend": (
        orders(count={"eq": 0}, spend_fen={"lte": 0}),
        {"m5", "m6", "m7", "m8"},
    ),
    "spend in window": (orders(within_days=365, spend_fen={"gte": 12000}), {"m3"}),
    "brand and channel scope": (orders(brand_id=["B2"], channel=["pos"]), {"m2"}),
    ">= 3 orders and none in 60 days": (
        {"all": [orders(count={"gte": 3}), orders(within_days=60, count={"lte": 0})]},
        {"m4"},
    ),
    ">= 3 orders and last order > 60 days": (
        {"all": [orders(count={"gte": 3}), {"last_order": {"more_than_days": 60}}]},
        {"m4"},
    ),
    "last order more than 60 days (never-buyers excluded)": (
        {"last_order": {"more_than_days": 60}},
        {"m2", "m4"},
    ),
    "last order within 30 days": ({"last_order": {"within_days": 30}}, {"m1", "m3"}),
    "last order more than 0 days": (
        {"last_order": {"more_than_days": 0}},
        {"m1", "m2", "m3", "m4"},
    ),
    "bought durian-1 in 180 days": ({"bought": {"sku": ["durian-1"], "within_days": 180}}, {"m3"}),
    "bought category durian in 365 days": (
        {"bought": {"category": ["durian"], "within_days": 365}},
        {"m3", "m4"},
    ),
    "bought category durian ever": ({"bought": {"category": ["durian"]}}, {"m1", "m3", "m4"}),
    "cart in the last 24 h": ({"event": {"type": "cart", "within_hours": 24}}, {"m4"}),
    "cart in 7 days": (
        {"event": {"type": "cart", "within_days": 7, "count": {"gte": 1}}},
        {"m1", "m2", "m3", "m4", "m6"},
    ),
    "no cart in 7 days": (
        {"event": {"type": "cart", "within_days": 7, "count": {"lte": 0}}},
        {"m5", "m7", "m8"},
    ),
    "pay for s2": ({"event": {"type": "pay", "sku": ["s2"]}}, {"m3"}),
    "carted, no pay within 24 h": (CART_THEN_NO_PAY, {"m2", "m6"}),
    "carted, no pay of that sku within 24 h": (
        {"event_then_not": {**CART_THEN_NO_PAY["event_then_not"], "same_sku": True}},
        {"m2", "m3", "m6"},
    ),
    "carted, no order within 24 h": (
        {
            "event_then_not": {
                **CART_THEN_NO_PAY["event_then_not"],
                "not_followed_by": {"order": {}},
            }
        },
        {"m1", "m2", "m6"},
    ),
    "in vip and not in churn": (
        {"all": [{"segment": "vip"}, {"not": {"segment": "churn"}}]},
        {"m1"},
    ),
    "vip or gold": (
        {"any": [{"segment": "vip"}, attr("tier", "eq", "gold")]},
        {"m1", "m2", "m3", "m6", "m8"},
    ),
    "not not vip": ({"not": {"not": {"segment": "vip"}}}, {"m1", "m2"}),
    "stage eq loyal (merged excluded)": (attr("stage", "eq", "loyal"), {"m2", "m3", "m7"}),
    "stage ne loyal (null excluded)": (attr("stage", "ne", "loyal"), {"m1", "m4", "m6", "m8"}),
    "stage not_in": (attr("stage", "not_in", ["loyal", "new"]), {"m4", "m6"}),
    "stage in": (attr("stage", "in", ["new", "lapsed"]), {"m1", "m6", "m8"}),
    "points between": (attr("points", "between", [20, 60]), {"m2", "m3", "m4", "m6"}),
    "points gte": (attr("points", "gte", 70.5), {"m8"}),
    "registered_days_ago lte 29": (attr("registered_days_ago", "lte", 29), {"m1", "m3", "m8"}),
    "registered_days_ago between": (
        attr("registered_days_ago", "between", [30, 400]),
        {"m2", "m4"},
    ),
}


@pytest.fixture
def tables(con: BaseBackend) -> SegmentTables:
    return register(con, DATA)


@pytest.mark.parametrize("case", list(CASES))
def test_case_selects_exactly_its_members(tables: SegmentTables, case: str) -> None:
    # given a rule and the hand-counted members it must select at T
    rule, expected = CASES[case]
    # when it is compiled to one expression and run on the engine
    got = compile_rule({"version": 1, "rule": rule}, tables, T).execute()
    # then it is exactly that set, each member once, all active
    assert sorted(got.member_id) == sorted(expected)
    assert set(got.columns) == {"member_id"}
    assert expected <= ACTIVE


def test_as_of_defaults_to_the_latest_paid_order(tables: SegmentTables) -> None:
    # given no as-of time: T is o12's time (T + 1 day), cancelled orders do not set it
    doc = {"version": 1, "rule": orders(within_days=1)}
    # then "within 1 day" is (T, T + 1d]: o2 at T is now exactly one day back, outside
    assert sorted(compile_rule(doc, tables).execute().member_id) == ["m5"]


def test_count_and_preview(tables: SegmentTables) -> None:
    doc = {"version": 1, "rule": orders(within_days=365, count={"lte": 0})}
    assert count_members(doc, tables, T) == 5
    shown = preview(doc, tables, T, sample=3)
    assert (shown.size, shown.sample) == (5, ["m2", "m5", "m6"])


def test_compile_errors_name_the_path(con: BaseBackend) -> None:
    tables = register(con, {"members": DATA["members"], "orders": DATA["orders"]}, prefix="seg_err")
    cases = [
        (attr("nope", "eq", 1), "rule.attribute"),
        (attr("stage", "eq", 1), "rule.value"),
        (attr("stage", "gte", 1), "rule.value"),
        (attr("registered_at", "eq", "x"), "rule.attribute"),
        (
            {"any": [attr("tier", "eq", "gold"), orders(store_id=["S1"])]},
            "rule.any[1].orders.store_id",
        ),
        ({"bought": {"sku": ["x"]}}, "rule.bought"),
        ({"event": {"type": "cart"}}, "rule.event"),
        ({"not": {"segment": "vip"}}, "rule.not.segment"),
    ]
    for rule, path in cases:
        with pytest.raises(ValidationError) as error:
            compile_rule({"version": 1, "rule": rule}, tables, T)
        assert error.value.field == path, rule


def test_an_event_rule_scoped_to_channels_counts_only_their_events(con: BaseBackend) -> None:
    # given views in the mini-program and in WeCom, one without a channel, one after T
    rows = [
        ("m1", "view", T - 2 * H, "s1", "wecom"),
        ("m1", "view", T - 3 * H, "s1", "miniprogram"),
        ("m2", "view", T - 1 * D, "s2", "miniprogram"),
        ("m2", "view", T - 2 * D, "s2", "miniprogram"),
        ("m3", "view", T - 1 * H, "s1", None),
        ("m4", "view", T + 1 * H, "s1", "wecom"),  # after T: ignored
    ]
    events = pa.table(
        {
            "member_id": [r[0] for r in rows],
            "type": [r[1] for r in rows],
            "occurred_at": pa.array([r[2] for r in rows], pa.timestamp("us")),
            "sku": [r[3] for r in rows],
            "channel": pa.array([r[4] for r in rows], pa.string()),
        }
    )
    tables = replace(
        register(con, {"members": DATA["members"]}, prefix="seg_ch"),
        events=load_arrow(con, events, "seg_ch_events"),
    )

    def held(**body: Any) -> list[str]:
        doc = {"version": 1, "rule": {"event": {"type": "view", **body}}}
        return preview(doc, tables, T, sample=10).sample

    # then a channel list keeps only its events; a null channel is in none
    assert held(channel=["miniprogram"]) == ["m1", "m2"]
    assert held(channel=["wecom"]) == ["m1"]
    assert held(channel=["miniprogram"], count={"gte": 2}) == ["m2"]
    # (T - 1 day, T]: m2's view at exactly T - 1 day is out
    assert held(channel=["wecom", "miniprogram"], within_days=1) == ["m1"]
    assert held(channel=["miniprogram"], within_days=2, count={"gte": 2}) == []
    assert held() == ["m1", "m2", "m3"]
    # and events without a channel column refuse the scope, naming it
    plain = register(con, {"members": DATA["members"], "events": DATA["events"]}, prefix="seg_nc")
    with pytest.raises(ValidationError) as error:
        compile_rule(
            {"version": 1, "rule": {"event": {"type": "cart", "channel": ["x"]}}}, plain, T
        )
    assert error.value.field == "rule.event.channel"
