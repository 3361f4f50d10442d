"""The knee finder recovers the generator's true knee, and reads the evidence soberly:
thin points do not count, a flat curve has no knee."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.analytics.data import generated_orders

from siyu.analytics.engines import connect, load_orders
from siyu.analytics.knee import find_knee
from siyu.analytics.retention import RetentionRow, retention_counts, retention_rows
from siyu.demo.config import GeneratorConfig
from siyu.errors import ValidationError


@pytest.mark.parametrize(
    ("knee", "churn_before", "churn_after", "members"),
    [
        (3, (0.7, 0.55), 0.15, 6_000),
        (4, (0.8, 0.5), 0.15, 8_000),
        (5, (0.65, 0.45), 0.12, 8_000),
        (6, (0.6, 0.4), 0.1, 8_000),
    ],
)
def test_both_methods_recover_the_generated_knee(
    tmp_path: Path, knee: int, churn_before: tuple[float, float], churn_after: float, members: int
) -> None:
    # given a brand generated with a known knee (the curves of tests/demo)
    config = GeneratorConfig(
        members=members, knee=knee, churn_before=churn_before, churn_after=churn_after
    )
    orders, truth = generated_orders(tmp_path, config)
    window = truth["retention_window"]["recommended_days"]
    # when retention by order count is computed on DuckDB with the recommended window
    con = connect("duckdb")
    df = con.execute(retention_counts(load_orders(con, orders), window, 12))
    rows = retention_rows(df, 12)
    # then the largest supported jump and Kneedle both sit at the true knee
    jump = find_knee(rows, "jump")
    assert jump.k == knee, jump.to_json()
    assert find_knee(rows, "kneedle").k == knee
    # and the jump there is large, not a coin flip between neighbours
    jumps = sorted((p.jump for p in jump.points if p.jump is not None), reverse=True)
    assert jumps[0] > 0.2 and jumps[0] > 2 * jumps[1]


def curve(rates: list[float], eligible: list[int]) -> list[RetentionRow]:
    return [
        RetentionRow(k, e, e, round(r * e), r, None, None)
        for k, (r, e) in enumerate(zip(rates, eligible, strict=True), start=1)
    ]


def test_thin_points_cannot_make_a_knee() -> None:
    # given a real step at k=3 and a bigger jump at k=7 made by 12 members
    rows = curve([0.2, 0.3, 0.7, 0.72, 0.7, 0.5, 0.95], [5000, 1200, 400, 300, 120, 40, 12])
    # when the knee is found with the default support (30 members)
    knee = find_knee(rows)
    # then k=7 is unsupported and the knee is the real step
    assert knee.k == 3
    assert [p.supported for p in knee.points] == [True] * 6 + [False]
    assert knee.points[6].jump is None
    # and with support 1 the thin point would win: the rule is what protects the answer
    assert find_knee(rows, min_support=1).k == 7


def test_a_flat_or_falling_curve_has_no_knee() -> None:
    assert find_knee([]).k is None and find_knee([]).points == ()
    assert find_knee(curve([0.5, 0.5, 0.5], [100, 100, 100])).k is None
    assert find_knee(curve([0.6, 0.5, 0.4], [100, 100, 100])).k is None
    assert find_knee(curve([0.6, 0.5, 0.4], [100, 100, 100]), "kneedle").k is None


def test_ties_go_to_the_earlier_stage() -> None:
    assert find_knee(curve([0.2, 0.4, 0.6, 0.6], [100, 100, 100, 100])).k == 2


def test_bad_parameters_name_the_field() -> None:
    with pytest.raises(ValidationError, match=r"^method: "):
        find_knee([], "elbow")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"^min_support: "):
        find_knee([], min_support=0)
