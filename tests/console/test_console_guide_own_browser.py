"""A guide's own commission and class on its phone (390 px, zh), in Chromium: the demo's
statement of its last full month with the month picker, its class with the metrics and
playbook, and a training item for its class marked done (the store holds the row)."""

from __future__ import annotations

from typing import Any

from tests.console.conftest import Brand, login, shoot

from siyu.guides.commission_statements import statement
from siyu.guides.training import parse_item, save_item


def test_a_guide_reads_its_commission_and_class_on_a_phone(brand: Brand, phone: Any) -> None:
    assert brand.demo.guides is not None
    month = brand.demo.guides.month
    with brand.engine.connect() as conn:
        expected = statement(conn, brand.group, month, guide_id=brand.guide_id)
    # when the guide opens its commission of the demo's month on a phone, in Chinese
    login(phone, brand.base, brand.keys["guide"], "zh")
    phone.goto(f"{brand.base}/console/my-commission?month={month}")
    # then the figures are its statement's and the page fits the phone
    assert phone.locator("h1").inner_text() == "我的佣金"
    earned = phone.locator("[data-figure=earned]")
    assert earned.get_attribute("data-fen") == str(expected.totals.commission_fen)
    payable = phone.locator("[data-figure=payable]").get_attribute("data-fen")
    assert payable == str(expected.totals.closing["cm_payable"])
    total = int(phone.locator("#line-count").get_attribute("data-total"))
    assert total == len(expected.lines) and total > 0
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390
    shoot(phone, "guide-own-commission")
    # when it picks the month before with the picker: that month's statement
    phone.locator("#month-picker a[rel=prev]").click()
    phone.wait_for_load_state("load")
    before = phone.locator("#month-picker").get_attribute("data-month")
    assert before is not None and before < month
    # when it opens its class
    phone.goto(f"{brand.base}/console/my-class")
    shown = phone.locator("#my-class").get_attribute("data-class")
    cls = brand.one(
        "SELECT guide_class FROM guide_classes WHERE group_id = :g AND guide_id = :gd "
        "ORDER BY period_end DESC LIMIT 1",
        gd=brand.guide_id,
    )
    assert shown == cls
    assert phone.locator("#class-metrics [data-metric=sales_fen]").inner_text().startswith("¥")
    assert phone.locator("#playbook").inner_text()
    # and a training item for its class is there to mark done
    item = {
        "code": "own-class",
        "title_zh": "本级工具",
        "title_en": "Class tools",
        "body": "先看示例",
        "for_class": cls,
    }
    save_item(brand.engine, brand.group, parse_item(item))
    phone.reload()
    card = phone.locator("#training [data-code=own-class]")
    assert card.get_attribute("data-done") == "0"
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390
    card.locator("[data-action=complete]").click()
    phone.wait_for_load_state("load")
    # then it reads as completed, and the store holds the row
    assert phone.locator("#training [data-code=own-class]").get_attribute("data-done") == "1"
    assert "本级工具" in phone.locator("#training-marked").inner_text()
    done = brand.one(
        "SELECT COUNT(*) FROM training_completions WHERE group_id = :g AND guide_id = :gd "
        "AND code = 'own-class'",
        gd=brand.guide_id,
    )
    assert done == 1
    shoot(phone, "guide-own-class")
