"""Tags in the browser: the definitions with their holders, a tag's holders paged and
exported with its history, a guide seeing only its own members, and Member 360 showing
why a member holds each tag and which segments it is in, where HQ and a guide (on its own
members only) give and take manual tags."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
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

from siyu.analytics.engines import connect
from siyu.analytics.warehouse import open_warehouse
from siyu.segments import evaluate as runs
from siyu.segments import tags as tag_service


@pytest.fixture(scope="module")
def holders(brand: Brand) -> dict[str, set[int]]:
    """A manual tag on every 5th active member, an imported one on every 11th."""
    active = sorted(
        members_of(brand, "SELECT member_id FROM members WHERE group_id = :g AND status = 'active'")
    )
    manual_tag(brand, "t-gift", active[::5])
    manual_tag(brand, "t-bulk", active[::11], kind="imported")
    manual_tag(brand, "t-unused", [])
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
    page.select_option("#give-tag-slug", "t-unused")
    page.fill("#give-tag input[name=value]", "spring")
    page.click("#give-tag-submit")
    page.wait_for_load_state("load")
    assert page.locator("#tag-done").inner_text() == "Tag t-unused added."
    free = page.locator("#member-tags tr[data-tag=t-unused]")
    assert free.locator("[data-value]").get_attribute("data-value") == "spring"
    key = brand.key_ids["admin"]
    assert free.get_attribute("data-set-by") == f"key:{key}"
    # and takes it away
    page.click("[data-remove=t-unused]")
    page.wait_for_load_state("load")
    assert page.locator("#tag-done").inner_text() == "Tag t-unused removed."
    assert page.locator("#member-tags tr[data-tag=t-unused]").count() == 0
    changes = brand.all(
        "SELECT h.change, h.by FROM member_tag_history h JOIN tags t ON t.tag_id = h.tag_id "
        "WHERE h.group_id = :g AND t.slug = 't-unused' AND h.member_id = :m ORDER BY h.change_id",
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
    page.select_option("#give-tag-slug", "t-unused")
    page.click("#give-tag-submit")
    page.wait_for_load_state("load")
    assert page.locator("#member-tags tr[data-tag=t-unused]").count() == 1
    # another guide's member: refused, nothing written
    assert post(page, f"/console/members/{other}/tags", {"slug": "t-unused"}).status == 403
    held = "SELECT COUNT(*) FROM member_tags mt JOIN tags t ON t.tag_id = mt.tag_id "
    held += "WHERE mt.group_id = :g AND t.slug = 't-unused' AND mt.member_id = :m"
    assert brand.one(held, m=other) == 0
    # an analyst reads tags but gives none
    page.context.clear_cookies()
    login(page, brand.base, brand.keys["analyst"], "en")
    page.goto(f"{brand.base}/console/members/{own}")
    assert page.locator("#member-tags tr[data-tag=t-unused]").count() == 1
    assert page.locator("#give-tag").count() == 0
    assert post(page, f"/console/members/{own}/tags/t-unused/remove", {}).status == 403
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
    by_tag = f"/console/stores/{brand.store_id}?tag=t-unused"
    assert page.goto(f"{brand.base}{by_tag}").status == 403
    assert page.request.get(f"{brand.base}/console/members.csv?tag=t-unused").status == 403


def evaluate_all(brand: Brand, slugs: list[str]) -> None:
    """Evaluate the segments on the demo's warehouse, in one run."""
    backend = connect("duckdb")
    try:
        wh = open_warehouse(backend, Path(brand.demo.settings.warehouse), brand.group)
        runs.evaluate_segments(brand.engine, backend, wh, slugs, None, "manual")
    finally:
        backend.disconnect()


def tag_row(brand: Brand, slug: str) -> Any:
    rows = brand.all(
        "SELECT slug, name_zh, name_en, kind, owner, refresh, definition FROM tags "
        "WHERE group_id = :g AND slug = :s",
        s=slug,
    )
    return rows[0] if rows else None


def define_form(page: Any, **fields: str) -> None:
    """Fill the tags list's definition form (selects chosen, inputs typed) and submit it."""
    for name, value in fields.items():
        target = page.locator(f"#define-tag [name={name}]")
        if target.evaluate("el => el.tagName") == "SELECT":
            target.select_option(value)
        else:
            target.fill(value)
    page.click("#define-submit")
    page.wait_for_load_state("load")


def test_hq_defines_manual_and_imported_tags_and_a_refusal_names_the_field(
    brand: Brand, page: Any, holders: dict[str, set[int]]
) -> None:
    # given an admin on the tags list, with the form that defines a tag
    login(page, brand.base, brand.keys["admin"], "en")
    page.goto(f"{brand.base}/console/tags")
    assert page.locator("#define-tag").is_visible()
    assert page.locator("#tf-owner").input_value() == f"key:{brand.key_ids['admin']}"
    # the kinds offered are manual and imported; automatic ones are the system's
    kinds = [o.get_attribute("value") for o in page.locator("#tf-kind option").all()]
    assert kinds == ["manual", "imported"]
    # when the slug breaks the service's rule: refused beside the slug, nothing written
    define_form(page, slug="Vegan Fans", name_zh="素食", name_en="Vegan")
    assert page.locator("#tag-form-error").get_attribute("data-field") == "slug"
    assert "must match" in page.locator("span.field-error[data-field=slug]").inner_text()
    assert page.locator("#tf-name_zh").input_value() == "素食"  # the form keeps what was typed
    # a name too long for the service: refused naming the name, the slug not taken
    define_form(page, slug="t-vegan", name_zh="素" * 129)
    assert page.locator("#tag-form-error").get_attribute("data-field") == "name_zh"
    assert "1 to 128 characters" in page.locator("span[data-field=name_zh]").inner_text()
    assert tag_row(brand, "t-vegan") is None
    # a slug taken, and one in the automatic tags' namespace
    define_form(page, slug="t-gift", name_zh="素食")
    assert "already a tag" in page.locator("span[data-field=slug]").inner_text()
    define_form(page, slug="auto.vegan")
    assert "auto.* is kept for the automatic tags" in page.locator("#tag-form-error").inner_text()
    assert tag_row(brand, "auto.vegan") is None
    shoot(page, "tag-define-refused")
    # when every field holds: the tag is defined as typed, its page says so
    define_form(page, slug="t-vegan", name_zh="素食", description="Prefers plant-based food")
    assert page.url.split("?")[0].endswith("/console/tags/t-vegan")
    assert page.locator("#tag-notice").inner_text() == "Tag t-vegan defined."
    assert "Prefers plant-based food" in page.locator("#tag-description").inner_text()
    made = tag_row(brand, "t-vegan")
    assert made[1:6] == ("素食", "Vegan", "manual", f"key:{brand.key_ids['admin']}", "manual")
    assert json.loads(made.definition) == {"description": "Prefers plant-based food"}
    # an imported tag with its source: refreshed on import, by the service's default
    page.goto(f"{brand.base}/console/tags")
    define_form(
        page,
        slug="t-dmp",
        kind="imported",
        name_zh="天猫人群",
        name_en="Tmall audience",
        owner="crm-team",
        source="Tmall DMP audience export",
    )
    made = tag_row(brand, "t-dmp")
    assert made[3:6] == ("imported", "crm-team", "on_import")
    assert json.loads(made.definition) == {"source": "Tmall DMP audience export"}
    assert "Tmall DMP audience export" in page.locator("#tag-source").inner_text()
    # and the new manual tag can be given on Member 360
    page.goto(f"{brand.base}/console/members/{min(holders['t-gift'])}")
    slugs = [o.get_attribute("value") for o in page.locator("#give-tag-slug option").all()]
    assert "t-vegan" in slugs and "t-dmp" not in slugs


def test_hq_edits_a_tag_whole_or_not_at_all_and_automatic_tags_stay(
    brand: Brand, page: Any
) -> None:
    with brand.engine.begin() as conn:
        tag_service.define_tag(
            conn,
            brand.group,
            "t-edit",
            name_zh="待编辑",
            name_en="To edit",
            kind="imported",
            owner="key:1",
            definition={"source": "crm", "batch_size": 500},
        )
        tag_service.define_tag(
            conn,
            brand.group,
            "t-auto",
            name_zh="自动",
            name_en="Auto",
            kind="automatic",
            owner="system",
            definition={"rule": "orders >= 3"},
        )
    login(page, brand.base, brand.keys["admin"], "zh")
    page.goto(f"{brand.base}/console/tags/t-edit")
    page.click("#edit summary")
    assert page.locator("#edit-tag [name=source]").input_value() == "crm"
    # when the admin renames it and blanks the owner: refused naming the owner, and the
    # new name is not saved either
    page.fill("#edit-tag [name=name_en]", "Renamed")
    page.fill("#edit-tag [name=owner]", "")
    page.click("#edit-submit")
    page.wait_for_load_state("load")
    assert page.locator("#tag-form-error").get_attribute("data-field") == "owner"
    assert page.locator("span.field-error[data-field=owner]").is_visible()
    assert tag_row(brand, "t-edit").name_en == "To edit"
    # when it is saved whole: labels, refresh and description change, the source is
    # cleared, what else the definition held is kept
    page.fill("#edit-tag [name=owner]", "role:crm")
    page.select_option("#edit-tag [name=refresh]", "nightly")
    page.fill("#edit-tag [name=description]", "会员系统导出的老会员")
    page.fill("#edit-tag [name=source]", "")
    page.click("#edit-submit")
    page.wait_for_load_state("load")
    assert page.locator("#tag-notice").inner_text() == "已保存标签 t-edit 的定义。"
    saved = tag_row(brand, "t-edit")
    assert saved[1:6] == ("待编辑", "Renamed", "imported", "role:crm", "nightly")
    described = {"batch_size": 500, "description": "会员系统导出的老会员"}
    assert json.loads(saved.definition) == described
    # an automatic tag has no form, says why, and a crafted post changes nothing
    page.goto(f"{brand.base}/console/tags/t-auto")
    assert page.locator("#edit-tag").count() == 0
    assert page.locator("#tag-automatic").is_visible()
    response = post(page, "/console/tags/t-auto", {"name_zh": "改", "name_en": "x", "owner": "x"})
    assert response.status == 422
    assert tag_row(brand, "t-auto").name_en == "Auto"
    # nor is a tag defined automatic from the list's form
    fields = {"slug": "t-auto2", "kind": "automatic", "name_zh": "自", "name_en": "A"}
    assert post(page, "/console/tags", fields).status == 422
    assert tag_row(brand, "t-auto2") is None


def test_only_tags_define_defines_and_every_post_needs_its_csrf_token(
    brand: Brand, page: Any, holders: dict[str, set[int]]
) -> None:
    fields = {"slug": "t-nope", "kind": "manual", "name_zh": "不", "name_en": "No"}
    # a guide (tags:write, not tags:define) and an analyst see no form and are refused
    for role in ("guide", "analyst"):
        page.context.clear_cookies()
        login(page, brand.base, brand.keys[role], "en")
        page.goto(f"{brand.base}/console/tags")
        assert page.locator("#define-tag").count() == 0
        assert post(page, "/console/tags", fields).status == 403
        page.goto(f"{brand.base}/console/tags/t-gift")
        assert page.locator("#edit-tag").count() == 0
        assert post(page, "/console/tags/t-gift", {"name_en": "x"}).status == 403
    # an admin without the form's CSRF token is refused
    page.context.clear_cookies()
    login(page, brand.base, brand.keys["admin"], "en")
    assert post(page, "/console/tags", fields, csrf=False).status == 403
    assert tag_row(brand, "t-nope") is None
    assert tag_row(brand, "t-gift").name_en == "Tag t-gift"


def test_member_360_pages_hundreds_of_tags_and_its_segments_each_tag_telling_why(
    brand: Brand, page: Any
) -> None:
    # given a member holding 120 manual tags and an automatic one, in 30 segments
    member = brand.one(
        "SELECT MAX(member_id) FROM members WHERE group_id = :g AND status = 'active'"
    )
    manual = [f"t-m{i:03d}" for i in range(120)]
    with brand.engine.begin() as conn:
        for slug in manual:
            tag_service.define_tag(
                conn, brand.group, slug, name_zh=slug, name_en=slug, kind="manual", owner="key:1"
            )
            tag_service.set_member_tag(conn, brand.group, slug, member, "key:1", "v")
        auto = tag_service.define_tag(
            conn,
            brand.group,
            "t-auto-m",
            name_zh="自动",
            name_en="Auto",
            kind="automatic",
            owner="system",
            definition={"rule": "three orders or more"},
        )
        tag_service.apply_membership(conn, brand.group, auto.tag_id, np.array([member]), "high")
    for i in range(30):
        rule = {"tag": manual[i]}  # each held by the member alone
        define(brand, f"t-s{i:02d}", {"version": 1, "rule": rule}, evaluate=False)
    evaluate_all(brand, [f"t-s{i:02d}" for i in range(30)])
    tags_held = [
        r[0]
        for r in brand.all(
            "SELECT t.slug FROM member_tags mt JOIN tags t ON t.tag_id = mt.tag_id "
            "WHERE mt.group_id = :g AND mt.member_id = :m ORDER BY t.slug",
            m=member,
        )
    ]
    segments_in = sorted(
        r[0]
        for r in brand.all(
            "SELECT s.slug FROM segment_members sm JOIN segments s ON s.segment_id = sm.segment_id "
            "WHERE sm.group_id = :g AND sm.member_id = :m AND s.archived_at IS NULL",
            m=member,
        )
    )
    assert len(tags_held) >= 121 and len(segments_in) >= 30
    # when an admin opens its Member 360: a page of 25 tags, the count of all
    login(page, brand.base, brand.keys["admin"], "en")
    page.goto(f"{brand.base}/console/members/{member}")
    assert int(page.locator("#tags-summary").get_attribute("data-total")) == len(tags_held)
    rows = page.locator("#member-tags tbody tr[data-tag]")
    assert rows.count() == 25
    # then each tag tells its value and why: who set it and when, or that it is automatic
    # (slug order: both are on the first page)
    given = page.locator("#member-tags tr[data-tag=t-m000]")
    assert given.locator("[data-value]").get_attribute("data-value") == "v"
    assert given.locator("td.why").inner_text().startswith("Set by key #1 on ")
    automatic = page.locator("#member-tags tr[data-tag=t-auto-m]")
    assert automatic.locator("[data-value]").get_attribute("data-value") == "high"
    why = automatic.locator("td.why").inner_text()
    assert why.startswith("Automatic") and "three orders or more" in why
    # and walking the pages shows every tag once, in slug order
    seen: list[str] = []
    while True:
        seen += [r.get_attribute("data-tag") for r in rows.all()]
        if not page.locator("#tags-page-next").count():
            break
        page.click("#tags-page-next")
        page.wait_for_load_state("load")
    assert seen == tags_held
    # the segments are paged on their own: their next page keeps the tags' page
    tags_page = page.locator("#tags-pager").get_attribute("data-page")
    assert page.locator("#member-segments li[data-segment]").count() == 25
    assert int(page.locator("#segments-summary").get_attribute("data-total")) == len(segments_in)
    page.click("#segments-page-next")
    page.wait_for_load_state("load")
    shown = [li.get_attribute("data-segment") for li in page.locator("#member-segments li").all()]
    assert shown == segments_in[25:50]
    assert page.locator("#tags-pager").get_attribute("data-page") == tags_page
    # a page past the last shows the last
    page.goto(f"{brand.base}/console/members/{member}?tags_page=999&lang=zh")
    last = -(-len(tags_held) // 25)
    assert page.locator("#tags-pager").get_attribute("data-page") == str(last)
    assert page.locator("#member-tags tr[data-tag=t-m000] td.why").count() == 0
    shoot(page, "member-tags-paged")
