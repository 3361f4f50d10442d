"""The demo's experiment table, as the reader of `make demo` sees it."""

from __future__ import annotations

from datetime import datetime

import pytest
from rich.console import Console

from siyu.demo.experiment import DemoExperiment, TrueEffect
from siyu.demo.summary import print_experiment
from siyu.experiments.stats import Estimate


def _effect(metric: str, true: float, low: float, high: float, before: float) -> TrueEffect:
    """One metric's figures; the relative ones over an untreated mean of `base`."""
    base = 500.0 if metric == "revenue_fen" else 0.05
    absolute = Estimate(before + true, (high - low) / 3.92, low, high, 0.01)
    relative = Estimate(*(x / base for x in (before + true, (high - low) / 3.92, low, high)), 0.01)
    return TrueEffect(metric, true, true / base, relative, absolute, before)


def _run(*effects: TrueEffect) -> DemoExperiment:
    run = DemoExperiment("NEW1-COMEBACK", "new_1", datetime(2025, 11, 30), 30, 0.1)
    run.arms, run.effects = {"control": 135, "coupon": 145}, list(effects)
    return run


@pytest.mark.parametrize(
    ("lang", "words"),
    [("en", ["already differed by +8.1%", "the true +8.3%"]), ("zh", ["已相差 +8.1%"])],
)
def test_a_missed_interval_is_explained_by_the_draw(lang: str, words: list[str]) -> None:
    # given a run whose arms differed by 8.1 points before the coupon, so that the
    # repurchase interval misses the true 8.3 points (and revenue's, by the same draw)
    run = _run(
        _effect("repurchase", 0.083, 0.093, 0.234, 0.081),
        _effect("revenue_fen", 369.86, 400.0, 1583.9, 600.42),
    )
    out = Console(record=True, width=200)
    # when the table is printed
    print_experiment(out, run, lang)
    text = out.export_text()
    # then one line says why, in the table's units, once for the draw
    for w in words:
        assert w in text
    assert text.count("--seed") == 1


def test_no_explanation_when_every_interval_holds_the_truth() -> None:
    run = _run(_effect("revenue_fen", 369.86, -55.3, 1288.0, 40.0))
    out = Console(record=True, width=200)
    print_experiment(out, run, "en")
    text = out.export_text()
    assert "✓" in text and "--seed" not in text
