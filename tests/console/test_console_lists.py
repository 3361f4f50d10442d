"""Every count opens the members behind it, in the browser: the list's count is the number
clicked, its pages hold each member once, it sorts and filters, its CSV holds the same
rows with the role's masks, a store key sees only its members, and a phone shows every
guide page as cards without sideways scrolling."""

from __future__ import annotations

import csv
import io
import re
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from tests.console.conftest import Brand, login, shoot

FULL_PHONE = re.compile(r"(\+86)?1\d{10}")


def ids_on(page: Any) -> list[int]:
    return [
        int(r.get_attribute("data-member"))
        for r in page.locator("table.members tbody tr[data-member]").all()
    ]


def total(page: Any) -> int:
    return int(page.locator("#list-summary").get_attribute("data-total"))


def walk(page: Any) -> list[int]:
    """Every member of the open list, following the next-page link to the end."""
    seen = ids_on(page)
    while page.locator("#page-next").count():
        page.click("#page-next")
        page.wait_for_load_state("load")
        seen += ids_on(page)
    return seen


def export(page: Any) -> list[dict[str, str]]:
    """The list's CSV, fetched with the page's session as the export link does."""
    href = page.locator("#export-csv").get_attribute("href")
    response = page.request.get(page.url.split("/console")[0] + href)
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text().lstrip("\ufeff"))))


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_stage_count_opens_that_many_members(brand: Brand, page: Any, lang: str) -> None:
    # given the admin on the retention page
    login(page, brand.base, brand.keys["admin"], lang)
    page.goto(f"{brand.base}/console/retention")
    counts = {
        r.get_attribute("data-stage"): int(
            r.locator("[data-members]").get_attribute("data-members")
        )
        for r in page.locator("#stages tbody tr").all()
    }
    # a stage of more than one page (50 a page), the smallest such
    stage = min((s for s, n in counts.items() if n > 50), key=lambda s: counts[s])
    # when its count is clicked
    page.click(f"#stages tr[data-stage='{stage}'] a.count")
    page.wait_for_load_state("load")
    # then the list shows that many members, of that stage, as the store has them
    assert total(page) == counts[stage]
    word = "共" if lang == "zh" else "members"
    assert word in page.locator("#list-summary").inner_text()
    shoot(page, f"list-stage-{lang}")
    in_store = {
        r[0]
        for r in brand.all(
            "SELECT s.member_id FROM member_stages s JOIN members m ON m.member_id = s.member_id "
            "WHERE s.group_id = :g AND s.stage = :s AND m.status = 'active'",
            s=stage,
        )
    }
    # and its pages add up: every member once, no more, no fewer
    seen = walk(page)
    assert len(seen) == len(set(seen)) == counts[stage]
    assert set(seen) == in_store
    for cell in page.locator("table.members [data-stage]").all():
        assert cell.get_attribute("data-stage") == stage
    # and the CSV holds the same members
    assert {int(r["member_id"]) for r in export(page)} == in_store


# Per aggregate page: the links to check (the first few of each) and where the number is.
LINKED = {
    "retention": ("#stages a.count", 3),
    "rfm": ("main a.count", 8),
    "cohorts": ("main a.count", 8),
    "funnel": ("main a.count", 6),
    "channels": ("main a.count", 4),
    "guides": ("#guides a.count", 3),
    "stores": ("#stores a.count", 4),
}


def test_every_count_opens_as_many_members(brand: Brand, page: Any) -> None:
    login(page, brand.base, brand.keys["admin"], "en")
    checked: dict[str, int] = {}
    for name, (selector, first) in LINKED.items():
        page.goto(f"{brand.base}/console/{name}")
        links = []
        for a in page.locator(selector).all()[:first]:
            cell = a.locator("xpath=..")
            number = cell.get_attribute("data-members") or cell.get_attribute("data-buyers")
            links.append((a.get_attribute("href"), int(number)))
        assert links, name
        for href, number in links:
            page.goto(brand.base + href)
            assert total(page) == number, (name, href)
        checked[name] = len(links)
    # each kind of criterion was followed at least once
    assert set(checked) == set(LINKED)


def test_sorting_and_a_filter(brand: Brand, page: Any) -> None:
    login(page, brand.base, brand.keys["admin"], "en")
    page.goto(f"{brand.base}/console/members")
    everyone = total(page)
    assert everyone == brand.one(
        "SELECT COUNT(*) FROM members WHERE group_id = :g AND status = 'active'"
    )
    # when the spend header is clicked: most first; again: least first
    page.click("th[data-sort=spend] a")
    page.wait_for_load_state("load")
    spend = [int(c.get_attribute("data-spend")) for c in page.locator("[data-spend]").all()]
    assert spend == sorted(spend, reverse=True) and spend[0] > 0
    page.click("th[data-sort=spend] a")
    page.wait_for_load_state("load")
    spend = [int(c.get_attribute("data-spend")) for c in page.locator("[data-spend]").all()]
    assert spend == sorted(spend)
    assert total(page) == everyone  # sorting keeps the list
    # when a stage and a home store are chosen in the filter form (the store's commonest)
    stage = brand.one(
        "SELECT s.stage FROM members m JOIN member_stages s ON s.member_id = m.member_id "
        "WHERE m.group_id = :g AND m.status = 'active' AND m.home_store_id = :st "
        "GROUP BY s.stage ORDER BY COUNT(*) DESC, s.stage LIMIT 1",
        st=brand.store_id,
    )
    page.goto(f"{brand.base}/console/members")
    page.click("details.filter > summary")
    page.select_option("select[name=stage]", stage)
    page.fill("input[name=store]", brand.store_id)
    page.click("#filter-submit")
    page.wait_for_load_state("load")
    # then the list narrows to exactly those members
    expected = brand.one(
        "SELECT COUNT(*) FROM members m JOIN member_stages s ON s.member_id = m.member_id "
        "WHERE m.group_id = :g AND m.status = 'active' AND s.stage = :s "
        "AND m.home_store_id = :st",
        s=stage,
        st=brand.store_id,
    )
    assert 0 < total(page) == expected < everyone
    query = parse_qs(urlparse(page.url).query)
    assert query["stage"] == [stage] and query["store"] == [brand.store_id]
    assert page.locator("[data-criterion=stage]").count() == 1
    shoot(page, "list-filtered")
    # and a bad value is refused, naming the field
    response = page.goto(f"{brand.base}/console/members?cohort=2024-13")
    assert response.status == 422
    assert "cohort" in page.locator("#list-error").inner_text()


def test_the_csv_is_the_list_masked_for_the_role(brand: Brand, page: Any) -> None:
    # given the admin's list of the store's home members: its CSV has every row, phones clear
    login(page, brand.base, brand.keys["admin"], "en")
    page.goto(f"{brand.base}/console/members?store={brand.store_id}")
    rows = export(page)
    assert len(rows) == total(page) > 50  # more than the page shows
    assert any(FULL_PHONE.fullmatch(r["phone"]) for r in rows)
    # when an analyst exports the same list: no full phone, every phone masked
    login(page, brand.base, brand.keys["analyst"], "en")
    page.goto(f"{brand.base}/console/members?store={brand.store_id}")
    assert page.locator("td.phone[data-masked='0']").count() == 0
    masked = export(page)
    assert len(masked) == len(rows)
    phones = [r["phone"] for r in masked if r["phone"]]
    assert phones and all("****" in p for p in phones)
    assert not any(FULL_PHONE.search(r) for r in (",".join(x.values()) for x in masked))


def test_a_store_keys_list_and_csv_hold_only_its_members(brand: Brand, page: Any) -> None:
    mine = {
        r[0]
        for r in brand.all(
            "SELECT member_id FROM members WHERE group_id = :g AND status = 'active' "
            "AND home_store_id = :s UNION SELECT o.member_id FROM orders o JOIN members m "
            "ON m.member_id = o.member_id WHERE o.group_id = :g AND o.store_id = :s "
            "AND m.status = 'active'",
            s=brand.store_id,
        )
    }
    login(page, brand.base, brand.keys["store"], "en")
    page.goto(f"{brand.base}/console/members?per=200")
    assert total(page) == len(mine)
    assert set(ids_on(page)) <= mine
    assert {int(r["member_id"]) for r in export(page)} == mine
    # asking for everyone's stage or another store's members stays within its own
    page.goto(f"{brand.base}/console/members?stage=loyal&per=200")
    assert set(ids_on(page)) <= mine
    rows = export(page)
    assert rows and {int(r["member_id"]) for r in rows} <= mine


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_guide_pages_fit_a_phone_as_cards(brand: Brand, phone: Any, lang: str) -> None:
    login(phone, brand.base, brand.keys["guide"], lang)
    member = brand.one(
        "SELECT MIN(member_id) FROM orders WHERE group_id = :g AND guide_id = :d", d=brand.guide_id
    )
    for path in (
        "/console/my-members",
        "/console/tasks",
        "/console/members",
        "/console/members?sort=spend&per=100",
        f"/console/members/{member}",
    ):
        phone.goto(brand.base + path)
        # no sideways scrolling of the page
        width = phone.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
        # every card's fields inside the screen, none hidden
        outside = phone.evaluate(
            """() => Array.from(document.querySelectorAll('table.cardlist td')).filter(td => {
                const r = td.getBoundingClientRect();
                return r.width === 0 || r.left < 0 || r.right > window.innerWidth + 0.5;
            }).length"""
        )
        assert outside == 0, path
        shoot(phone, f"phone-{lang}-{path.strip('/').replace('/', '-').split('?')[0]}")
    phone.goto(f"{brand.base}/console/my-members")
    card = phone.locator("table.members tbody tr[data-member]").first
    labels = card.locator("td").evaluate_all(
        "tds => tds.map(td => getComputedStyle(td, '::before').content)"
    )
    assert all(x not in ("none", '""') for x in labels)  # each field says what it is
