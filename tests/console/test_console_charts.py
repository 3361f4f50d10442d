"""Each chart's labels and values are the data's: the option JSON a page hands to ECharts is
read back and compared with the snapshot and the store (names, figures, ¥ and thousands
separators), and the page is shot so a person can look at it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.console.conftest import ARTIFACTS, Brand, coloured, login, shoot
from tests.console.test_console_pages import snapshot


def option(page: Any, chart: str) -> dict[str, Any]:
    """The option JSON block of chart `chart` on the open page."""
    parsed: dict[str, Any] = json.loads(page.locator(f"script#{chart}").inner_text())
    return parsed


def shoot_chart(page: Any, chart: str, name: str) -> None:
    """The chart alone, at full size, for a person to read its labels."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator(f"#chart-{chart}").screenshot(path=str(ARTIFACTS / f"chart-{name}.png"))


def yuan(fen: int) -> str:
    """How a chart labels money: whole yuan (half up), ¥ and thousands separators."""
    return f"¥{(fen + 50) // 100:,}"


def pct(rate: float) -> str:
    """How a chart labels a rate: the plotted percentage, one decimal."""
    return f"{round(rate * 100, 1):.1f}%"


def labels(series: dict[str, Any]) -> list[str]:
    return [d["label"]["formatter"] for d in series["data"]]


def open_page(page: Any, brand: Brand, name: str, lang: str = "en") -> None:
    login(page, brand.base, brand.keys["admin"], lang)
    page.goto(f"{brand.base}/console/{name}")
    page.wait_for_load_state("load")
    drawn = coloured(page)
    assert all(n > 30 for n in drawn.values()), drawn


def test_the_knee_is_marked_on_its_point_without_covering_a_label(brand: Brand, page: Any) -> None:
    # given the lifecycle snapshot and its knee
    life = snapshot(brand, "lifecycle")
    knee = life["knee"]
    # when the admin opens the retention page
    open_page(page, brand, "retention")
    shoot(page, "chart-retention")
    shoot_chart(page, "retention-curve", "retention-knee")
    curve = option(page, "retention-curve")["series"][0]
    # then no pin is drawn over the curve's points (a pin sat on the knee's label)
    assert "markPoint" not in curve
    assert curve["markLine"]["data"] == [{"xAxis": str(knee)}]
    # and every point is labelled with its rate, the knee's in the knee's colour, beside
    # the point rather than above it, where the knee's dashed line runs
    for row, point in zip(life["curve"], curve["data"], strict=True):
        assert point["value"] == round(row["rate"] * 100, 1)
        assert point["label"]["formatter"] == pct(row["rate"])
    at_knee = curve["data"][[r["k"] for r in life["curve"]].index(knee)]
    assert at_knee["label"]["position"] in ("left", "right")
    assert at_knee["label"]["backgroundColor"] == "#fff"
    assert at_knee["itemStyle"]["color"] == curve["markLine"]["lineStyle"]["color"]


@pytest.mark.parametrize(("name", "chart"), [("retention", "stages"), ("rfm", "rfm-segments")])
def test_small_bars_keep_a_readable_label_outside_the_bar(
    brand: Brand, page: Any, name: str, chart: str
) -> None:
    # given a page whose bars range from a handful of members to over a thousand
    open_page(page, brand, name)
    shoot_chart(page, chart, chart)
    bars = option(page, chart)["series"][0]
    # then each label sits outside its bar (a label inside a 3-pixel bar is unreadable),
    # a bar of a few members still shows, and counts carry thousands separators
    assert bars["label"]["position"] in ("top", "right")
    assert bars["barMinHeight"] >= 3
    assert labels(bars) == [f"{d['value']:,}" for d in bars["data"]]
    assert any(d["value"] >= 1000 for d in bars["data"])


def test_the_store_chart_ranks_stores_only_every_name_shown_with_yuan(
    brand: Brand, page: Any
) -> None:
    # given the store's catalogue: shops and counters, and the warehouses that ship online
    kinds = {str(r.store_id): (r.name, r.kind) for r in brand.all(
        "SELECT store_id, name, kind FROM stores WHERE group_id = :g"
    )}  # fmt: skip
    warehouses = {sid for sid, (_, kind) in kinds.items() if kind == "warehouse"}
    assert warehouses, "the demo has warehouses"
    stores = snapshot(brand, "stores")["stores"]
    # then the snapshot ranks stores and counters only
    assert stores and not {s["store_id"] for s in stores} & warehouses
    assert {s["kind"] for s in stores} <= {"store", "counter"}
    # when the admin opens the stores page
    open_page(page, brand, "stores")
    shoot_chart(page, "store-sales", "store-sales")
    shoot_chart(page, "store-trend", "store-trend")
    chart = option(page, "store-sales")
    top = stores[:20]
    # then the chart names every one of the top stores (none skipped, none a warehouse)
    axis = chart["yAxis"]
    assert axis["data"] == [s["name"] for s in top]
    assert axis["axisLabel"]["interval"] == 0
    assert not set(axis["data"]) & {kinds[w][0] for w in warehouses}
    # long names are cut with an ellipsis on the axis and told in full in the tooltip
    assert axis["axisLabel"]["overflow"] == "truncate"
    bars = chart["series"][0]
    assert [d["name"] for d in bars["data"]] == [s["name"] for s in top]
    # and the sales are the snapshot's, labelled ¥ with separators, the axis too
    assert [d["value"] for d in bars["data"]] == [round(s["sales_fen"] / 100, 2) for s in top]
    assert labels(bars) == [yuan(s["sales_fen"]) for s in top]
    assert chart["xAxis"]["axisLabel"]["formatter"] == "¥{value}"
    assert chart["tooltip"]["valueFormatter"] == "cny"
    # and the store table lists no warehouse either
    rows = {r.get_attribute("data-store") for r in page.locator("#stores tbody tr").all()}
    assert rows and not rows & warehouses
    # and the trend's legend names its stores, not their ids
    trend = option(page, "store-trend")
    assert [s["name"] for s in trend["series"]] == [s["name"] for s in top[:5]]


def test_money_is_formatted_as_yuan_with_separators(brand: Brand, page: Any) -> None:
    # given the page's formatter hook, which the option JSON names ("cny")
    open_page(page, brand, "overview")
    chart = option(page, "sales-by-channel")
    assert chart["tooltip"]["valueFormatter"] == "cny"
    assert chart["yAxis"]["axisLabel"]["formatter"] == "¥{value}"
    assert option(page, "trend-sales")["tooltip"]["valueFormatter"] == "cny"
    # then the hook writes yuan as the tables do: ¥, separators, fen
    formatted = page.evaluate("[182657.18, 0.5, 1234567, null].map(siyuFormat.cny)")
    assert formatted == ["¥182,657.18", "¥0.50", "¥1,234,567.00", "-"]
    assert page.evaluate("[1381, 0.456].map(siyuFormat.int)") == ["1,381", "0"]
    # and the channel mix's pie says its sales in yuan too
    shoot_chart(page, "sales-by-channel", "sales-by-channel")
    page.goto(f"{brand.base}/console/channels")
    assert option(page, "channel-sales")["tooltip"]["valueFormatter"] == "cny"


def test_guides_are_told_apart_by_store_and_ranked_with_yuan(brand: Brand, page: Any) -> None:
    # given the guides snapshot and the catalogue's store names
    guides = snapshot(brand, "guides")["guides"][:20]
    names = dict(brand.all("SELECT store_id, name FROM stores WHERE group_id = :g"))
    # when the admin opens the guide leaderboard
    open_page(page, brand, "guides")
    shoot_chart(page, "guide-ranking", "guide-ranking")
    chart = option(page, "guide-ranking")
    shown = chart["yAxis"]["data"]
    # then every guide has a label of its own: nickname · store, with the id where those
    # two still collide
    assert len(set(shown)) == len(shown) == len(guides)
    for label, g in zip(shown, guides, strict=True):
        assert label.startswith(f"{g['alias']} · {names[g['store_id']]}"), (label, g)
        assert g["guide_id"] in label or shown.count(label) == 1
    aliases = [g["alias"] for g in guides]
    assert len(set(aliases)) < len(aliases), "the demo has guides sharing a nickname"
    assert chart["yAxis"]["axisLabel"]["interval"] == 0
    bars = chart["series"][0]
    assert labels(bars) == [yuan(g["sales_fen"]) for g in guides]


def test_the_cohort_heatmap_scales_to_the_data_and_leaves_unreached_months_empty(
    brand: Brand, page: Any
) -> None:
    # given the cohorts of the last 12 months
    cohorts = snapshot(brand, "kpis")["cohorts"][-12:]
    # when the admin opens the cohorts page
    open_page(page, brand, "cohorts")
    shoot(page, "chart-cohorts")
    shoot_chart(page, "cohort-heatmap", "cohort-heatmap")
    chart = option(page, "cohort-heatmap")
    cells = {
        (c["value"][0], c["value"][1]): c for s in chart["series"] for c in s["data"]
    }  # fmt: skip
    months = chart["xAxis"]["data"]
    # then the scale ends at the largest rate after the first month (month 0 is 100% by
    # definition and would wash the rest out)
    later = [r for c in cohorts for r in c["rates"][1:] if r is not None]
    assert chart["visualMap"]["max"] == round(max(later) * 100, 1)
    assert chart["visualMap"]["min"] == 0
    assert max(later) < 0.5
    # and a cell is drawn for each month the data has reached, labelled as a percentage,
    # none for months after the data's end, and no tinted background stands in for them
    assert months[0] == "Month 1"
    for y, c in enumerate(cohorts):
        for m in range(1, len(months) + 1):
            cell = cells.get((m - 1, y))
            if m < len(c["rates"]):
                assert cell is not None, (c["cohort"], m)
                assert cell["value"][2] == round(c["rates"][m] * 100, 1)
                assert cell["label"]["formatter"] == pct(c["rates"][m])
            else:
                assert cell is None, (c["cohort"], m)
    assert not chart["xAxis"].get("splitArea", {}).get("show")
    assert not chart["yAxis"].get("splitArea", {}).get("show")


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_no_funnel_is_drawn_for_a_channel_whose_steps_are_not_observed(
    brand: Brand, page: Any, lang: str
) -> None:
    # given the funnel per channel: Tmall and JD hand over orders, not browsing or carts
    funnels = {f["channel"]: f["steps"] for f in snapshot(brand, "kpis")["funnel"]}
    for channel in ("tmall", "jd"):
        steps = {s["step"]: s["members"] for s in funnels[channel]}
        assert steps["order"] > 0 and steps["view"] == steps["add_to_cart"] == 0, steps
    # when the admin opens the funnel page
    open_page(page, brand, "funnel", lang)
    shoot(page, f"chart-funnel-{lang}")
    # then those channels say there is no funnel data, with no chart
    said = {"zh": "该渠道没有漏斗数据", "en": "No funnel data for this channel"}[lang]
    for channel in ("tmall", "jd"):
        section = page.locator(f"section[data-channel={channel}]")
        assert section.locator(".chart").count() == 0
        assert said in section.inner_text()
    # and the channels whose every step is seen keep theirs, in the data's numbers
    for channel in ("miniprogram", "douyin"):
        chart = option(page, f"funnel-{channel}")
        values = [d["value"] for d in chart["series"][0]["data"]]
        assert values == [s["members"] for s in funnels[channel]]
        assert values[0] > values[-1] > 0
