"""HQ opens every page in both languages: the numbers are the store's and the snapshot's,
every chart draws, and the phone layout collapses the navigation."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from tests.console.conftest import Brand, coloured, login, shoot

HQ_PAGES = (
    "overview",
    "retention",
    "cohorts",
    "rfm",
    "funnel",
    "channels",
    "members",
    "guides",
    "stores",
)
TITLES = {
    "zh": {"overview": "总览", "retention": "复购留存", "rfm": "RFM 分层", "stores": "门店"},
    "en": {
        "overview": "Overview",
        "retention": "Retention",
        "rfm": "RFM layers",
        "stores": "Stores",
    },
}


def snapshot(brand: Brand, kind: str) -> dict[str, Any]:
    raw = brand.one(
        "SELECT payload FROM analytics_snapshots WHERE group_id = :g AND kind = :k "
        "ORDER BY snapshot_id DESC LIMIT 1",
        k=kind,
    )
    payload: dict[str, Any] = json.loads(raw)
    return payload


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_admin_opens_every_page_and_every_chart_draws(brand: Brand, page: Any, lang: str) -> None:
    # given an admin logged in through the form
    login(page, brand.base, brand.keys["admin"], lang)
    assert page.url.endswith("/console/overview")
    for name in HQ_PAGES:
        # when each page of the navigation is opened
        page.click(f"nav.side a[data-page={name}]")
        page.wait_for_load_state("load")
        # then it answers in the chosen language, with no error
        assert page.url.endswith(f"/console/{name}"), page.url
        assert page.locator("html").get_attribute("lang") == ("zh-CN" if lang == "zh" else "en")
        if name in TITLES[lang]:
            assert TITLES[lang][name] in page.locator("h1").inner_text()
        # and every chart on it has drawn its series (coloured pixels on the canvas)
        drawn = coloured(page)
        for chart, pixels in drawn.items():
            assert pixels > 30, f"{name}: chart {chart} is blank ({pixels} coloured pixels)"
        if name != "members":
            assert drawn, f"{name} has no chart"
        shoot(page, f"admin-{name}-{lang}")


def test_overview_shows_the_stores_numbers(brand: Brand, page: Any) -> None:
    # given the snapshot the demo computed
    sales = snapshot(brand, "sales")
    kpis = snapshot(brand, "kpis")
    as_of = sales["as_of"].replace("T", " ")  # compared with the stored text's seconds
    # when the admin opens the overview
    login(page, brand.base, brand.keys["admin"], "en")

    def raw(metric: str) -> str:
        return str(page.locator(f"[data-metric={metric}]").get_attribute("data-raw"))

    # then members are the store's members not merged away, joined by the end of the data
    members = brand.one(
        "SELECT COUNT(*) FROM members WHERE group_id = :g AND status = 'active' "
        "AND substr(registered_at, 1, 19) <= :t",
        t=as_of,
    )
    assert int(raw("members")) == members
    shown = page.locator("[data-metric=members]").inner_text()
    assert shown == f"{members:,}"
    # and the month's sales are the store's paid orders of that month
    month = sales["months"][-1]
    paid = brand.one(
        "SELECT SUM(o.paid_fen) FROM orders o JOIN identities i ON i.identity_id = "
        "o.buyer_identity_id WHERE o.group_id = :g AND o.status <> 'cancelled' AND "
        "i.member_id IS NOT NULL AND substr(o.ordered_at, 1, 19) <= :t "
        "AND substr(o.ordered_at, 1, 7) = :m",
        t=as_of,
        m=month,
    )
    assert int(raw("sales")) == paid
    yuan, fen = divmod(paid, 100)
    assert page.locator("[data-metric=sales]").inner_text() == f"¥{yuan:,}.{fen:02d}"
    # and the repurchase rate is the snapshot's KPI, as a percentage
    rate = kpis["repurchase"][-1]["repeat_rate"]
    assert page.locator("[data-metric=repurchase]").inner_text() == f"{rate * 100:.1f}%"
    assert re.search(r"Data as of \d{4}-\d\d-\d\d", page.locator(".as-of").inner_text())
    # and a rate with no monthly series says what it is a rate of, and when
    buyers = kpis["enrollment"]["non_member_buyers"]
    note = page.locator("[data-kpi=enrollment] .card-note").inner_text()
    day = as_of[:10]
    assert note.endswith(f"base: {buyers:,} · as of {day}")
    # and the month's sales name their month and the data's last day, never "this month"
    sales_card = page.locator("[data-kpi=sales]").inner_text()
    assert f"{month} (to {day})" in sales_card and "this month" not in sales_card.lower()
    assert month == day[:7]
    for key in ("members", "active"):
        assert page.locator(f"[data-kpi={key}] .card-note").inner_text().endswith(f"as of {day}")


def test_channel_mix_counts_the_stores_orders(brand: Brand, page: Any) -> None:
    login(page, brand.base, brand.keys["analyst"], "en")
    page.goto(f"{brand.base}/console/channels")
    as_of = snapshot(brand, "kpis")["as_of"].replace("T", " ")
    expected = dict(
        brand.all(
            "SELECT o.channel, COUNT(*) FROM orders o JOIN identities i ON i.identity_id = "
            "o.buyer_identity_id WHERE o.group_id = :g AND o.status <> 'cancelled' "
            "AND i.member_id IS NOT NULL AND substr(o.ordered_at, 1, 19) <= :t GROUP BY o.channel",
            t=as_of,
        )
    )
    shown = {
        row.get_attribute("data-channel"): int(
            row.locator("[data-orders]").get_attribute("data-orders")
        )
        for row in page.locator("#channels tbody tr").all()
    }
    assert shown == expected
    # and what is labelled a share adds up to 100%; member reach, which overlaps, is
    # labelled apart and said to
    for share in ("order", "sales"):
        cells = page.locator(f"#channels [data-share={share}]").all()
        total = sum(float(str(c.get_attribute("data-raw"))) for c in cells)
        assert abs(total - 1) < 1e-5, (share, total)
    headers = page.locator("#channels thead th").all_inner_texts()
    assert headers == [
        "Channel", "Orders", "Order share", "Sales", "Sales share", "Members", "Reach"
    ]  # fmt: skip
    reach = sum(
        float(str(c.get_attribute("data-reach"))) for c in page.locator("[data-reach]").all()
    )
    note = page.locator("#channels-note").inner_text()
    assert reach > 1 and "adds up to more than 100%" in note and "cancelled" in note


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_rfm_layers_and_lifecycle_stages_have_distinct_names_and_shown_definitions(
    brand: Brand, page: Any, lang: str
) -> None:
    login(page, brand.base, brand.keys["admin"], lang)
    page.goto(f"{brand.base}/console/retention")
    stage_names = {
        c.split(" · ")[-1] for c in page.locator("#stages tbody td:first-child").all_inner_texts()
    }
    definitions = page.locator("#stage-definitions").inner_text()
    assert ("120" in definitions) and ("61" in definitions)
    page.goto(f"{brand.base}/console/rfm")
    rows = page.locator("#segments tbody tr").all()
    segment_names = {r.locator("td").nth(0).inner_text() for r in rows}
    # then no RFM layer is called what a lifecycle stage is called
    assert segment_names and not segment_names & stage_names, (segment_names, stage_names)
    # and each layer shows its rule, and the page says how recency relates to "lapsed"
    rules = {r.get_attribute("data-segment"): r.locator("td").nth(1).inner_text() for r in rows}
    assert rules.get("vip") == "R 4–5 · F 4–5 · M 4–5", rules
    assert rules.get("dormant") == "R 1–2 · F 1–2", rules
    assert "120" in page.locator("main").inner_text()


def test_retention_marks_the_knee_and_lists_its_stages(brand: Brand, page: Any) -> None:
    login(page, brand.base, brand.keys["admin"], "en")
    page.goto(f"{brand.base}/console/retention")
    knee = brand.demo.lifecycle.knee_found if brand.demo.lifecycle else None
    assert knee is not None
    assert page.locator(".knee").get_attribute("data-knee") == str(knee)
    assert page.locator("tr.knee-row td").first.inner_text() == f"{knee} ◀"
    option = json.loads(page.locator("script#retention-curve").inner_text())
    assert option["series"][0]["markLine"]["data"] == [{"xAxis": str(knee)}]
    # the stages shown are the ones written to member_stages
    stored = dict(
        brand.all("SELECT stage, COUNT(*) FROM member_stages WHERE group_id = :g GROUP BY stage")
    )
    for row in page.locator("#stages tbody tr").all():
        stage = row.get_attribute("data-stage")
        assert int(row.locator("[data-members]").get_attribute("data-members")) == stored.get(
            stage, 0
        )


def test_language_switch_is_on_every_page_and_sticks(brand: Brand, page: Any) -> None:
    login(page, brand.base, brand.keys["admin"], "zh")
    page.goto(f"{brand.base}/console/rfm")
    assert "RFM 分层" in page.locator("h1").inner_text()
    page.click("a.lang")
    assert "RFM layers" in page.locator("h1").inner_text()
    page.goto(f"{brand.base}/console/stores")  # the cookie keeps the choice
    assert page.locator("h1").inner_text() == "Stores"


def test_pages_answer_with_a_strict_policy_and_no_caching(brand: Brand, page: Any) -> None:
    login(page, brand.base, brand.keys["admin"], "en")
    response = page.goto(f"{brand.base}/console/overview")
    headers = response.headers
    assert headers["cache-control"] == "no-store"
    assert "default-src 'self'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    # no inline script: every script is the bundle or a JSON data block
    scripts = page.locator("script").all()
    for s in scripts:
        assert s.get_attribute("src") == "/console/static/console.js" or (
            s.get_attribute("type") == "application/json"
        )
