"""Stored segments in the browser: the list and its paging, a segment's page (its rule in
words, size per day, members paged, masked per role and exported), evaluate now, archive
refused while another segment nests it, and a guide seeing only its own members."""

from __future__ import annotations

import re
from typing import Any

import pytest
from tests.console.conftest import Brand, login, shoot
from tests.console.segment_support import (
    define,
    export,
    guide_members,
    ids_on,
    members_of,
    post,
)

REGULARS = {"version": 1, "rule": {"orders": {"count": {"gte": 2}}}}
LAPSING = {
    "version": 1,
    "rule": {"all": [{"segment": "t-regulars"}, {"last_order": {"more_than_days": 60}}]},
}
FULL_PHONE = re.compile(r"(\+86)?1\d{10}")


@pytest.fixture(scope="module")
def segments(brand: Brand) -> dict[str, set[int]]:
    """Two evaluated segments, the second nesting the first; their members in the store."""
    define(brand, "t-regulars", REGULARS)
    define(brand, "t-lapsing", LAPSING)
    return {
        slug: members_of(
            brand,
            "SELECT sm.member_id FROM segment_members sm JOIN segments s ON "
            "s.segment_id = sm.segment_id WHERE s.group_id = :g AND s.slug = :s",
            s=slug,
        )
        for slug in ("t-regulars", "t-lapsing")
    }


def test_the_list_shows_each_segment_with_its_size(
    brand: Brand, page: Any, segments: dict[str, set[int]]
) -> None:
    # given two evaluated segments, when the admin opens the list
    login(page, brand.base, brand.keys["admin"], "en")
    page.click("nav.side a[data-page=segments]")
    page.wait_for_load_state("load")
    # then each row has its name, size, time of evaluation and status
    for slug, members in segments.items():
        row = page.locator(f"#segments tr[data-segment={slug}]")
        assert row.get_attribute("data-size") == str(len(members))
        assert row.locator("a").inner_text() == f"Test {slug}"
        assert row.locator("[data-status]").inner_text() == "Live"
        assert row.locator("td").nth(4).inner_text() == "Nightly"
    assert len(segments["t-regulars"]) > 50 and segments["t-lapsing"]
    shoot(page, "segments-list")


def test_a_segment_page_reads_the_rule_and_pages_its_members(
    brand: Brand, page: Any, segments: dict[str, set[int]]
) -> None:
    members = segments["t-lapsing"]
    login(page, brand.base, brand.keys["admin"], "en")
    page.goto(f"{brand.base}/console/segments/t-lapsing")
    # the rule in words, nested as it nests
    rule = page.locator("#segment-rule").inner_text()
    assert "All of:" in rule
    assert "In segment t-regulars" in rule
    assert "Last order more than 60 days ago" in rule
    # the size and its history (one evaluated day at least), and version 1
    assert page.locator("#segment-size").get_attribute("data-size") == str(len(members))
    assert page.locator("#size-history tbody tr").count() >= 1
    assert page.locator("#versions tr[data-version='1']").count() == 1
    # members: every one of them, once, across the pages
    assert int(page.locator("#list-summary").get_attribute("data-total")) == len(members)
    seen = ids_on(page)
    while page.locator("#page-next").count():
        page.click("#page-next")
        page.wait_for_load_state("load")
        seen += ids_on(page)
    assert len(seen) == len(set(seen)) and set(seen) == members
    # the admin sees phones in the clear and exports them so
    page.goto(f"{brand.base}/console/segments/t-lapsing")
    phones = [c.inner_text() for c in page.locator("table.members td.phone").all()]
    assert any(FULL_PHONE.fullmatch(p) for p in phones)
    rows = export(page)
    assert {int(r["member_id"]) for r in rows} == members
    shoot(page, "segment-page")


def test_an_analyst_sees_and_exports_masked_phones_and_cannot_write(
    brand: Brand, page: Any, segments: dict[str, set[int]]
) -> None:
    login(page, brand.base, brand.keys["analyst"], "en")
    page.goto(f"{brand.base}/console/segments/t-regulars")
    cells = page.locator("table.members td.phone").all()
    assert cells
    for cell in cells:
        assert cell.get_attribute("data-masked") == "1"
        assert not FULL_PHONE.fullmatch(cell.inner_text())
    rows = export(page)
    assert len(rows) == len(segments["t-regulars"])
    assert all(not FULL_PHONE.fullmatch(r["phone"]) for r in rows)
    # no write actions, and posting them by hand is refused
    assert page.locator("#evaluate-now").count() == 0
    assert page.locator("#archive").count() == 0
    for action in ("evaluate", "archive"):
        assert post(page, f"/console/segments/t-regulars/{action}", {}).status == 403
    assert page.locator("#edit-segment").inner_text() == "Try changes in the builder"


def test_a_guide_sees_only_its_own_members_of_a_segment(
    brand: Brand, page: Any, segments: dict[str, set[int]]
) -> None:
    mine = guide_members(brand)
    expected = segments["t-regulars"] & mine
    assert expected and segments["t-regulars"] - mine  # other guides' members are in it
    login(page, brand.base, brand.keys["guide"], "en")
    page.goto(f"{brand.base}/console/segments/t-regulars?per=200")
    assert int(page.locator("#list-summary").get_attribute("data-total")) == len(expected)
    assert set(ids_on(page)) <= expected
    # a guide has no segments:export: no link, and the CSV is refused
    assert page.locator("#export-csv").count() == 0
    csv = page.request.get(f"{brand.base}/console/segments/t-regulars/members.csv")
    assert csv.status == 403
    # nor through the generic member list's export by segment (its own list, by segment,
    # opens: the guide may read the segment, in its scope)
    generic = page.request.get(f"{brand.base}/console/members.csv?segment=t-regulars")
    assert generic.status == 403
    assert page.goto(f"{brand.base}/console/my-members?segment=t-regulars").status == 200
    assert page.locator("#edit-segment").count() == 0
    assert page.goto(f"{brand.base}/console/builder").status == 403


def test_evaluate_now_and_archive_refused_while_nested(
    brand: Brand, page: Any, segments: dict[str, set[int]]
) -> None:
    login(page, brand.base, brand.keys["admin"], "en")
    page.goto(f"{brand.base}/console/segments/t-regulars")
    runs_before = brand.one("SELECT COUNT(*) FROM segment_evaluations WHERE group_id = :g")
    # when the admin evaluates now: the counts are told and a run is recorded
    page.click("#evaluate-now")
    page.wait_for_load_state("load")
    notice = page.locator("#segment-notice").inner_text()
    assert f"Evaluated: {len(segments['t-regulars'])} members (0 entered, 0 left)." == notice
    runs_after = brand.one("SELECT COUNT(*) FROM segment_evaluations WHERE group_id = :g")
    assert runs_after == runs_before + 1
    # when it archives a segment another live segment nests: refused, naming it
    page.click("#archive")
    page.wait_for_load_state("load")
    error = page.locator("#segment-error").inner_text()
    assert error == "Cannot archive: segment t-lapsing nests it. Change their rules first."
    assert page.locator("#segment-status").get_attribute("data-status") == "live"
    shoot(page, "segment-archive-refused")
    # in Chinese too
    page.goto(f"{brand.base}/console/segments/t-regulars?lang=zh")
    page.click("#archive")
    page.wait_for_load_state("load")
    assert "t-lapsing" in page.locator("#segment-error").inner_text()
    assert "不能归档" in page.locator("#segment-error").inner_text()
    # and a form without its token is refused
    assert post(page, "/console/segments/t-regulars/archive", {}, csrf=False).status == 403


def test_the_list_pages_past_fifty_segments(brand: Brand, page: Any) -> None:
    # given more segments than a page holds (not evaluated: a size of "-")
    for i in range(51):
        define(brand, f"t-page-{i:02d}", REGULARS, evaluate=False)
    total = brand.one("SELECT COUNT(*) FROM segments WHERE group_id = :g AND archived_at IS NULL")
    login(page, brand.base, brand.keys["analyst"], "en")
    page.goto(f"{brand.base}/console/segments")
    assert page.locator("#segments-summary").get_attribute("data-total") == str(total)
    first = [r.get_attribute("data-segment") for r in page.locator("#segments tbody tr").all()]
    assert len(first) == 50
    page.click("#page-next")
    page.wait_for_load_state("load")
    rest = [r.get_attribute("data-segment") for r in page.locator("#segments tbody tr").all()]
    assert len(first) + len(rest) == total and not set(first) & set(rest)
    assert "Never" in page.locator("#segments tr[data-segment=t-page-50]").inner_text()
