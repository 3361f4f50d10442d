"""Tags in the browser: the definitions with their holders, a tag's holders paged and
exported with its history, a guide seeing only its own members, and Member 360 showing
why a member holds each tag and which segments it is in, where HQ and a guide (on its own
members only) give and take manual tags."""

from __future__ import annotations

from typing import Any

import pytest
from tests.console.conftest import Brand, login, shoot
from tests.console.segment_support import (
    define,
    export,
    guide_members,
    ids_on,
    manual_tag,
    members_of,
    post,
)


@pytest.fixture(scope="module")
def holders(brand: Brand) -> dict[str, set[int]]:
    """A manual tag on every 5th active member, an imported one on every 11th."""
    active = sorted(
        members_of(brand, "SELECT member_id FROM members WHERE group_id = :g AND status = 'active'")
    )
    manual_tag(brand, "t-gift", active[::5])
    manual_tag(brand, "t-bulk", active[::11], kind="imported")
    manual_tag(brand, "t-free", [])
    return {"t-gift": set(active[::5]), "t-bulk": set(active[::11])}


def test_the_tag_list_shows_kind_owner_refresh_and_holders(
    brand: Brand, page: Any, holders: dict[str, set[int]]
) -> None:
    login(page, brand.base, brand.keys["analyst"], "en")
    page.click("nav.side a[data-page=tags]")
    page.wait_for_load_state("load")
    gift = page.locator("#tags tr[data-tag=t-gift]")
    assert gift.get_attribute("data-holders") == str(len(holders["t-gift"]))
    assert [c.inner_text() for c in gift.locator("td").all()][2:] == [
        "Manual",
        "key #1",
        "By hand",
        f"{len(holders['t-gift']):,}",
    ]
    imported = page.locator("#tags tr[data-tag=t-bulk] td").all()
    assert [imported[2].inner_text(), imported[4].inner_text()] == ["Imported", "On import"]
    shoot(page, "tags-list")


def test_a_tag_page_pages_exports_and_tells_the_history(
    brand: Brand, page: Any, holders: dict[str, set[int]]
) -> None:
    login(page, brand.base, brand.keys["admin"], "en")
    page.goto(f"{brand.base}/console/tags/t-gift")
    assert int(page.locator("#list-summary").get_attribute("data-total")) == len(holders["t-gift"])
    seen = ids_on(page)
    # each holder on the page with its value and who set it
    assert set(ids_on(page, "#holdings")) == set(seen)
    assert "key #1" in page.locator("#holdings tbody tr").first.inner_text()
    while page.locator("#page-next").count():
        page.click("#page-next")
        page.wait_for_load_state("load")
        seen += ids_on(page)
    assert len(seen) == len(set(seen)) and set(seen) == holders["t-gift"]
    page.goto(f"{brand.base}/console/tags/t-gift")
    assert {int(r["member_id"]) for r in export(page)} == holders["t-gift"]
    history = page.locator("#tag-history tbody tr[data-change]").all()
    assert len(history) == min(50, len(holders["t-gift"]))
    assert {r.get_attribute("data-change") for r in history} == {"enter"}
    assert history[0].locator("td").nth(2).inner_text() == "Entered"


def test_a_guide_sees_only_its_own_holders_and_history(
    brand: Brand, page: Any, holders: dict[str, set[int]]
) -> None:
    mine = guide_members(brand)
    expected = holders["t-gift"] & mine
    assert expected and holders["t-gift"] - mine
    login(page, brand.base, brand.keys["guide"], "en")
    page.goto(f"{brand.base}/console/tags/t-gift?per=200")
    assert int(page.locator("#list-summary").get_attribute("data-total")) == len(expected)
    assert set(ids_on(page)) <= expected
    history = {
        int(r.get_attribute("data-member"))
        for r in page.locator("#tag-history tr[data-member]").all()
    }
    assert history and history <= expected
    assert {int(r["member_id"]) for r in export(page)} == expected


def test_member_360_tells_why_and_hq_gives_and_takes_a_manual_tag(
    brand: Brand, page: Any, holders: dict[str, set[int]]
) -> None:
    define(brand, "t-once", {"version": 1, "rule": {"orders": {"count": {"gte": 1}}}})
    member = min(holders["t-gift"] & holders["t-bulk"])
    login(page, brand.base, brand.keys["admin"], "en")
    page.goto(f"{brand.base}/console/members/{member}")
    # why it holds each tag: the kind, who set it, since when
    gift = page.locator("#member-tags tr[data-tag=t-gift]")
    assert gift.get_attribute("data-kind") == "manual"
    assert "key #1" in gift.inner_text() and "Manual" in gift.inner_text()
    assert page.locator("#member-tags tr[data-tag=t-bulk]").count() == 1
    assert page.locator("#member-segments li[data-segment=t-once]").count() == 1
    # only manual tags can be removed here
    assert page.locator("[data-remove=t-bulk]").count() == 0
    # when HQ gives a manual tag it did not hold: it holds it, history says by this key
    page.select_option("#give-tag-slug", "t-free")
    page.fill("#give-tag input[name=value]", "spring")
    page.click("#give-tag-submit")
    page.wait_for_load_state("load")
    assert page.locator("#tag-done").inner_text() == "Tag t-free added."
    free = page.locator("#member-tags tr[data-tag=t-free]")
    assert free.locator("[data-value]").get_attribute("data-value") == "spring"
    key = brand.key_ids["admin"]
    assert free.get_attribute("data-set-by") == f"key:{key}"
    # and takes it away
    page.click("[data-remove=t-free]")
    page.wait_for_load_state("load")
    assert page.locator("#tag-done").inner_text() == "Tag t-free removed."
    assert page.locator("#member-tags tr[data-tag=t-free]").count() == 0
    changes = brand.all(
        "SELECT h.change, h.by FROM member_tag_history h JOIN tags t ON t.tag_id = h.tag_id "
        "WHERE h.group_id = :g AND t.slug = 't-free' AND h.member_id = :m ORDER BY h.change_id",
        m=member,
    )
    assert [tuple(c) for c in changes] == [("enter", f"key:{key}"), ("leave", f"key:{key}")]
    # an automatic-style refusal: an imported tag cannot be given by hand
    response = post(page, f"/console/members/{member}/tags", {"slug": "t-bulk"})
    assert response.status == 303
    page.goto(f"{brand.base}{response.headers['location']}")
    assert "only manual tags are set here" in page.locator("#tag-error").inner_text()
    shoot(page, "member-tags")


def test_a_guide_tags_its_own_members_only_and_an_analyst_none(
    brand: Brand, page: Any, holders: dict[str, set[int]]
) -> None:
    mine = guide_members(brand)
    active = members_of(
        brand, "SELECT member_id FROM members WHERE group_id = :g AND status = 'active'"
    )
    own, other = min(mine), min(active - mine)
    login(page, brand.base, brand.keys["guide"], "zh")
    page.goto(f"{brand.base}/console/members/{own}")
    page.select_option("#give-tag-slug", "t-free")
    page.click("#give-tag-submit")
    page.wait_for_load_state("load")
    assert page.locator("#member-tags tr[data-tag=t-free]").count() == 1
    # another guide's member: refused, nothing written
    assert post(page, f"/console/members/{other}/tags", {"slug": "t-free"}).status == 403
    held = "SELECT COUNT(*) FROM member_tags mt JOIN tags t ON t.tag_id = mt.tag_id "
    held += "WHERE mt.group_id = :g AND t.slug = 't-free' AND mt.member_id = :m"
    assert brand.one(held, m=other) == 0
    # an analyst reads tags but gives none
    page.context.clear_cookies()
    login(page, brand.base, brand.keys["analyst"], "en")
    page.goto(f"{brand.base}/console/members/{own}")
    assert page.locator("#member-tags tr[data-tag=t-free]").count() == 1
    assert page.locator("#give-tag").count() == 0
    assert post(page, f"/console/members/{own}/tags/t-free/remove", {}).status == 403
    assert brand.one(held, m=own) == 1
    # a store key has neither tags nor segments: Member 360 shows no such section
    page.context.clear_cookies()
    store_member = brand.one(
        "SELECT MIN(member_id) FROM members WHERE group_id = :g AND status = 'active' "
        "AND home_store_id = :s",
        s=brand.store_id,
    )
    login(page, brand.base, brand.keys["store"], "en")
    page.goto(f"{brand.base}/console/members/{store_member}")
    assert page.locator("#member-tags").count() == 0
    assert page.locator("#member-segments").count() == 0
    assert page.goto(f"{brand.base}/console/tags").status == 403
    # nor may it reach a tag's holders through its store's member list or its export
    by_tag = f"/console/stores/{brand.store_id}?tag=t-free"
    assert page.goto(f"{brand.base}{by_tag}").status == 403
    assert page.request.get(f"{brand.base}/console/members.csv?tag=t-free").status == 403
