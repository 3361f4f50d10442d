"""The marketing pages in the browser (issue #17): coupon templates with their liability,
campaigns and a campaign's report (treatment beside holdout), QR codes with what they
brought, lottery pools with their audit. The figures shown are the domain services',
every member figure opens the members behind it (paged, exported, masked for an
analyst), and no page shows a code without its label.

Given the console's demo brand, with a coupon template, a campaign launched on a stage
with a holdout (and one without), some of its coupons redeemed, a QR code that acquired
members (some brought by a star member), a lottery pool some members drew from, and a
campaign whose incentive is a lottery only its granted members entered.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from tests.console.conftest import Brand, login, shoot
from tests.console.segment_support import export, ids_on
from tests.console.test_console_labels import Scanner, known_codes, page_strings

from siyu.campaigns import plan as plans
from siyu.campaigns import report as reports
from siyu.campaigns.launch import launch
from siyu.coupons import catalog, liability
from siyu.coupons.redeem import Redemption, redeem
from siyu.coupons.templates import Basket, BasketLine, CouponTemplate
from siyu.lotteries import audit, pools
from siyu.lotteries.draw import DrawAsk, draw
from siyu.lotteries.errors import EntryNotAccepted
from siyu.scenes import registry
from siyu.scenes import report as scene_report
from siyu.scenes.scans import record_scan
from siyu.store.times import stored_now

CAMPAIGN, NO_HOLDOUT, TEMPLATE = "MK-SPRING", "MK-ALL", "MK20"
SCENE, POOL = "mk-poster-1", "MK-DRAW"
LUCKY, LUCKY_POOL = "MK-LUCK", "MK-LUCK-DRAW"
REDEEMED = 6


def _template() -> CouponTemplate:
    return CouponTemplate.model_validate(
        {
            "code": TEMPLATE,
            "name_zh": "春季满100减20",
            "name_en": "Spring 20 off 100",
            "kind": "threshold",
            "tiers": [{"min_paid_fen": 10000, "off_fen": 2000}],
            "validity": {"days_from_issue": 30},
            "face_value_fen": 2000,
            "cost_fen": 1500,
        }
    )


def _campaign(brand: Brand, code: str, stage: str, holdout_bp: int) -> None:
    # the period covers the demo's last year of orders, so both arms have spend
    last = brand.one("SELECT MAX(ordered_at) FROM orders WHERE group_id = :g")
    end = datetime.fromisoformat(str(last)[:19]) + timedelta(days=1)
    plan = plans.Plan.model_validate(
        {
            "code": code,
            "name_zh": f"春季唤醒 {code}",
            "name_en": f"Spring wake-up {code}",
            "target": {"stage": stage},
            "starts_at": (end - timedelta(days=365)).isoformat(),
            "ends_at": end.isoformat(),
            "coupons": [TEMPLATE],
            "holdout_bp": holdout_bp,
        }
    )
    plans.save(brand.engine, brand.group, plan, None)
    launch(brand.engine, brand.group, code)


def _prize_stock(brand: Brand) -> list[tuple[str, str]]:
    """Two items on a shelf with stock enough for the pool's units."""
    rows = brand.all(
        "SELECT sku, location_id FROM stock_levels WHERE group_id = :g AND on_hand >= 20 "
        "ORDER BY on_hand DESC, sku, location_id LIMIT 2"
    )
    assert len(rows) == 2, rows
    return [(str(r.sku), str(r.location_id)) for r in rows]


@pytest.fixture(scope="module")
def seeded(brand: Brand) -> dict[str, Any]:
    engine, group = brand.engine, brand.group
    catalog.save(engine, group, _template(), None)
    # the stage whose members ordered most in the period, so spend varies in both arms
    stage = brand.one(
        "SELECT s.stage FROM member_stages s JOIN orders o ON o.group_id = s.group_id "
        "AND o.member_id = s.member_id WHERE s.group_id = :g AND s.stage IN "
        "('at_risk', 'lapsed', 'loyal') GROUP BY s.stage ORDER BY COUNT(*) DESC LIMIT 1"
    )
    _campaign(brand, CAMPAIGN, stage, 3000)
    _campaign(brand, NO_HOLDOUT, stage, 0)
    # some treated members use their coupon at a till
    codes = [
        r.code
        for r in brand.all(
            "SELECT code FROM coupons WHERE group_id = :g AND campaign = :c ORDER BY code",
            c=CAMPAIGN,
        )
    ]
    for i, code in enumerate(codes[:REDEEMED]):
        basket = Basket("pos", (BasketLine("SKU-MK", 1, 12000),), brand.store_id)
        redeem(engine, group, Redemption(code, f"MK-ORDER-{i}", basket, f"mk-redeem-{i}"))
    # a QR code that acquired members who ordered; one of them brought five others
    registry.create(engine, group, SCENE, "permanent", store_id=brand.store_id, poster="spring")
    buyers = [
        int(r[0])
        for r in brand.all(
            "SELECT o.member_id FROM orders o JOIN members m ON m.member_id = o.member_id "
            "AND m.group_id = o.group_id WHERE o.group_id = :g AND m.status = 'active' "
            "AND o.status <> 'cancelled' GROUP BY o.member_id ORDER BY o.member_id LIMIT 12"
        )
    ]
    star = buyers[0]
    for i, m in enumerate(buyers[1:]):
        record_scan(
            engine,
            group,
            SCENE,
            f"mk-scan-{m}",
            member_id=m,
            referrer_member_id=star if i < 5 else None,
            acquired=True,
        )
    # a lottery pool two items of stock are prizes of, and twenty members' draws
    (sku_a, at_a), (sku_b, at_b) = _prize_stock(brand)
    now = stored_now()
    doc = {
        "code": POOL,
        "name_zh": "春季抽奖",
        "name_en": "Spring draw",
        "starts_at": (now - timedelta(days=1)).isoformat(),
        "ends_at": (now + timedelta(days=30)).isoformat(),
        "entry": "free",
        "per_member": 2,
        "prizes": [
            {
                "code": "A-BAG",
                "name_zh": "帆布袋",
                "name_en": "Tote bag",
                "sku": sku_a,
                "location_id": at_a,
                "odds_ppm": 300_000,
                "units": 5,
            },
            {
                "code": "B-SAMPLE",
                "name_zh": "试用装",
                "name_en": "Sample",
                "sku": sku_b,
                "location_id": at_b,
                "odds_ppm": 400_000,
                "units": 10,
            },
        ],
    }
    pools.define(engine, group, pools.PoolDef.model_validate(doc), None, bytes(range(32)))
    others = brand.all(
        "SELECT member_id FROM members WHERE group_id = :g AND status = 'active' "
        "AND member_id NOT IN :ids ORDER BY member_id LIMIT 10".replace(
            ":ids", "(" + ", ".join(map(str, buyers[:10])) + ")"
        )
    )
    for m in buyers[:10] + [int(r[0]) for r in others]:
        draw(engine, group, POOL, DrawAsk(m, f"mk-draw-{m}"))
    return {"star": star}


@pytest.fixture(scope="module")
def lucky(brand: Brand, seeded: dict[str, Any]) -> dict[str, list[int]]:
    """A campaign whose only incentive is a lottery (every roll wins), launched on the
    stage the report's campaign targets: four of its granted members draw, and a member
    of its holdout is refused."""
    engine, group = brand.engine, brand.group
    with engine.connect() as conn:
        stage = plans.load(conn, group, CAMPAIGN).plan.target.stage
    (sku, at), _ = _prize_stock(brand)
    now = stored_now()
    pool = {
        "code": LUCKY_POOL,
        "name_zh": "会员专享抽奖",
        "name_en": "Members' draw",
        "starts_at": (now - timedelta(days=1)).isoformat(),
        "ends_at": (now + timedelta(days=30)).isoformat(),
        "entry": "campaign",
        "campaign": LUCKY,
        "per_member": 1,
        "prizes": [
            {
                "code": "A-BAG",
                "name_zh": "帆布袋",
                "name_en": "Tote bag",
                "sku": sku,
                "location_id": at,
                "odds_ppm": 1_000_000,
                "units": 4,
            }
        ],
    }
    pools.define(engine, group, pools.PoolDef.model_validate(pool), None, bytes(range(32)))
    plan = plans.Plan.model_validate(
        {
            "code": LUCKY,
            "name_zh": "抽奖唤醒",
            "name_en": "Wake-up draw",
            "target": {"stage": stage},
            "starts_at": (now - timedelta(days=1)).isoformat(),
            "ends_at": (now + timedelta(days=30)).isoformat(),
            "lottery": LUCKY_POOL,
            "holdout_bp": 3000,
        }
    )
    plans.save(engine, group, plan, None)
    launch(engine, group, LUCKY)
    treated = reports.members(engine, group, LUCKY, "treatment")
    held = reports.members(engine, group, LUCKY, "holdout")
    for m in treated[:4]:
        draw(engine, group, LUCKY_POOL, DrawAsk(m, f"mk-luck-{m}"))
    with pytest.raises(EntryNotAccepted):
        draw(engine, group, LUCKY_POOL, DrawAsk(held[0], f"mk-luck-{held[0]}"))
    return {"winners": treated[:4]}


def test_coupon_templates_show_the_liability(
    brand: Brand, page: Any, seeded: dict[str, Any]
) -> None:
    owed = {x.template_code: x for x in liability.liability(brand.engine, brand.group)}[TEMPLATE]
    for lang in ("zh", "en"):
        # when an admin opens the coupons page from the navigation
        login(page, brand.base, brand.keys["admin"], lang)
        page.click("nav.side a[data-page=coupons]")
        page.wait_for_load_state("load")
        # then the navigation has its marketing section, and the template its liability
        assert page.locator("nav.side .nav-section[data-section=marketing]").count() == 1
        row = page.locator(f"#coupons tr[data-template={TEMPLATE}]")
        shown = {k: int(row.get_attribute(f"data-{k}")) for k in ("issued", "redeemed")}
        assert shown == {"issued": owed.issued, "redeemed": owed.redeemed}
        assert owed.redeemed == REDEEMED
        assert int(row.get_attribute("data-outstanding")) == owed.outstanding
        assert int(row.get_attribute("data-face")) == owed.outstanding_face_fen
        assert int(row.get_attribute("data-cost")) == owed.outstanding_cost_fen
        assert f"¥{owed.outstanding_cost_fen // 100:,}.00" in row.inner_text()
        # and the template its terms, in labels and yuan
        cells = [
            c.inner_text()
            for c in page.locator(f"#templates tr[data-template={TEMPLATE}] td").all()
        ]
        label = "满减券" if lang == "zh" else "Spend-and-save"
        assert cells[1:4] == [label, "¥20.00", "¥15.00"]
        shoot(page, f"coupons-{lang}")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_campaign_report_shows_the_service_figures(
    brand: Brand, page: Any, seeded: dict[str, Any], lang: str
) -> None:
    out = reports.report(brand.engine, brand.group, CAMPAIGN)
    login(page, brand.base, brand.keys["admin"], lang)
    # the list: both campaigns, their status as a label
    page.click("nav.side a[data-page=campaigns]")
    page.wait_for_load_state("load")
    row = page.locator(f"#campaigns tr[data-campaign={CAMPAIGN}]")
    assert ("进行中" if lang == "zh" else "Launched") in row.inner_text()
    assert page.locator(f"#campaigns tr[data-campaign={NO_HOLDOUT}]").count() == 1
    shoot(page, f"campaigns-{lang}")
    # when the campaign is opened
    row.locator("a").first.click()
    page.wait_for_load_state("load")
    # then each arm's figures are the report's, side by side
    for arm in ("treatment", "holdout"):
        figures = getattr(out, arm)
        assert int(page.locator(f"#{arm}-members").get_attribute("data-n")) == figures.members
        assert int(page.locator(f"#{arm}-buyers").get_attribute("data-n")) == figures.buyers
        revenue = page.locator(f"#arms tr[data-figure=revenue] td[data-arm={arm}]")
        assert int(revenue.get_attribute("data-fen")) == figures.revenue_fen
    assert out.treatment.members > 0 and out.holdout.members > 0
    # and the effect: incremental revenue, its interval and p-value, cost and ROI
    effect = page.locator("#effect")
    incremental = effect.locator("[data-figure=incremental]")
    assert int(incremental.get_attribute("data-fen")) == round(out.incremental_revenue_fen or 0)
    assert out.ci95_per_member_fen is not None and out.p_value is not None
    ci = effect.locator("[data-figure=ci95]")
    assert int(ci.get_attribute("data-low")) == round(out.ci95_per_member_fen[0])
    assert int(ci.get_attribute("data-high")) == round(out.ci95_per_member_fen[1])
    p_value = effect.locator("[data-figure=p_value]")
    assert float(p_value.get_attribute("data-value")) == pytest.approx(out.p_value)
    assert f"{out.p_value:.4f}" in p_value.inner_text()
    assert int(effect.locator("[data-figure=cost]").get_attribute("data-fen")) == out.cost_fen
    assert out.cost_fen == REDEEMED * 1500 and out.roi is not None
    roi = effect.locator("[data-figure=roi]")
    assert float(roi.get_attribute("data-value")) == pytest.approx(out.roi)
    assert int(page.locator("#redeemers").get_attribute("data-n")) == out.redeemers == REDEEMED
    assert page.locator("#campaign-note").count() == 0
    shoot(page, f"campaign-report-{lang}")
    # and a campaign without a holdout says why there is no incremental revenue
    page.goto(f"{brand.base}/console/campaigns/{NO_HOLDOUT}")
    note = "没有对照组" if lang == "zh" else "No holdout"
    assert note in page.locator("#campaign-note").inner_text()
    shoot(page, f"campaign-no-holdout-{lang}")


def test_a_campaign_figure_opens_its_members(
    brand: Brand, page: Any, seeded: dict[str, Any]
) -> None:
    login(page, brand.base, brand.keys["admin"], "en")
    page.goto(f"{brand.base}/console/campaigns/{CAMPAIGN}")
    for arm, who, link in (
        ("treatment", "buyers", "#treatment-buyers"),
        ("holdout", "all", "#holdout-members"),
        ("treatment", "redeemers", "#redeemers"),
    ):
        expected = reports.members(brand.engine, brand.group, CAMPAIGN, arm, who)
        page.goto(f"{brand.base}/console/campaigns/{CAMPAIGN}")
        # when a figure is clicked
        page.click(link)
        page.wait_for_load_state("load")
        # then the list holds exactly its members, page after page, and exports them
        assert int(page.locator("#list-summary").get_attribute("data-total")) == len(expected)
        seen = ids_on(page)
        while page.locator("#page-next").count():
            page.click("#page-next")
            page.wait_for_load_state("load")
            seen += ids_on(page)
        assert sorted(seen) == expected, (arm, who)
        assert sorted(int(r["member_id"]) for r in export(page)) == expected
        if who == "buyers":
            shoot(page, "campaign-members-en")
    # and a filter narrows the figure's members, keeping the figure
    page.goto(f"{brand.base}/console/campaigns/{CAMPAIGN}")
    page.click("#treatment-members")
    page.wait_for_load_state("load")
    page.click("details.filter summary")
    page.select_option("select[name=per]", "25")
    page.click("#filter-submit")
    page.wait_for_load_state("load")
    assert "arm=treatment" in page.url and "per=25" in page.url
    treated = reports.members(brand.engine, brand.group, CAMPAIGN, "treatment")
    assert int(page.locator("#list-summary").get_attribute("data-total")) == len(treated)
    assert len(ids_on(page)) == min(25, len(treated))


def test_an_analyst_sees_the_report_and_masked_members(
    brand: Brand, page: Any, seeded: dict[str, Any]
) -> None:
    login(page, brand.base, brand.keys["analyst"], "zh")
    nav = [a.get_attribute("data-page") for a in page.locator("nav.side a").all()]
    assert {"coupons", "campaigns", "scenes", "lotteries"} <= set(nav)
    page.goto(f"{brand.base}/console/campaigns/{CAMPAIGN}")
    page.click("#treatment-members")
    page.wait_for_load_state("load")
    phones = page.locator("table.members td.phone").all()
    assert phones
    shown = [p for p in phones if p.inner_text() != "-"]
    assert shown and all(p.get_attribute("data-masked") == "1" for p in shown)
    assert all("*" in p.inner_text() for p in shown)
    csv_phones = [r["phone"] for r in export(page) if r["phone"]]
    assert csv_phones and all("*" in p for p in csv_phones)
    shoot(page, "campaign-members-analyst-zh")


def test_store_and_guide_keys_are_refused_the_marketing_pages(
    brand: Brand, page: Any, seeded: dict[str, Any]
) -> None:
    for role in ("store", "guide"):
        page.context.clear_cookies()
        login(page, brand.base, brand.keys[role], "en")
        for path in (
            "coupons",
            "campaigns",
            f"campaigns/{CAMPAIGN}",
            f"campaigns/{CAMPAIGN}/members?arm=treatment",
            f"campaigns/{CAMPAIGN}/members.csv?arm=treatment",
            "scenes",
            f"scenes/members?scene={SCENE}",
            "lotteries",
            f"lotteries/{POOL}",
        ):
            assert page.goto(f"{brand.base}/console/{path}").status == 403, (role, path)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_qr_codes_show_what_they_brought(
    brand: Brand, page: Any, seeded: dict[str, Any], lang: str
) -> None:
    login(page, brand.base, brand.keys["admin"], lang)
    page.click("nav.side a[data-page=scenes]")
    page.wait_for_load_state("load")
    knee = _knee(brand) or scene_report.DEFAULT_KNEE
    (row,) = scene_report.scene_report(brand.engine, brand.group, knee=knee, scenes=[SCENE])
    assert row.acquired == 11
    shown = page.locator(f"#scenes tr[data-scene={SCENE}]")
    assert int(shown.get_attribute("data-acquired")) == row.acquired
    assert int(shown.get_attribute("data-revenue")) == row.revenue_fen
    for k in range(1, knee + 1):
        cell = shown.locator(f"td[data-figure=reached-{k}]")
        assert int(cell.get_attribute("data-n")) == row.reached[k]
    star = page.locator(f"#star-members tr[data-member='{seeded['star']}']")
    assert int(star.get_attribute("data-brought")) == 5
    shoot(page, f"scenes-{lang}")
    # when the code is opened: its report
    shown.locator("td").first.locator("a").click()
    page.wait_for_load_state("load")
    assert page.locator("#scene-figures [data-figure=acquired]").get_attribute("data-n") == str(
        row.acquired
    )
    assert (
        int(page.locator(f"#reached tr[data-k='{knee}']").get_attribute("data-n"))
        == (row.reached[knee])
    )
    shoot(page, f"scene-report-{lang}")
    # and a count opens its members: those with at least k orders, the most k reached
    k = max(k for k in range(1, knee + 1) if row.reached[k])
    page.click(f"#reached-{k}")
    page.wait_for_load_state("load")
    expected = scene_report.acquired_members(brand.engine, brand.group, SCENE, k)
    assert int(page.locator("#list-summary").get_attribute("data-total")) == len(expected)
    assert sorted(ids_on(page)) == expected
    # and the star member's count opens the members it brought
    page.goto(f"{brand.base}/console/scenes")
    page.locator(f"#star-members tr[data-member='{seeded['star']}'] a.count").click()
    page.wait_for_load_state("load")
    brought = scene_report.referred_members(brand.engine, brand.group, seeded["star"])
    assert sorted(ids_on(page)) == brought and len(brought) == 5


def _knee(brand: Brand) -> int | None:
    raw = brand.one(
        "SELECT payload FROM analytics_snapshots WHERE group_id = :g AND kind = 'lifecycle' "
        "ORDER BY snapshot_id DESC LIMIT 1"
    )
    found = json.loads(raw).get("knee") if raw else None
    return found if isinstance(found, int) else None


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_lottery_pool_shows_its_prizes_and_passes_its_audit(
    brand: Brand, page: Any, seeded: dict[str, Any], lang: str
) -> None:
    with brand.engine.connect() as conn:
        pool = pools.load(conn, brand.group, POOL)
        counts = pools.draw_counts(conn, brand.group, POOL)
    login(page, brand.base, brand.keys["admin"], lang)
    page.click("nav.side a[data-page=lotteries]")
    page.wait_for_load_state("load")
    listed = page.locator(f"#pools tr[data-pool={POOL}]")
    assert int(listed.get_attribute("data-awarded")) == sum(p.awarded for p in pool.prizes)
    assert int(listed.get_attribute("data-units")) == 15
    assert ("免费抽奖" if lang == "zh" else "Free") in listed.inner_text()
    shoot(page, f"lotteries-{lang}")
    listed.locator("a").first.click()
    page.wait_for_load_state("load")
    for prize in pool.prizes:
        row = page.locator(f"#prizes tr[data-prize={prize.prize_code}]")
        assert int(row.get_attribute("data-awarded")) == prize.awarded
        assert int(row.get_attribute("data-units")) == prize.units
    draws = page.locator("#draws")
    assert int(draws.locator("[data-figure=won]").get_attribute("data-n")) == counts.get("won", 0)
    assert int(draws.locator("[data-figure=members]").get_attribute("data-n")) == 20
    # when the audit is run: every draw recomputed, as the service finds
    page.click("#run-audit")
    page.wait_for_load_state("load")
    checked = audit.verify(brand.engine, brand.group, POOL)
    result = page.locator("#audit-result")
    assert result.get_attribute("data-ok") == "1" and checked.ok
    assert int(result.get_attribute("data-draws")) == checked.draws == 20
    shoot(page, f"lottery-pool-{lang}")
    # and the winners' count opens the winners
    if counts.get("won"):
        page.click("#all-winners")
        page.wait_for_load_state("load")
        with brand.engine.connect() as conn:
            expected = pools.winners(conn, brand.group, POOL)
        assert sorted(ids_on(page)) == expected


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_campaigns_lottery_shows_its_draws_and_opens_its_winners(
    brand: Brand, page: Any, lucky: dict[str, list[int]], lang: str
) -> None:
    out = reports.report(brand.engine, brand.group, LUCKY)
    assert (out.draws, out.wins, out.winners) == (4, 4, 4)
    # when the campaign is opened
    login(page, brand.base, brand.keys["admin"], lang)
    page.goto(f"{brand.base}/console/campaigns/{LUCKY}")
    # then its lottery shows the report's draws, wins and winners, and names its pool
    row = page.locator(f"#lottery tr[data-pool={LUCKY_POOL}]")
    assert (row.get_attribute("data-draws"), row.get_attribute("data-wins")) == ("4", "4")
    assert int(page.locator("#winners").get_attribute("data-n")) == out.winners
    assert ("会员专享抽奖" if lang == "zh" else "Members' draw") in row.inner_text()
    shoot(page, f"campaign-lottery-{lang}")
    # and the winners' count opens exactly the members who won
    page.click("#winners")
    page.wait_for_load_state("load")
    expected = reports.members(brand.engine, brand.group, LUCKY, "treatment", "winners")
    assert expected == sorted(lucky["winners"])
    assert int(page.locator("#list-summary").get_attribute("data-total")) == len(expected)
    assert sorted(ids_on(page)) == expected
    assert sorted(int(r["member_id"]) for r in export(page)) == expected
    # and the pool's page says who may enter, linking back to the campaign
    page.goto(f"{brand.base}/console/lotteries/{LUCKY_POOL}")
    facts = page.locator("#pool-facts").inner_text()
    assert ("活动抽奖" if lang == "zh" else "Campaign members") in facts
    page.click("#pool-campaign")
    page.wait_for_load_state("load")
    assert page.locator("#campaign-name").get_attribute("data-campaign") == LUCKY


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_no_marketing_page_shows_a_code_without_its_label(
    brand: Brand, page: Any, seeded: dict[str, Any], lucky: dict[str, list[int]], lang: str
) -> None:
    scanner = Scanner(lang, known_codes())
    login(page, brand.base, brand.keys["admin"], lang)
    bad: dict[str, Any] = {}
    for path in (
        "/console/coupons",
        "/console/campaigns",
        f"/console/campaigns/{CAMPAIGN}",
        f"/console/campaigns/{NO_HOLDOUT}",
        f"/console/campaigns/{CAMPAIGN}/members?arm=holdout&who=buyers",
        "/console/scenes",
        f"/console/scenes/report?scene={SCENE}",
        "/console/lotteries",
        f"/console/lotteries/{POOL}?audit=1",
        f"/console/campaigns/{LUCKY}",
        f"/console/campaigns/{LUCKY}/members?arm=treatment&who=winners",
        f"/console/lotteries/{LUCKY_POOL}",
    ):
        assert page.goto(f"{brand.base}{path}").status == 200, path
        for where, text in page_strings(page).items():
            codes = scanner.untranslated(text)
            if codes:
                bad[f"{path} {where}"] = sorted(codes)
    assert not bad, json.dumps(bad, ensure_ascii=False, indent=1)
