"""Messages in Chromium, in Chinese: HQ opens Messages from the Marketing section,
composes a send, sees the preview (deferred out of quiet hours, one member skipped for
want of consent), clicks the skipped count and lands on the member list of exactly that
member, goes back and sends it. (The rest is tested in process:
`test_console_messages.py`.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from tests.console.conftest import Served, login, serve_seeded, shoot_and_copy
from tests.console.test_console_labels import Scanner, known_codes, page_strings
from tests.console.test_console_messages import late_evening_tomorrow, seed_messaging


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_seeded(tmp_path_factory.mktemp("messages"), "g-messages", seed_messaging) as s:
        yield s


def test_compose_preview_click_a_skip_reason_then_send_in_chinese(
    served: Served, page: Any
) -> None:
    m2 = served.ids["M2"]
    scanner = Scanner("zh", known_codes())
    # given an admin logged in, in Chinese
    login(page, served.base, served.keys["admin"])
    # when it opens Messages from the Marketing section
    link = page.locator("nav.side a[data-page=messages]")
    assert link.inner_text() == "消息触达"
    link.click()
    page.wait_for_load_state("load")
    # and composes an SMS to the members at risk, late tomorrow evening
    page.fill("#f-code", "SPRING-SMS")
    page.select_option("#f-channel", "sms")
    page.select_option("#f-target-kind", "stage")
    page.fill("#f-target", "at_risk")
    page.fill("#f-template", "T-1")
    page.fill("#f-params", "1=春季上新\n2=到店有礼")
    page.fill("#f-scheduled", late_evening_tomorrow())
    shoot_and_copy(page, "messages-compose-zh")
    page.click("#compose-submit")
    page.wait_for_load_state("load")
    # then the preview: one deferred to the end of the quiet hours, one skipped, no consent
    assert page.locator("#send-state").inner_text() == "待确认发送"
    assert page.locator("#fig-deferred").get_attribute("data-n") == "1"
    assert "09:00 (Asia/Shanghai)" in page.locator("#deferred-until").inner_text()
    row = page.locator("#skipped tr[data-reason=no_consent]")
    assert "未授权" in row.inner_text()
    # Send and Cancel side by side, Cancel in the console's secondary style
    send, cancel = page.locator("#send-send"), page.locator("#send-cancel")
    send_box, cancel_box = send.bounding_box(), cancel.bounding_box()
    assert send_box and cancel_box
    assert abs(send_box["y"] - cancel_box["y"]) < 2 and cancel_box["x"] > send_box["x"]
    style = "e => getComputedStyle(e).backgroundColor"
    assert cancel.evaluate(style) != send.evaluate(style)
    assert cancel.evaluate(style) == page.locator("#logout").evaluate(style)
    shoot_and_copy(page, "messages-preview-zh")
    assert not scanner.untranslated("\n".join(page_strings(page).values()))
    # when it clicks the skipped count
    row.locator("a.count").click()
    page.wait_for_load_state("load")
    # then the member list shows exactly that member
    assert page.locator("h1").inner_text() == "SPRING-SMS：未授权"
    assert page.locator("#list-summary").get_attribute("data-total") == "1"
    assert page.locator(f"tr[data-member='{m2}']").count() == 1
    shoot_and_copy(page, "messages-skipped-members-zh")
    # when it goes back and sends it
    page.click("#list-back")
    page.wait_for_load_state("load")
    page.click("#send-send")
    page.wait_for_load_state("load")
    assert page.locator("#send-state").inner_text() == "已确认发送"
    assert page.locator("#results").count() == 1
    shoot_and_copy(page, "messages-sent-zh")
    with served.engine.connect() as conn:
        status = conn.execute(text("SELECT status FROM sends WHERE code = 'SPRING-SMS'")).scalar()
    assert status == "planned"
