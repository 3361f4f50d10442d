"""Parsing rule documents: every refusal names the JSON path of the field and the rule it
broke; other versions, unknown keys and values of the wrong type are refused."""

from __future__ import annotations

from typing import Any

import pytest

from siyu.errors import ValidationError
from siyu.segments.rules import (
    MAX_DEPTH,
    All,
    Attribute,
    Bought,
    Compare,
    EventThenNot,
    Not,
    Orders,
    OrderScope,
    Segment,
    parse_document,
)


def doc(rule: Any) -> dict[str, Any]:
    return {"version": 1, "rule": rule}


def refused(document: Any) -> ValidationError:
    with pytest.raises(ValidationError) as error:
        parse_document(document)
    return error.value


def test_the_issues_examples_parse() -> None:
    durian = parse_document(doc({"bought": {"category": ["durian"], "within_days": 180}}))
    assert durian.rule == Bought((), ("durian",), 180)
    lapsing = parse_document(
        doc(
            {
                "all": [
                    {"orders": {"count": {"gte": 3}}},
                    {"orders": {"within_days": 60, "count": {"lte": 0}}},
                ]
            }
        )
    )
    assert lapsing.rule == All(
        (
            Orders(OrderScope(), Compare("gte", 3)),
            Orders(OrderScope(within_days=60), Compare("lte", 0)),
        )
    )
    cart = parse_document(
        doc(
            {
                "event_then_not": {
                    "event": {"type": "cart"},
                    "not_followed_by": {"type": "pay"},
                    "within_hours": 24,
                    "since_days": 7,
                }
            }
        )
    )
    assert cart.rule == EventThenNot("cart", (), "pay", False, 24, 7)
    x_not_y = parse_document(doc({"all": [{"segment": "x"}, {"not": {"segment": "y"}}]}))
    assert x_not_y.rule == All((Segment("x"), Not(Segment("y"))))
    assert parse_document(doc({"attribute": "tier", "op": "in", "value": ["gold"]})).rule == (
        Attribute("tier", "in", ("gold",))
    )


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"version": 2, "rule": {"segment": "x"}}, "version"),
        ({"version": "1", "rule": {"segment": "x"}}, "version"),
        ({"version": True, "rule": {"segment": "x"}}, "version"),
        ({"rule": {"segment": "x"}}, "version"),
        ({"version": 1}, "rule"),
        ({"version": 1, "rule": {"segment": "x"}, "name": "x"}, "name"),
        ([], "$"),
        (doc([]), "rule"),
        (doc({}), "rule"),
        (doc({"segment": "x", "not": {"segment": "y"}}), "rule"),
        (doc({"tags": "x"}), "rule.tags"),
        (doc({"all": []}), "rule.all"),
        (doc({"any": {"segment": "x"}}), "rule.any"),
        (
            doc({"all": [{"segment": "x"}, {"segment": "x"}, {"orders": {"within_days": 0}}]}),
            "rule.all[2].orders.within_days",
        ),
        (doc({"all": [{"orders": {"within_days": "365"}}]}), "rule.all[0].orders.within_days"),
        (doc({"orders": {"within_days": 1.5}}), "rule.orders.within_days"),
        (doc({"orders": {"within_days": True}}), "rule.orders.within_days"),
        (doc({"orders": {"count": {"gte": -1}}}), "rule.orders.count.gte"),
        (doc({"orders": {"count": {"gt": 1}}}), "rule.orders.count.gt"),
        (doc({"orders": {"count": {"gte": 1, "lte": 3}}}), "rule.orders.count"),
        (doc({"orders": {"count": 3}}), "rule.orders.count"),
        (doc({"orders": {"spend_fen": {"gte": 1.5}}}), "rule.orders.spend_fen.gte"),
        (doc({"orders": {"brand_id": []}}), "rule.orders.brand_id"),
        (doc({"orders": {"channel": "pos"}}), "rule.orders.channel"),
        (doc({"orders": {"store_id": ["s1", 2]}}), "rule.orders.store_id[1]"),
        (doc({"orders": {"sku": ["a"]}}), "rule.orders.sku"),
        (doc({"last_order": {}}), "rule.last_order"),
        (doc({"last_order": {"more_than_days": 1, "within_days": 2}}), "rule.last_order"),
        (doc({"last_order": {"more_than_days": -1}}), "rule.last_order.more_than_days"),
        (doc({"bought": {"within_days": 3}}), "rule.bought"),
        (doc({"bought": {"sku": [""]}}), "rule.bought.sku[0]"),
        (doc({"bought": {"category": ["x"], "brand": "y"}}), "rule.bought.brand"),
        (doc({"event": {"within_days": 1}}), "rule.event.type"),
        (doc({"event": {"type": "cart", "within_days": 1, "within_hours": 2}}), "rule.event"),
        (doc({"event": {"type": 3}}), "rule.event.type"),
        (doc({"event": {"type": "cart", "count": {"eq": "1"}}}), "rule.event.count.eq"),
        (
            doc(
                {
                    "event_then_not": {
                        "event": {"type": "cart"},
                        "not_followed_by": {"type": "pay"},
                        "within_hours": 24,
                    }
                }
            ),
            "rule.event_then_not.since_days",
        ),
        (
            doc(
                {
                    "event_then_not": {
                        "event": {"type": "cart"},
                        "not_followed_by": {},
                        "within_hours": 24,
                        "since_days": 7,
                    }
                }
            ),
            "rule.event_then_not.not_followed_by",
        ),
        (
            doc(
                {
                    "event_then_not": {
                        "event": {"type": "cart"},
                        "not_followed_by": {"order": {"x": 1}},
                        "within_hours": 24,
                        "since_days": 7,
                    }
                }
            ),
            "rule.event_then_not.not_followed_by.order.x",
        ),
        (
            doc(
                {
                    "event_then_not": {
                        "event": {"type": "cart", "at": 1},
                        "not_followed_by": {"type": "pay"},
                        "within_hours": 24,
                        "since_days": 7,
                    }
                }
            ),
            "rule.event_then_not.event.at",
        ),
        (
            doc(
                {
                    "event_then_not": {
                        "event": {"type": "cart"},
                        "not_followed_by": {"order": {}},
                        "within_hours": 24,
                        "since_days": 7,
                        "same_sku": True,
                    }
                }
            ),
            "rule.event_then_not.same_sku",
        ),
        (
            doc(
                {
                    "event_then_not": {
                        "event": {"type": "cart"},
                        "not_followed_by": {"type": "pay"},
                        "within_hours": 24,
                        "since_days": 7,
                        "same_sku": 1,
                    }
                }
            ),
            "rule.event_then_not.same_sku",
        ),
        (doc({"segment": "Has Space"}), "rule.segment"),
        (doc({"segment": 7}), "rule.segment"),
        (doc({"attribute": "tier", "op": "eq"}), "rule.value"),
        (doc({"attribute": "tier", "op": "like", "value": "g"}), "rule.op"),
        (doc({"attribute": "Tier!", "op": "eq", "value": "g"}), "rule.attribute"),
        (doc({"attribute": "tier", "op": "eq", "value": None}), "rule.value"),
        (doc({"attribute": "tier", "op": "eq", "value": ["gold"]}), "rule.value"),
        (doc({"attribute": "tier", "op": "in", "value": "gold"}), "rule.value"),
        (doc({"attribute": "tier", "op": "in", "value": ["gold", 1]}), "rule.value"),
        (doc({"attribute": "points", "op": "gte", "value": "10"}), "rule.value"),
        (doc({"attribute": "points", "op": "gte", "value": False}), "rule.value"),
        (doc({"attribute": "points", "op": "between", "value": [3, 1]}), "rule.value"),
        (doc({"attribute": "points", "op": "between", "value": [1]}), "rule.value"),
        (doc({"attribute": "points", "op": "between", "value": [1, "2"]}), "rule.value[1]"),
        (doc({"attribute": "tier", "op": "eq", "value": "g", "extra": 1}), "rule.extra"),
        (
            doc({"not": {"all": [{"segment": "x"}, {"orders": {"count": {"gte": "3"}}}]}}),
            "rule.not.all[1].orders.count.gte",
        ),
    ],
)
def test_refusals_name_the_path(document: Any, path: str) -> None:
    error = refused(document)
    assert error.field == path
    assert error.rule  # and say which rule was broken


def test_nesting_is_bounded() -> None:
    rule: dict[str, Any] = {"segment": "x"}
    for _ in range(MAX_DEPTH - 1):
        rule = {"not": rule}
    parse_document(doc(rule))  # MAX_DEPTH levels of conditions are fine
    error = refused(doc({"all": [rule]}))
    assert error.field == "rule.all" + "[0].not" + ".not" * (MAX_DEPTH - 2)
    assert "nesting" in error.rule


def test_parsed_rules_are_frozen() -> None:
    rule = parse_document(doc({"segment": "x"})).rule
    with pytest.raises(AttributeError):
        rule.slug = "y"  # type: ignore[misc]


def test_references_name_what_a_rule_reads() -> None:
    from siyu.segments.rules import references

    doc = parse_document(
        {
            "version": 1,
            "rule": {
                "all": [
                    {"attribute": "stage", "op": "eq", "value": "loyal"},
                    {"not": {"segment": "vip"}},
                    {"any": [{"tag": "durian-hater"}, {"bought": {"category": ["fruit"]}}]},
                    {
                        "event_then_not": {
                            "event": {"type": "add_to_cart"},
                            "not_followed_by": {"order": {}},
                            "within_hours": 24,
                            "since_days": 7,
                        }
                    },
                ]
            },
        }
    )
    found = references(doc.rule)
    assert found.tables == {
        "memberships",
        "tags",
        "orders",
        "order_lines",
        "products",
        "events",
    }
    assert (found.tags, found.segments, found.attributes) == (
        {"durian-hater"},
        {"vip"},
        {"stage"},
    )
    # an event followed by an event type reads no orders
    only_events = parse_document(
        {
            "version": 1,
            "rule": {
                "event_then_not": {
                    "event": {"type": "view"},
                    "not_followed_by": {"type": "add_to_cart"},
                    "within_hours": 1,
                    "since_days": 1,
                }
            },
        }
    )
    assert references(only_events.rule).tables == {"events"}
