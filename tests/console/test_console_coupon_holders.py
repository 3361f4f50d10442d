"""The coupon liability's counts in the browser open the members behind them: each
template's issued, redeemed, returned, expired and outstanding count, and the total
outstanding over all templates, list the members now holding those coupons (paged,
exported, masked for an analyst, as every member list).

Given the console's demo brand and a template of its own whose coupons went through
every state, long ago so no other module's coupons are touched: 12 members issued one,
5 redeemed, 2 of those refunded (the coupon returned), an expiry run that expired the 9
coupons still held; then 38 members (6 of the 12 among them) issued one they still hold.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.console.conftest import Brand, login, shoot
from tests.console.segment_support import export, ids_on
from tests.console.test_console_labels import Scanner, known_codes, page_strings

from siyu.coupons import catalog, liability
from siyu.coupons.expiry import expire
from siyu.coupons.issue import issue
from siyu.coupons.redeem import Redemption, redeem
from siyu.coupons.returns import give_back
from siyu.coupons.templates import Basket, BasketLine, CouponTemplate

TEMPLATE = "HOLD10"
LONG_AGO = datetime(2001, 3, 1, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def expected(brand: Brand) -> dict[str, list[int]]:
    """Who holds what, as this set-up made it (not as siyu reads it back)."""
    engine, group = brand.engine, brand.group
    template = CouponTemplate.model_validate(
        {
            "code": TEMPLATE,
            "name_zh": "老客满100减10",
            "name_en": "Old friends 10 off 100",
            "kind": "threshold",
            "tiers": [{"min_paid_fen": 10000, "off_fen": 1000}],
            "validity": {"days_from_issue": 30},
            "face_value_fen": 1000,
            "cost_fen": 800,
        }
    )
    catalog.save(engine, group, template, None)
    members = [
        int(r[0])
        for r in brand.all(
            "SELECT member_id FROM members WHERE group_id = :g AND status = 'active' "
            "ORDER BY member_id DESC LIMIT 44"
        )
    ]
    first, later = members[:12], members[5:11] + members[12:]  # 38 later
    issue(engine, group, TEMPLATE, first, "hold-first", at=LONG_AGO)
    codes = {
        int(r.member_id): str(r.code)
        for r in brand.all(
            "SELECT member_id, code FROM coupons WHERE group_id = :g AND template_code = :t",
            t=TEMPLATE,
        )
    }
    basket = Basket("pos", (BasketLine("SKU-HOLD", 1, 12000),), brand.store_id)
    for i, m in enumerate(first[:5]):
        ask = Redemption(codes[m], f"HOLD-ORDER-{i}", basket, f"hold-redeem-{i}")
        redeem(engine, group, ask, LONG_AGO + timedelta(days=1))
    for i, m in enumerate(first[:2]):
        at = LONG_AGO + timedelta(days=2)
        give_back(engine, group, codes[m], f"HOLD-ORDER-{i}", f"hold-back-{i}", at=at)
    expire(engine, group, at=LONG_AGO + timedelta(days=31))
    issue(engine, group, TEMPLATE, later, "hold-later")
    return {
        "issued": sorted(members),
        "redeemed": sorted(first[:5]),
        "returned": sorted(first[:2]),
        "expired": sorted(first[:2] + first[5:]),
        "outstanding": sorted(later),
    }


def _open_all_pages(page: Any) -> list[int]:
    seen = ids_on(page)
    while page.locator("#page-next").count():
        page.click("#page-next")
        page.wait_for_load_state("load")
        seen += ids_on(page)
    return sorted(seen)


def test_each_liability_count_opens_its_holders(
    brand: Brand, page: Any, expected: dict[str, list[int]]
) -> None:
    owed = {x.template_code: x for x in liability.liability(brand.engine, brand.group)}[TEMPLATE]
    # the counts are of coupons: 50 issued, 5 redeemed, 2 returned, 9 expired, 38 held
    counts = (owed.issued, owed.redeemed, owed.returned, owed.expired, owed.outstanding)
    assert counts == (50, 5, 2, 9, 38)
    for state, members in expected.items():
        assert liability.holders(brand.engine, brand.group, state, TEMPLATE) == members, state  # type: ignore[arg-type]
    login(page, brand.base, brand.keys["admin"], "en")
    for state, members in expected.items():
        page.goto(f"{brand.base}/console/coupons")
        cell = page.locator(f"#coupons tr[data-template={TEMPLATE}] td[data-state={state}] a.count")
        # when a count is clicked
        assert int(cell.get_attribute("data-n")) == getattr(owed, state)
        cell.click()
        page.wait_for_load_state("load")
        # then the list holds exactly the members holding those coupons, and exports them
        assert int(page.locator("#list-summary").get_attribute("data-total")) == len(members)
        assert _open_all_pages(page) == members, state
        assert sorted(int(r["member_id"]) for r in export(page)) == members
        if state == "expired":
            shoot(page, "coupon-holders-en")
    page.goto(f"{brand.base}/console/coupons")
    shoot(page, "coupons-with-holders-en")
    # and the page's back link returns to the liability
    page.locator("a[href='/console/coupons']").first.click()
    page.wait_for_load_state("load")
    assert page.url.endswith("/console/coupons")


def test_the_total_outstanding_opens_every_holder(
    brand: Brand, page: Any, expected: dict[str, list[int]]
) -> None:
    held = sorted(
        {
            int(r[0])
            for r in brand.all(
                "SELECT member_id FROM coupons WHERE group_id = :g AND status = 'issued'"
            )
        }
    )
    assert set(expected["outstanding"]) <= set(held)
    login(page, brand.base, brand.keys["admin"], "zh")
    page.goto(f"{brand.base}/console/coupons")
    page.click("#all-outstanding")
    page.wait_for_load_state("load")
    assert "全部模板" in page.locator("h1").inner_text()
    assert int(page.locator("#list-summary").get_attribute("data-total")) == len(held)
    assert _open_all_pages(page) == held
    shoot(page, "coupon-holders-all-zh")


def test_paging_keeps_the_count(brand: Brand, page: Any, expected: dict[str, list[int]]) -> None:
    login(page, brand.base, brand.keys["admin"], "en")
    query = f"state=outstanding&template={TEMPLATE}&per=25"
    page.goto(f"{brand.base}/console/coupons/members?{query}")
    first = ids_on(page)
    assert len(first) == 25
    # when the next page is asked, the count and the page size stay
    page.click("#page-next")
    page.wait_for_load_state("load")
    assert all(q in page.url for q in query.split("&"))
    assert sorted(first + ids_on(page)) == expected["outstanding"]
    assert page.locator("#page-next").count() == 0


def test_an_analyst_sees_holders_masked(
    brand: Brand, page: Any, expected: dict[str, list[int]]
) -> None:
    login(page, brand.base, brand.keys["analyst"], "en")
    page.goto(f"{brand.base}/console/coupons/members?state=issued&template={TEMPLATE}")
    phones = [p for p in page.locator("table.members td.phone").all() if p.inner_text() != "-"]
    assert all(p.get_attribute("data-masked") == "1" for p in phones)
    assert all("*" in r["phone"] for r in export(page) if r["phone"])


def test_unknown_counts_and_other_roles_are_refused(
    brand: Brand, page: Any, expected: dict[str, list[int]]
) -> None:
    login(page, brand.base, brand.keys["admin"], "en")
    for query in ("state=lost", f"state=moved&template={TEMPLATE}", "state=issued&template=NOPE"):
        for path in ("members", "members.csv"):
            status = page.goto(f"{brand.base}/console/coupons/{path}?{query}").status
            assert status == 404, (path, query)
    for role in ("store", "guide"):
        page.context.clear_cookies()
        login(page, brand.base, brand.keys[role], "en")
        for path in ("members", "members.csv"):
            url = f"{brand.base}/console/coupons/{path}?state=issued&template={TEMPLATE}"
            assert page.goto(url).status == 403, (role, path)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_holders_page_shows_no_code_without_its_label(
    brand: Brand, page: Any, expected: dict[str, list[int]], lang: str
) -> None:
    scanner = Scanner(lang, known_codes())
    login(page, brand.base, brand.keys["admin"], lang)
    for query in (f"state=returned&template={TEMPLATE}", "state=outstanding"):
        assert page.goto(f"{brand.base}/console/coupons/members?{query}").status == 200
        bad = {w: scanner.untranslated(t) for w, t in page_strings(page).items()}
        assert not {w: c for w, c in bad.items() if c}, query
    title = page.locator("h1").inner_text()
    assert title.startswith("全部模板" if lang == "zh" else "All templates")
