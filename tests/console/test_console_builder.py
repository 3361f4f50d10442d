"""The segment builder in the browser: a membership manager composes realistic rules from
the form (no JSON typed), the preview's size is `evaluate.preview_rule`'s for the same
JSON, a refusal names the row and the field, saving defines the segment and then a new
version, a member list's criteria open as a rule; analysts preview but cannot save."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.console.conftest import Brand, login, shoot
from tests.console.segment_support import define, manual_tag, members_of, post, preview_count

from siyu.console import builder_form as bf
from siyu.segments import stored


def row(page: Any, i: int, kind: str, **fields: str) -> None:
    """Fill condition row `i`: its kind, then its fields (selects chosen, inputs typed)."""
    page.select_option(f"select[name='c{i}.kind']", kind)
    for name, value in fields.items():
        target = page.locator(f"[name='c{i}.{name}']")
        tag = target.evaluate("el => el.tagName")
        if tag == "SELECT":
            target.select_option(value)
        elif name == "not":
            target.check()
        else:
            target.fill(value)


def preview(page: Any) -> tuple[int, dict[str, Any]]:
    page.click("#preview")
    page.wait_for_load_state("load")
    size = int(page.locator("#preview-result").get_attribute("data-size"))
    return size, json.loads(page.locator("#rule-json").input_value())


def save_list_as_segment(page: Any, url: str, link: str) -> tuple[int, int, dict[str, Any], str]:
    """Open `url`, follow the count `link` to its member list, save the list as a segment:
    the list's total, the builder's previewed size and rule, and the list's URL."""
    page.goto(url)
    page.locator(link).first.click()
    page.wait_for_load_state("load")
    listed_at = page.url
    listed = int(page.locator("#list-summary").get_attribute("data-total"))
    page.click("#save-as-segment")
    page.wait_for_load_state("load")
    size, rule = preview(page)
    return listed, size, rule, listed_at


@pytest.fixture(scope="module")
def vip(brand: Brand) -> set[int]:
    """A manual tag on every 7th active member, and a segment of big spenders."""
    members = sorted(
        members_of(brand, "SELECT member_id FROM members WHERE group_id = :g AND status = 'active'")
    )[::7]
    manual_tag(brand, "t-club", members)
    define(brand, "t-big", {"version": 1, "rule": {"orders": {"spend_fen": {"gte": 100000}}}})
    return set(members)


def test_orders_and_lapsed_rule_previews_as_the_service_does(brand: Brand, page: Any) -> None:
    # given the admin in the builder
    login(page, brand.base, brand.keys["admin"], "en")
    page.goto(f"{brand.base}/console/builder")
    # when it composes "at least 3 orders and no order in the last 60 days"
    row(page, 0, "orders", orders_measure="count", orders_op="gte", orders_n="3")
    row(page, 1, "last_order", last_dir="older", last_days="60")
    size, rule = preview(page)
    # then the JSON is the rule it said, and the size is preview_rule's for that JSON
    assert rule == {
        "version": 1,
        "rule": {
            "all": [
                {"orders": {"count": {"gte": 3}}},
                {"last_order": {"more_than_days": 60}},
            ]
        },
    }
    assert size == preview_count(brand, rule) > 0
    assert page.locator("#preview-sample tbody tr[data-member]").count() == min(size, 20)
    text = page.locator("#rule-text").inner_text()
    assert "Orders at any time: orders ≥ 3" in text
    assert "Last order more than 60 days ago" in text
    shoot(page, "builder-preview")
    # when the last order is scoped to the till: the members whose last till order is
    # older, who may have bought online since
    row(page, 1, "last_order", last_dir="older", last_days="60", last_channel="pos")
    scoped, rule = preview(page)
    assert rule["rule"]["all"][1] == {"last_order": {"more_than_days": 60, "channel": ["pos"]}}
    assert scoped == preview_count(brand, rule) > 0
    assert (
        "Last order more than 60 days ago (sales channels: "
        in page.locator("#rule-text").inner_text()
    )


def test_tag_and_not_segment_rule_saved_then_versioned(
    brand: Brand, page: Any, vip: set[int]
) -> None:
    big = members_of(
        brand,
        "SELECT sm.member_id FROM segment_members sm JOIN segments s ON "
        "s.segment_id = sm.segment_id WHERE s.group_id = :g AND s.slug = 't-big'",
    )
    login(page, brand.base, brand.keys["admin"], "zh")
    page.goto(f"{brand.base}/console/builder")
    # "holds tag t-club and is not in segment t-big"
    row(page, 0, "tag", tag="t-club")
    row(page, 1, "segment", segment="t-big", **{"not": "1"})
    size, rule = preview(page)
    assert rule["rule"] == {"all": [{"tag": "t-club"}, {"not": {"segment": "t-big"}}]}
    assert size == preview_count(brand, rule) == len(vip - big) > 0
    shoot(page, "builder-preview-zh")  # for a person to read the zh builder
    # when it saves: the segment is defined with that rule, and its page opens
    page.fill("#seg-slug", "t-club-small")
    page.fill("#seg-name-zh", "小额贵宾")
    page.fill("#seg-name-en", "Small VIPs")
    page.click("#save")
    page.wait_for_load_state("load")
    assert page.url.split("?")[0].endswith("/console/segments/t-club-small")
    with brand.engine.connect() as conn:
        saved = stored.get_segment(conn, brand.group, "t-club-small")
    assert saved.rule == rule and saved.version == 1 and saved.owner.startswith("key:")
    # when it edits the rule (any instead of all) from the segment's page: version 2
    page.click("#edit-segment")
    page.wait_for_load_state("load")
    assert page.locator("select[name='c0.tag']").input_value() == "t-club"
    assert page.locator("input[name='c1.not']").is_checked()
    page.select_option("#combine", "any")
    page.click("#save")
    page.wait_for_load_state("load")
    with brand.engine.connect() as conn:
        versions = stored.segment_versions_of(conn, brand.group, "t-club-small")
    assert [v.version for v in versions] == [1, 2]
    assert versions[1].rule["rule"] == {"any": [{"tag": "t-club"}, {"not": {"segment": "t-big"}}]}
    assert page.locator("#versions tr[data-version]").count() == 2
    # saving a taken slug is refused beside the slug field
    page.goto(f"{brand.base}/console/builder?lang=en")
    row(page, 0, "tag", tag="t-club")
    page.fill("#seg-slug", "t-club-small")
    page.fill("#seg-name-zh", "重复")
    page.fill("#seg-name-en", "Again")
    page.click("#save")
    page.wait_for_load_state("load")
    assert "already a segment" in page.locator("span[data-field=slug]").inner_text()


def test_a_refused_value_is_shown_naming_the_row_and_field(brand: Brand, page: Any) -> None:
    login(page, brand.base, brand.keys["admin"], "en")
    page.goto(f"{brand.base}/console/builder")
    # a number that is not one, in row 2
    row(page, 0, "event", event_type="view")
    row(page, 1, "orders", orders_measure="count", orders_op="gte", orders_n="three")
    page.click("#preview")
    page.wait_for_load_state("load")
    error = page.locator("#builder-error").inner_text()
    assert error.startswith("Condition 2 · Number or amount (yuan): c1.orders_n:")
    assert "whole number" in error
    assert page.locator("#cond-1 .row-error").is_visible()
    # the rule language's own refusal (between needs two values) names its JSON path
    page.goto(f"{brand.base}/console/builder")
    row(page, 0, "attribute", attr="registered_days_ago", attr_op="between", attr_value="30")
    page.click("#preview")
    page.wait_for_load_state("load")
    assert page.locator("#builder-error").inner_text() == (
        "Condition 1: rule.all[0].value: must be a list [low, high]"
    )
    # and a JSON edited by hand that is not JSON
    assert page.locator("details.json").get_attribute("open") is not None
    page.check("#use-json")
    page.fill("#rule-json", '{"version": 1, "rule": ')
    page.click("#preview")
    page.wait_for_load_state("load")
    assert "Rule JSON: rule_json: is not JSON" in page.locator("#builder-error").inner_text()
    shoot(page, "builder-refused")
    # while a JSON that is a rule previews (and fills the rows it can)
    page.check("#use-json")
    page.fill("#rule-json", '{"version": 1, "rule": {"last_order": {"within_days": 30}}}')
    size, rule = preview(page)
    assert size == preview_count(brand, rule) > 0
    assert page.locator("select[name='c0.kind']").input_value() == "last_order"


def test_a_stage_list_saves_as_a_segment_of_the_same_members(brand: Brand, page: Any) -> None:
    stage = brand.one(
        "SELECT stage FROM member_stages WHERE group_id = :g GROUP BY stage "
        "ORDER BY COUNT(*) DESC LIMIT 1"
    )
    login(page, brand.base, brand.keys["admin"], "en")
    page.goto(f"{brand.base}/console/members?stage={stage}")
    listed = int(page.locator("#list-summary").get_attribute("data-total"))
    page.click("#save-as-segment")
    page.wait_for_load_state("load")
    assert page.locator("select[name='c0.kind']").input_value() == "attribute"
    assert page.locator("select[name='c0.attr']").input_value() == "stage"
    size, rule = preview(page)
    assert rule["rule"] == {"all": [{"attribute": "stage", "op": "eq", "value": stage}]}
    assert size == listed
    # a list whose criteria have no rule (a guide's members) offers no such link
    page.goto(f"{brand.base}/console/guides/{brand.guide_id}")
    assert page.locator("#save-as-segment").count() == 0


def test_an_analyst_previews_but_cannot_save(brand: Brand, page: Any) -> None:
    login(page, brand.base, brand.keys["analyst"], "en")
    page.goto(f"{brand.base}/console/builder")
    row(page, 0, "event_then_not", etn_type="add_to_cart", etn_hours="24", etn_since="30")
    size, rule = preview(page)
    assert rule["rule"]["all"][0]["event_then_not"]["not_followed_by"] == {"order": {}}
    assert size == preview_count(brand, rule)
    # the sample's phones are masked for an analyst
    for cell in page.locator("#preview-sample td.phone").all():
        assert cell.get_attribute("data-masked") == "1"
    assert page.locator("#save").count() == 0
    assert page.locator("#no-save").is_visible()
    fields = {"action": "save", "c0.kind": "tag", "c0.tag": "t-club", "slug": "t-nope"}
    fields.update(name_zh="不", name_en="No", refresh="nightly")
    assert post(page, "/console/builder", fields).status == 403
    assert brand.one("SELECT COUNT(*) FROM segments WHERE slug = 't-nope'") == 0


@pytest.mark.parametrize(
    "rule",
    [
        {"orders": {"brand_id": ["B1", "B2"], "channel": ["pos"], "store_id": ["S9"]}},
        {"orders": {"within_days": 90, "store_id": ["S1"], "spend_fen": {"gte": 12345}}},
        {"not": {"orders": {"brand_id": ["B1"], "count": {"lte": 0}}}},
        {"event": {"type": "view", "sku": ["SKU-1", "SKU-2"], "within_days": 30}},
        {"event": {"type": "add_to_cart", "sku": ["SKU-1"], "count": {"gte": 3}}},
        {"last_order": {"more_than_days": 60, "channel": ["pos"], "store_id": ["S1", "S2"]}},
        {"last_order": {"within_days": 30, "brand_id": ["B2"]}},
        {"orders": {"guide_id": ["G1", "G2"], "within_days": 30}},
        {"last_order": {"more_than_days": 90, "guide_id": ["G1"]}},
        {"event": {"type": "view", "channel": ["miniprogram", "wecom"], "within_days": 7}},
    ],
)
def test_a_scoped_orders_or_sku_event_rule_opens_as_the_same_rows(rule: dict[str, Any]) -> None:
    # given a stored rule of one condition: the form shows it, and the form says it back
    document = {"version": 1, "rule": {"all": [rule]}}
    form = bf.from_rule(document)
    assert bf.to_rule(form) == document


def test_orders_scoped_to_brand_channel_and_stores_and_an_sku_event_round_trip(
    brand: Brand, page: Any
) -> None:
    # given a member with two orders of a brand at the till of one store, who viewed a
    # SKU: that store and another of the brand's, that SKU and another
    member, brand_id, store = brand.all(
        "SELECT o.member_id, o.brand_id, o.store_id FROM orders o WHERE o.group_id = :g "
        "AND o.channel = 'pos' AND o.status <> 'cancelled' AND o.store_id IS NOT NULL "
        "AND EXISTS (SELECT 1 FROM events e WHERE e.group_id = :g AND e.member_id = "
        "o.member_id AND e.type = 'view' AND e.sku IS NOT NULL) "
        "GROUP BY o.member_id, o.brand_id, o.store_id HAVING COUNT(*) >= 2 "
        "ORDER BY o.member_id LIMIT 1"
    )[0]
    other = brand.one(
        "SELECT MIN(store_id) FROM orders WHERE group_id = :g AND brand_id = :b "
        "AND channel = 'pos' AND store_id <> :s",
        b=brand_id,
        s=store,
    )
    stores = [store, other]
    viewed = brand.one(
        "SELECT MIN(sku) FROM events WHERE group_id = :g AND member_id = :m AND type = 'view'",
        m=member,
    )
    skus = [viewed, brand.one("SELECT MIN(sku) FROM products WHERE sku <> :k", k=viewed)]
    assert len(stores) == 2 and len(skus) == 2
    # when the admin composes "2+ orders of the brand at the till in those stores, and
    # viewed one of those SKUs"
    login(page, brand.base, brand.keys["admin"], "en")
    page.goto(f"{brand.base}/console/builder")
    row(
        page,
        0,
        "orders",
        orders_measure="count",
        orders_op="gte",
        orders_n="2",
        orders_brand=brand_id,
        orders_channel="pos",
        orders_store=f"{stores[0]}，{stores[1]}",  # a Chinese comma, as typed on a zh keyboard
    )
    row(page, 1, "event", event_type="view", event_sku=", ".join(skus))
    size, rule = preview(page)
    # then the JSON scopes the orders and names the SKUs, and the size is the service's
    assert rule["rule"]["all"] == [
        {
            "orders": {
                "brand_id": [brand_id],
                "channel": ["pos"],
                "store_id": stores,
                "count": {"gte": 2},
            }
        },
        {"event": {"type": "view", "sku": skus}},
    ]
    assert size == preview_count(brand, rule) > 0
    text = page.locator("#rule-text").inner_text()
    assert f"brand: {brand_id}" in text and f"store: {stores[0]}, {stores[1]}" in text
    assert f"SKU {skus[0]}, {skus[1]}" in text
    # a narrower rule than the brand's orders alone: the scope was applied
    unscoped = {"version": 1, "rule": {"orders": {"count": {"gte": 2}}}}
    assert size < preview_count(brand, unscoped)
    # when it is saved and opened again: the same choices in the rows, no JSON-only note
    page.fill("#seg-slug", "t-scoped")
    page.fill("#seg-name-zh", "门店常客")
    page.fill("#seg-name-en", "Store regulars")
    page.click("#save")
    page.wait_for_load_state("load")
    page.goto(f"{brand.base}/console/builder?slug=t-scoped")
    assert page.locator("#builder-note").count() == 0
    assert page.locator("[name='c0.orders_brand']").input_value() == brand_id
    assert page.locator("[name='c0.orders_channel']").input_value() == "pos"
    assert page.locator("[name='c0.orders_store']").input_value() == ", ".join(stores)
    assert page.locator("[name='c0.orders_n']").input_value() == "2"
    assert page.locator("[name='c1.event_sku']").input_value() == ", ".join(skus)
    # and previewing it unchanged composes the saved rule again
    again, composed = preview(page)
    assert composed == rule and again == size


def test_store_and_channel_counts_save_as_segments_of_the_members_they_counted(
    brand: Brand, page: Any
) -> None:
    login(page, brand.base, brand.keys["admin"], "en")
    # given the stores page: a store's buyers (an order at the store, to the snapshot)
    page.goto(f"{brand.base}/console/stores")
    store = page.locator("#stores tr[data-store]").first.get_attribute("data-store")
    page.click(f"#stores tr[data-store='{store}'] td[data-buyers] a")
    page.wait_for_load_state("load")
    listed = int(page.locator("#list-summary").get_attribute("data-total"))
    assert listed > 0
    # when the list is saved as a segment: one orders row at that store
    page.click("#save-as-segment")
    page.wait_for_load_state("load")
    assert page.locator("select[name='c0.kind']").input_value() == "orders"
    assert page.locator("[name='c0.orders_store']").input_value() == store
    # and the builder says the snapshot's time bound is not kept
    assert "counted the data up to" in page.locator("#builder-note").inner_text()
    size, rule = preview(page)
    assert rule["rule"] == {"all": [{"orders": {"store_id": [store], "count": {"gte": 1}}}]}
    # then it previews the members the list counted, and once saved and evaluated holds them
    assert size == listed
    page.fill("#seg-slug", "t-shop-buyers")
    page.fill("#seg-name-zh", "门店顾客")
    page.fill("#seg-name-en", "Shop buyers")
    page.click("#save")
    page.wait_for_load_state("load")
    page.click("#evaluate-now")
    page.wait_for_load_state("load")
    held = members_of(
        brand,
        "SELECT sm.member_id FROM segment_members sm JOIN segments s ON "
        "s.segment_id = sm.segment_id WHERE s.group_id = :g AND s.slug = 't-shop-buyers'",
    )
    bought = members_of(
        brand,
        "SELECT m.member_id FROM members m WHERE m.group_id = :g AND m.status = 'active' "
        "AND EXISTS (SELECT 1 FROM orders o WHERE o.group_id = :g AND o.member_id = "
        "m.member_id AND o.status <> 'cancelled' AND o.store_id = :s)",
        s=store,
    )
    assert held == bought and len(held) == listed
    # given the channel mix: a channel's members (an order in the channel, to the snapshot)
    page.goto(f"{brand.base}/console/channels")
    page.click("#channels tr[data-channel=tmall] td[data-members] a")
    page.wait_for_load_state("load")
    listed = int(page.locator("#list-summary").get_attribute("data-total"))
    page.click("#save-as-segment")
    page.wait_for_load_state("load")
    size, rule = preview(page)
    assert rule["rule"] == {"all": [{"orders": {"channel": ["tmall"], "count": {"gte": 1}}}]}
    assert size == listed > 0
    # given a store's home members: the members whose home store it is
    link = f"#stores tr[data-store='{store}'] td[data-members] a"
    listed, size, rule, _ = save_list_as_segment(page, f"{brand.base}/console/stores", link)
    home = {"attribute": "home_store_id", "op": "eq", "value": store}
    assert rule["rule"] == {"all": [home]}
    assert size == listed > 0
    # given a guide's sales: the members with an order the guide sold
    page.goto(f"{brand.base}/console/guides")
    guide = page.locator("#guides tr[data-guide]").first.get_attribute("data-guide")
    link = f"#guides tr[data-guide='{guide}'] td[data-members] a"
    listed, size, rule, _ = save_list_as_segment(page, f"{brand.base}/console/guides", link)
    assert rule["rule"] == {"all": [{"orders": {"guide_id": [guide], "count": {"gte": 1}}}]}
    assert size == listed > 0
    assert f"guide: {guide}" in page.locator("#rule-text").inner_text()
    # given a funnel step: the members with an event of the step in the channel
    listed, size, rule, url = save_list_as_segment(
        page, f"{brand.base}/console/funnel", "tr[data-step] td[data-members] a"
    )
    ((condition,),) = rule["rule"].values()
    assert set(condition["event"]) == {"type", "channel"}
    assert f"step={condition['event']['type']}" in url
    assert f"funnel={condition['event']['channel'][0]}" in url
    assert size == listed > 0
    # a cohort's list has no rule (a fixed month, not a window) and offers no such link
    page.goto(f"{brand.base}/console/cohorts")
    page.locator("tr[data-cohort] td[data-members] a").first.click()
    page.wait_for_load_state("load")
    assert "/console/members?" in page.url
    assert page.locator("#save-as-segment").count() == 0
