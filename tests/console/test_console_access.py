"""Logging in and what each role may open, in the browser: the API's keys and roles hold
in the UI, a revoked key's session ends, a form without its CSRF token is refused."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from tests.console.conftest import Brand, login, shoot
from tests.console.segment_support import define, manual_tag, post

from siyu.auth.keys import revoke_key

HQ_ONLY = (
    "overview",
    "retention",
    "cohorts",
    "rfm",
    "funnel",
    "channels",
    "guides",
    # marketing (issue #17): the API's reports serve HQ only
    "coupons",
    "campaigns",
    "scenes",
    "lotteries",
    # HQ's guide pages (issue #19): the group's commission statements and guide classes
    "commission",
    "guide-classes",
)


def nav(page: Any) -> list[str]:
    return [a.get_attribute("data-page") for a in page.locator("nav.side a").all()]


def test_unauthenticated_pages_go_to_the_login(brand: Brand, page: Any) -> None:
    page.goto(f"{brand.base}/console/overview")
    assert page.url.endswith("/console/login")
    assert page.locator("#key").is_visible()


def test_a_bad_key_is_told_so(brand: Brand, page: Any) -> None:
    login(page, brand.base, "sy_not-a-key", "en")
    assert page.locator("#login-error").inner_text() == "The key is invalid, revoked or expired."
    login(page, brand.base, "sy_not-a-key", "zh")
    assert page.locator("#login-error").inner_text() == "密钥无效、已吊销或已过期。"


def test_channel_and_member_keys_cannot_log_in(brand: Brand, page: Any) -> None:
    for role in ("channel", "member"):
        login(page, brand.base, brand.keys[role], "en")
        assert page.url.endswith("/console/login"), role
        assert "cannot log in to the console" in page.locator("#login-error").inner_text()
    shoot(page, "refused-member-key")


def test_store_key_sees_its_stores_and_no_group_aggregates(brand: Brand, page: Any) -> None:
    # given a store key logged in
    login(page, brand.base, brand.keys["store"], "en")
    # then it lands on its stores, and the navigation offers no group-wide page (its
    # stores' receipts to review are its own)
    assert page.url.endswith("/console/stores")
    assert set(nav(page)) == {"stores", "members", "receipts", "my_guides"}
    shown = [r.get_attribute("data-store") for r in page.locator("#stores tbody tr").all()]
    assert shown == [brand.store_id]
    # and the sales shown are the store's own in the store
    sales = brand.one(
        "SELECT SUM(o.paid_fen) FROM orders o JOIN identities i ON i.identity_id = "
        "o.buyer_identity_id WHERE o.group_id = :g AND o.store_id = :s "
        "AND o.status <> 'cancelled' AND i.member_id IS NOT NULL",
        s=brand.store_id,
    )
    assert page.locator("#stores [data-sales]").get_attribute("data-sales") == str(sales)
    shoot(page, "store-stores")
    # when it asks for a group-wide page by URL: a 403 page
    for name in HQ_ONLY:
        response = page.goto(f"{brand.base}/console/{name}")
        assert response.status == 403, name
        assert page.locator("#error-title").inner_text() == "Forbidden"
    shoot(page, "store-forbidden-overview")
    # and another store's members are forbidden too
    other = brand.one(
        "SELECT MIN(store_id) FROM stores WHERE group_id = :g AND store_id <> :s", s=brand.store_id
    )
    assert page.goto(f"{brand.base}/console/stores/{other}").status == 403
    # while its own members list is the store's home members
    page.goto(f"{brand.base}/console/stores/{brand.store_id}")
    home = brand.one(
        "SELECT COUNT(*) FROM members WHERE group_id = :g AND status = 'active' "
        "AND home_store_id = :s",
        s=brand.store_id,
    )
    assert page.locator("#list-summary").get_attribute("data-total") == str(home)
    assert f"{home:,} members" in page.locator("#list-summary").inner_text()


def test_store_key_opens_its_members_and_not_others(brand: Brand, page: Any) -> None:
    mine = brand.one(
        "SELECT MIN(member_id) FROM members WHERE group_id = :g AND status = 'active' "
        "AND home_store_id = :s",
        s=brand.store_id,
    )
    stranger = brand.one(
        "SELECT MIN(m.member_id) FROM members m WHERE m.group_id = :g AND m.status = 'active' "
        "AND (m.home_store_id IS NULL OR m.home_store_id <> :s) AND NOT EXISTS (SELECT 1 FROM "
        "orders o WHERE o.group_id = :g AND o.member_id = m.member_id AND o.store_id = :s)",
        s=brand.store_id,
    )
    login(page, brand.base, brand.keys["store"], "en")
    assert page.goto(f"{brand.base}/console/members/{mine}").status == 200
    assert page.locator("#member-id").get_attribute("data-member") == str(mine)
    assert page.goto(f"{brand.base}/console/members/{stranger}").status == 403
    assert page.locator("#error-title").inner_text() == "Forbidden"


def test_guide_sees_own_members_and_tasks_on_a_phone(brand: Brand, phone: Any) -> None:
    # given a guide logged in on a phone-sized screen
    login(phone, brand.base, brand.keys["guide"], "zh")
    assert phone.url.endswith("/console/my-members")
    # then the navigation is folded behind the menu button, and opens
    assert not phone.locator("nav.side").is_visible()
    phone.click(".nav-toggle")
    assert phone.locator("nav.side").is_visible()
    assert set(nav(phone)) == {
        "my_members",
        "tasks",
        "my_commission",
        "my_class",
        "members",
        "segments",
        "tags",
    }
    # and the list holds exactly the guide's members (an order or an event with the guide)
    ids = {
        r[0]
        for r in brand.all(
            "SELECT member_id FROM orders WHERE group_id = :g AND guide_id = :d "
            "UNION SELECT member_id FROM events WHERE group_id = :g AND guide_id = :d",
            d=brand.guide_id,
        )
    }
    active = {
        r[0]
        for r in brand.all(
            "SELECT member_id FROM members WHERE group_id = :g AND status = 'active'"
        )
    }
    expected = ids & active
    rows = phone.locator("table.members tbody tr[data-member]").all()
    shown = {int(r.get_attribute("data-member")) for r in rows}
    assert shown and shown <= expected
    assert len(shown) == min(len(expected), 50)  # the first page
    assert f"共 {len(expected):,} 位会员" in phone.locator("#list-summary").inner_text()
    # and the table scrolls sideways inside the page instead of widening it
    width = phone.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390 + 1
    shoot(phone, "guide-my-members-phone")
    # when the guide opens the tasks: every task is one of the guide's members, in a
    # stage that calls for one
    phone.goto(f"{brand.base}/console/tasks?lang=en")
    tasks = phone.locator("article.task[data-task]").all()
    assert tasks
    for row in tasks:
        assert int(row.get_attribute("data-member")) in expected
        stage = row.locator("[data-stage]").get_attribute("data-stage")
        assert stage in ("at_risk", "lapsed") or stage.startswith("new_")
    shoot(phone, "guide-tasks-phone")
    # and a member who is not the guide's is forbidden, by URL too
    stranger = min(active - ids)
    assert phone.goto(f"{brand.base}/console/members/{stranger}").status == 403
    assert phone.goto(f"{brand.base}/console/overview").status == 403


def test_analyst_sees_masked_phones_and_admin_the_clear_ones(brand: Brand, page: Any) -> None:
    member = brand.one(
        "SELECT MIN(i.member_id) FROM identities i JOIN members m ON m.member_id = i.member_id "
        "WHERE i.group_id = :g AND i.type = 'phone' AND m.status = 'active'"
    )
    login(page, brand.base, brand.keys["analyst"], "en")
    page.goto(f"{brand.base}/console/members/{member}")
    phones = page.locator("#identities tr[data-type=phone]").all()
    assert phones
    for row in phones:
        assert row.get_attribute("data-masked") == "1"
        assert "****" in row.locator(".identity-value").inner_text()
    shoot(page, "analyst-member-masked")
    login(page, brand.base, brand.keys["admin"], "en")
    page.goto(f"{brand.base}/console/members/{member}")
    for row in page.locator("#identities tr[data-type=phone]").all():
        assert row.get_attribute("data-masked") == "0"
        assert row.locator(".identity-value").inner_text().startswith("+86")


def test_a_revoked_keys_session_ends_at_the_next_request(brand: Brand, page: Any) -> None:
    login(page, brand.base, brand.keys["to_revoke"], "en")
    assert page.url.endswith("/console/overview")
    revoke_key(brand.engine, brand.group, brand.key_ids["to_revoke"])
    page.goto(f"{brand.base}/console/overview")
    assert page.url.endswith("/console/login?ended=1")
    assert "session ended" in page.locator("#login-error").inner_text()


def test_logout_ends_the_session(brand: Brand, page: Any) -> None:
    login(page, brand.base, brand.keys["admin"], "en")
    page.click("#logout")
    page.wait_for_load_state("load")
    assert page.url.endswith("/console/login")
    page.goto(f"{brand.base}/console/overview")
    assert page.url.endswith("/console/login")


def test_a_post_without_its_csrf_token_is_refused(brand: Brand, page: Any) -> None:
    # a logged-in browser's cookies, sent by another page's form (no token in it)
    login(page, brand.base, brand.keys["admin"], "en")
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())
    for path, body in (
        ("/console/logout", b""),
        ("/console/members/search", b"type=member_id&value=1"),
        ("/console/login", b"key=" + brand.keys["admin"].encode()),
    ):
        request = urllib.request.Request(
            f"{brand.base}{path}", data=body, method="POST", headers={"Cookie": cookies}
        )
        try:
            urllib.request.urlopen(request, timeout=10).close()
            status = 200
        except urllib.error.HTTPError as error:
            status = error.code
            error.close()
        assert status == 403, path
    # and the session is still there: the refused logout did nothing
    page.goto(f"{brand.base}/console/overview")
    assert page.url.endswith("/console/overview")


def test_segment_and_tag_pages_need_the_apis_permissions(brand: Brand, page: Any) -> None:
    # given a segment and a tag (segments:read/preview/write/export, tags:read/write as the
    # API grants them: admin all; analyst read, preview, export; guide read; store none)
    define(brand, "t-access", {"version": 1, "rule": {"orders": {"count": {"gte": 5}}}})
    manual_tag(brand, "t-access", [])
    pages = {
        "segments": "/console/segments",
        "segment": "/console/segments/t-access",
        "builder": "/console/builder",
        "tags": "/console/tags",
        "tag": "/console/tags/t-access",
        "export": "/console/segments/t-access/members.csv",
    }
    opens = {
        "admin": set(pages),
        "analyst": set(pages),
        "guide": {"segments", "segment", "tags", "tag"},
        "store": set(),
    }
    for role, allowed in opens.items():
        page.context.clear_cookies()
        login(page, brand.base, brand.keys[role], "en")
        for name, path in pages.items():
            status = page.request.get(f"{brand.base}{path}").status
            assert status == (200 if name in allowed else 403), (role, name, status)
        # writes: evaluate, archive and save need segments:write (admins)
        if role != "admin":
            for path in (
                "/console/segments/t-access/evaluate",
                "/console/segments/t-access/archive",
            ):
                assert post(page, path, {}).status == 403, (role, path)
            save = {"action": "save", "c0.kind": "tag", "c0.tag": "t-access", "slug": "t-x"}
            assert post(page, "/console/builder", save).status == 403, role
        # tagging a member needs tags:write (admins and guides)
        member = brand.one(
            "SELECT MIN(member_id) FROM members WHERE group_id = :g AND status = 'active'"
        )
        answer = post(page, f"/console/members/{member}/tags", {"slug": "t-access"}).status
        assert answer == 403 if role in ("analyst", "store") else answer in (303, 403), role
    assert brand.one("SELECT COUNT(*) FROM segments WHERE slug = 't-x'") == 0
