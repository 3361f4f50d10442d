"""The demo's stage experiment as HQ reads it in Chromium (issue #18's acceptance): the
demo assigned the members at `new_1` 30 days before the data's end, the generator's
second phase made a known share of the treated come back, and the console's experiment
page reports a lift whose 95% interval contains that true effect.

The truth is the generator's (`DemoResult.experiment`), counted from the orders it wrote,
not from anything the console or the experiment service computed; the figures checked
are the ones on the page, as shown and in its data attributes."""

from __future__ import annotations

import re
from typing import Any

from tests.console.conftest import Brand, login, shoot

from siyu.demo.experiment import CODE, TREATMENT


def _percent(shown: str) -> float:
    return float(shown.replace("%", "").replace("+", "").replace("−", "-")) / 100


def test_the_console_reports_a_lift_whose_interval_contains_the_true_effect(
    brand: Brand, page: Any
) -> None:
    run = brand.demo.experiment
    assert run is not None, "the demo brand ran no stage experiment"
    # given the generator made some treated members come back, and nobody else
    assert run.answered > 0 and run.arms[TREATMENT] > 0
    truth = {e.metric: e for e in run.effects}
    assert set(truth) == {"repurchase", "next_order", "revenue_fen"}
    # when HQ opens the experiment in the console
    login(page, brand.base, brand.keys["admin"])
    page.goto(f"{brand.base}/console/experiments/{CODE}")
    shoot(page, "demo-experiment-zh")
    for metric, effect in truth.items():
        row = page.locator(f"#m-all-{metric} tr[data-variant='{TREATMENT}']")
        low = float(row.get_attribute("data-ci-low"))
        high = float(row.get_attribute("data-ci-high"))
        # then the page's interval for the lift holds the true relative effect ...
        assert low <= effect.relative <= high, (metric, low, effect.relative, high)
        # ... as the figures a person reads say too (rounded as shown)
        cells = row.locator("td.num").all_inner_texts()
        shown = next(c for c in cells if "…" in c)
        shown_low, shown_high = (_percent(x.strip()) for x in shown.split("…"))
        assert shown_low - 0.001 <= effect.relative <= shown_high + 0.001, (metric, shown)
        assert re.search(r"\d", shown)
