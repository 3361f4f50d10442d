"""The receipts review queue in Chromium, in Chinese: HQ opens it from the Marketing
section, opens the receipt over the auto-accept amount and accepts it; the page shows the
reward given and the queue's figures follow. (Everything else about the queue is tested in
process: `test_console_receipts.py`.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from tests.console.conftest import Served, login, serve_seeded, shoot_and_copy
from tests.console.receipt_support import seed
from tests.console.test_console_labels import Scanner, known_codes, page_strings


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_seeded(tmp_path_factory.mktemp("receipts"), "g-receipts", seed) as s:
        yield s


def test_hq_accepts_a_receipt_and_sees_its_reward_in_chinese(served: Served, page: Any) -> None:
    big = served.ids["big"]
    # given an admin logged in, in Chinese
    login(page, served.base, served.keys["admin"])
    # when it opens the receipts from the Marketing section
    link = page.locator("nav.side a[data-page=receipts]")
    assert link.inner_text() == "小票审核"
    link.click()
    page.wait_for_load_state("load")
    # then the pending receipts come first, with why each waits, and the day's figures
    shown = [r.get_attribute("data-status") for r in page.locator("#receipts tbody tr").all()]
    assert shown == ["pending", "pending", "pending", "accepted"]
    assert page.locator("#fig-pending").get_attribute("data-n") == "3"
    row = page.locator(f"#receipts tr[data-receipt='{big}']")
    assert "金额 ¥600.00 超过自动通过上限 ¥500.00" in row.inner_text()
    assert (
        "疑似重复"
        in page.locator(f"#receipts tr[data-receipt='{served.ids['near']}']").inner_text()
    )
    shoot_and_copy(page, "receipts-queue-zh")
    scanner = Scanner("zh", known_codes())
    assert not scanner.untranslated("\n".join(page_strings(page).values()))
    # when it opens the big receipt and accepts it
    row.locator("a.receipt-open").click()
    page.wait_for_load_state("load")
    assert page.locator("#receipt-tier").inner_text() == (
        "实付满 ¥300.00 · 400 积分 · 优惠券：春季满减"
    )
    shoot_and_copy(page, "receipts-pending-zh")
    page.click("#receipt-accept")
    page.wait_for_load_state("load")
    # then the page says so and shows the reward given
    assert page.locator("#receipt-status").inner_text() == "已通过"
    assert page.locator("#receipt-notice").inner_text() == "已通过，奖励如下。"
    assert page.locator("#reward-points").inner_text() == "400 积分"
    assert page.locator("#reward-coupon").inner_text() == "优惠券：春季满减"
    assert page.locator("#receipt-accept").count() == 0
    shoot_and_copy(page, "receipts-accepted-zh")
    assert not scanner.untranslated("\n".join(page_strings(page).values()))
    # and the database holds it, and the queue's figures follow
    with served.engine.connect() as conn:
        status, points, coupon = conn.execute(
            text("SELECT status, reward_points, coupon_id FROM receipts WHERE receipt_id = :r"),
            {"r": big},
        ).one()
    assert (status, points) == ("accepted", 400) and coupon is not None
    page.click("#receipt-back")
    page.wait_for_load_state("load")
    page.click("nav.side a[data-page=receipts]")
    page.wait_for_load_state("load")
    assert page.locator("#fig-pending").get_attribute("data-n") == "2"
    assert page.locator("#fig-accepted").get_attribute("data-n") == "2"
    assert re.search(
        r"\?status=accepted&decided=today$", page.locator("#fig-accepted").get_attribute("href")
    )
