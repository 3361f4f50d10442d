"""Coupon templates: each kind's benefit on hand-made baskets at its edges, bad documents
refused naming the field and the rule, and properties over random baskets (a coupon never
takes off more than what it applies to, a bigger basket never gets less)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from siyu.coupons.templates import (
    Basket,
    BasketLine,
    CouponTemplate,
    combined,
)

WINDOW = {"starts_at": "2026-01-01T00:00:00", "ends_at": "2026-02-01T00:00:00"}


def template(kind: str, **fields: Any) -> CouponTemplate:
    doc: dict[str, Any] = {
        "code": f"T-{kind}",
        "name_zh": "券",
        "name_en": "Coupon",
        "kind": kind,
        "validity": WINDOW,
        "face_value_fen": 1000,
        "cost_fen": 1000,
    }
    return CouponTemplate.model_validate({**doc, **fields})


def basket(*amounts: int, channel: str = "pos", shipping: int = 0, **line: Any) -> Basket:
    lines = tuple(BasketLine(f"SKU{i}", 1, a, **line) for i, a in enumerate(amounts))
    return Basket(channel, lines, "S1", shipping)


THRESHOLD = template(
    "threshold",
    tiers=[
        {"min_paid_fen": 10_000, "off_fen": 1_000},  # 满100减10
        {"min_paid_fen": 20_000, "off_fen": 3_000},  # 满200减30
        {"min_paid_fen": 50_000, "off_fen": 10_000},  # 满500减100
    ],
)


@pytest.mark.parametrize(
    ("spent", "off"),
    [
        (9_999, 0),
        (10_000, 1_000),
        (19_999, 1_000),
        (20_000, 3_000),
        (50_000, 10_000),
        (10**9, 10_000),
    ],
)
def test_threshold_takes_the_highest_tier_reached_at_its_edges(spent: int, off: int) -> None:
    got = THRESHOLD.benefit(basket(spent))
    assert got.off_fen == off
    assert (got.refused is None) == (off > 0)


def test_each_kind_on_a_basket() -> None:
    # 立减 20 yuan from 50 yuan; a basket of 30 yuan is refused, naming the spend
    fixed = template("fixed", off_fen=2_000, min_paid_fen=5_000)
    assert fixed.benefit(basket(5_000)).off_fen == 2_000
    refused = fixed.benefit(basket(2_999, 1))
    assert (refused.off_fen, refused.refused) == (0, "spend in scope 3000 < 5000")
    # 8.5折, at most 30 yuan off: 99.99 yuan -> 14.99 (rounded down); 1,000 yuan -> 30
    percent = template("percent", percent_off=15, cap_fen=3_000)
    assert percent.benefit(basket(9_999)).off_fen == 1_499
    assert percent.benefit(basket(100_000)).off_fen == 3_000
    # a free sample: one unit of SKU1 at its cheapest price in the basket
    sample = template("free_item", free_sku="SKU1")
    two = Basket("mini", (BasketLine("SKU1", 2, 3_000), BasketLine("SKU1", 1, 1_200)))
    assert sample.benefit(two).off_fen == 1_200
    assert sample.benefit(basket(5_000)).refused == "the basket holds no SKU1"
    # shipping up to 8 yuan, only online
    shipping = template("shipping", cap_fen=800, scope={"channels": ["mini", "tmall"]})
    assert shipping.benefit(basket(100, channel="mini", shipping=1_200)).off_fen == 800
    assert shipping.benefit(basket(100, channel="mini", shipping=500)).off_fen == 500
    assert shipping.benefit(basket(100, channel="pos", shipping=500)).off_fen == 0


def test_scope_counts_only_its_lines() -> None:
    # 满100减10 on the snacks category: 80 yuan of snacks and 50 of tea do not reach it
    snacks = template(
        "threshold", tiers=[{"min_paid_fen": 10_000, "off_fen": 1_000}],
        scope={"categories": ["snacks"], "stores": ["S1"]},
    )  # fmt: skip
    mixed = Basket(
        "pos",
        (BasketLine("A", 1, 8_000, category="snacks"), BasketLine("B", 1, 5_000, category="tea")),
        "S1",
    )
    assert snacks.benefit(mixed).off_fen == 0
    more = Basket("pos", (*mixed.lines, BasketLine("C", 2, 2_000, category="snacks")), "S1")
    assert snacks.benefit(more).off_fen == 1_000
    # another store's till: out of scope whatever the basket
    assert snacks.benefit(Basket("pos", more.lines, "S2")).refused == (
        "out of scope: channel or store"
    )


def test_an_exclusive_coupon_goes_alone_and_stacked_ones_never_pass_the_basket() -> None:
    alone = template("fixed", off_fen=500)
    with_others = template("fixed", off_fen=4_000, stacking="with_others")
    shipping = template("shipping", stacking="with_others")
    # an exclusive coupon beside another: both refused, saying which one
    both = combined([with_others, alone], basket(10_000))
    assert [b.off_fen for b in both] == [0, 0]
    assert both[0].refused == "T-fixed cannot be used with another coupon"
    # stackable ones add up, the goods capped at the goods' amount, shipping at the fee
    twice = [with_others, with_others.model_copy(update={"code": "T-2"}), shipping]
    got = combined(twice, basket(6_000, shipping=600))
    assert [b.off_fen for b in got] == [4_000, 2_000, 600]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "fixed"}, "off_fen is required for a fixed coupon"),
        ({"kind": "fixed", "off_fen": 100, "percent_off": 10}, "percent_off does not apply"),
        ({"kind": "percent", "percent_off": 100}, "less than or equal to 99"),
        ({"kind": "fixed", "off_fen": 5_000, "min_paid_fen": 5_000}, "less than min_paid_fen"),
        (
            {"kind": "threshold", "tiers": [
                {"min_paid_fen": 20_000, "off_fen": 3_000},
                {"min_paid_fen": 10_000, "off_fen": 1_000},
            ]},
            "tiers must rise",
        ),
        (
            {"kind": "threshold", "tiers": [{"min_paid_fen": 1_000, "off_fen": 1_000}]},
            "off_fen (1000) must be less than min_paid_fen (1000)",
        ),
        (
            {"kind": "shipping", "validity": {"starts_at": "2026-02-01T00:00:00",
                                              "ends_at": "2026-01-01T00:00:00"}},
            "ends_at must be after starts_at",
        ),
        (
            {"kind": "shipping", "validity": {**WINDOW, "days_from_issue": 30}},
            "either starts_at and ends_at, or days_from_issue",
        ),
        ({"kind": "shipping", "validity": {"days_from_issue": 0}}, "greater than or equal to 1"),
        ({"kind": "coupon"}, "kind"),
        ({"kind": "shipping", "cost_fen": -1}, "cost_fen"),
        ({"kind": "shipping", "colour": "red"}, "colour"),
    ],
)  # fmt: skip
def test_a_bad_template_is_refused_naming_the_field_and_rule(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        template(**fields)


def test_validity_from_issue_and_an_aware_window() -> None:
    issued = datetime(2026, 1, 31, 23, 30)
    relative = template("shipping", validity={"days_from_issue": 30}).validity
    assert relative.window(issued) == (issued, datetime(2026, 3, 2, 23, 30))
    # a window given in Beijing time is kept in UTC, as every stored time
    beijing = template(
        "shipping",
        validity={"starts_at": "2026-01-01T00:00:00+08:00", "ends_at": "2026-01-02T00:00:00+08:00"},
    ).validity
    assert beijing.window(issued) == (datetime(2025, 12, 31, 16), datetime(2026, 1, 1, 16))
    aware = datetime(2026, 1, 1, tzinfo=UTC)
    assert relative.window(aware)[1] - relative.window(aware)[0] == timedelta(days=30)


amounts = st.lists(st.integers(0, 10**7), min_size=1, max_size=8)
templates = st.sampled_from(
    [
        THRESHOLD,
        template("fixed", off_fen=2_000),
        template("fixed", off_fen=2_000, min_paid_fen=5_000),
        template("percent", percent_off=37),
        template("percent", percent_off=15, cap_fen=3_000),
        template("free_item", free_sku="SKU0"),
        template("shipping", cap_fen=800),
    ]
)


@settings(max_examples=300, deadline=None)
@given(templates, amounts, st.integers(0, 5_000))
def test_a_coupon_never_takes_off_more_than_it_applies_to(
    coupon: CouponTemplate, spent: list[int], shipping: int
) -> None:
    cart = basket(*spent, shipping=shipping)
    off = coupon.benefit(cart).off_fen
    limit = shipping if coupon.kind == "shipping" else cart.amount_fen
    assert 0 <= off <= limit


@settings(max_examples=300, deadline=None)
@given(templates, amounts, st.integers(0, 10**6))
def test_a_bigger_basket_never_gets_less(
    coupon: CouponTemplate, spent: list[int], more: int
) -> None:
    # one more yuan on the last line never lowers the benefit (free items aside: a pricier
    # unit of the free SKU is worth more, never less)
    bigger = [*spent[:-1], spent[-1] + more]
    assert coupon.benefit(basket(*bigger)).off_fen >= coupon.benefit(basket(*spent)).off_fen


@settings(max_examples=200, deadline=None)
@given(st.lists(templates, min_size=1, max_size=4), amounts, st.integers(0, 5_000))
def test_coupons_together_never_pass_the_basket(
    coupons: list[CouponTemplate], spent: list[int], shipping: int
) -> None:
    stacked = [c.model_copy(update={"stacking": "with_others"}) for c in coupons]
    cart = basket(*spent, shipping=shipping)
    got = combined(stacked, cart)
    goods = sum(b.off_fen for b, c in zip(got, stacked, strict=True) if c.kind != "shipping")
    fee = sum(b.off_fen for b, c in zip(got, stacked, strict=True) if c.kind == "shipping")
    assert 0 <= goods <= cart.amount_fen and 0 <= fee <= shipping
