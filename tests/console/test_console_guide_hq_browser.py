"""HQ's commission pages in Chromium, in Chinese, on the demo brand (its last full month's
commission accrued and released by `demo.guides`): the month's statement opens on that
month, a guide clicks through to its lines, whose sum is the guide's earned total, and an
order of a line opens its attribution."""

from __future__ import annotations

from typing import Any

from tests.console.conftest import Brand, login, shoot

from siyu.guides.commission_statements import statement


def test_hq_opens_the_months_commission_and_a_guides_lines_in_zh(brand: Brand, page: Any) -> None:
    assert brand.demo.guides is not None
    month = brand.demo.guides.month
    with brand.engine.connect() as conn:
        stated = statement(conn, brand.group, month, with_lines=False)
    # when an analyst opens the commission page, in Chinese
    login(page, brand.base, brand.keys["analyst"], "zh")
    page.click("nav.side a[data-page=commission]")
    page.wait_for_load_state("load")
    # then it opens on the demo's month, titled in Chinese, its total the ledger's
    assert page.locator("#cm-month").inner_text() == month
    assert page.locator("h1").inner_text().startswith("导购佣金")
    total = page.locator("#cm-total [data-field=commission_fen]")
    assert int(total.get_attribute("data-fen")) == stated.totals.commission_fen > 0
    assert page.locator("#cm-stores tbody tr[data-store]").count() >= 1
    shoot(page, "hq-commission-month")
    # when it clicks the first guide of the month (the highest earner)
    first = page.locator("#cm-guides tbody tr[data-guide]").first
    guide = first.get_attribute("data-guide")
    earned = int(first.locator("[data-field=commission_fen]").get_attribute("data-fen"))
    assert earned == stated.by_guide[guide].commission_fen
    first.locator("a.guide-link").click()
    page.wait_for_load_state("load")
    # then its lines show, their sum beside the statement's total, equal
    assert f"/console/commission/{guide}" in page.url
    assert "的佣金对账单" in page.locator("h1").inner_text()
    shown = int(page.locator("#cm-figures [data-field=commission_fen]").get_attribute("data-fen"))
    lines_sum = int(page.locator("#lines-sum").get_attribute("data-fen"))
    assert shown == lines_sum == earned
    assert page.locator("#cm-agree").inner_text() == "对账单净佣金等于其分录之和。"
    rows = page.locator("#cm-lines tbody tr[data-posting]")
    assert rows.count() == min(int(page.locator("#lines-summary").get_attribute("data-total")), 50)
    assert rows.first.locator("td").nth(1).inner_text() in ("计提", "解冻", "退款追回", "支付")
    shoot(page, "hq-commission-guide-lines")
    # and an order of its lines opens its attribution, in Chinese
    order = page.locator("#cm-lines a.order-link").first
    order_id = order.inner_text()
    order.click()
    page.wait_for_load_state("load")
    assert page.locator("#attr-title").inner_text() == f"订单 {order_id} 的归属"
    assert page.locator("#attribution").get_attribute("data-guide") == guide
    assert page.locator("#attr-basis").inner_text() in ("收银导购", "专属导购保护期", "分享触达")
    shoot(page, "hq-attribution")


def test_hq_sees_the_guides_classes_and_opens_one_class(brand: Brand, page: Any) -> None:
    assert brand.demo.guides is not None
    # when an admin opens the guide classes page, in Chinese
    login(page, brand.base, brand.keys["admin"], "zh")
    page.click("nav.side a[data-page=guide_classes]")
    page.wait_for_load_state("load")
    # then the counts per class are the demo's classification
    counts = {
        c: int(page.locator(f"#gc-counts tr[data-class={c}] [data-n]").get_attribute("data-n"))
        for c in "ABC"
    }
    assert counts == brand.demo.guides.classes
    assert page.locator("#gc-counts tr[data-class=A] [data-field=playbook]").inner_text()
    shoot(page, "hq-guide-classes")
    # when it clicks the largest class's count, the list holds that class's guides only
    largest = max(counts, key=lambda c: counts[c])
    page.locator(f"#gc-counts tr[data-class={largest}] a.count").click()
    page.wait_for_load_state("load")
    assert int(page.locator("#gc-summary").get_attribute("data-total")) == counts[largest]
    shown = {r.get_attribute("data-class") for r in page.locator("#gc-guides tbody tr").all()}
    assert shown == {largest}
