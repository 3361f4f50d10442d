"""RFM on five members whose scores and segments are worked out by hand, on every engine."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from ibis import BaseBackend
from tests.analytics.data import orders_table

from siyu.analytics.engines import load_orders
from siyu.analytics.rfm import RFMConfig, SegmentRule, rfm_scores, rfm_values
from siyu.errors import ValidationError

ORDERS = [
    ("m1-1", "M1", "2024-03-01T00:00:00", 50_000),
    ("m1-2", "M1", "2024-02-20T00:00:00", 50_000),
    ("m1-3", "M1", "2024-02-01T00:00:00", 50_000),
    ("m1-4", "M1", "2024-01-10T00:00:00", 50_000),
    ("m2-1", "M2", "2024-02-25T00:00:00", 10_000),
    ("m2-2", "M2", "2024-02-10T00:00:00", 10_000),
    ("m2-3", "M2", "2024-01-01T00:00:00", 10_000),
    ("m3-1", "M3", "2024-02-15T00:00:00", 300_000),
    ("m4-1", "M4", "2023-12-01T00:00:00", 20_000),
    ("m4-2", "M4", "2023-11-01T00:00:00", 20_000),
    ("m4-3", "M4", "2023-10-01T00:00:00", 20_000),
    ("m5-1", "M5", "2023-06-01T00:00:00", 5_000),
]


def scored(con: BaseBackend, config: RFMConfig, **kwargs: Any) -> dict[str, tuple[Any, ...]]:
    table = load_orders(con, orders_table(ORDERS))
    df = con.execute(rfm_scores(rfm_values(table, **kwargs), config))
    return {
        r["member_id"]: (
            int(r["recency_days"]),
            int(r["frequency"]),
            int(r["monetary_fen"]),
            int(r["r"]),
            int(r["f"]),
            int(r["m"]),
            r["segment"],
        )
        for r in df.to_dict("records")
    }


def test_default_layers_and_segments(con: BaseBackend) -> None:
    # given five members, T_end = 2024-03-01 (M1's last order)
    # when they are scored with the default (auto) layering
    got = scored(con, RFMConfig())
    # then recency is on the lifecycle's day edges (30/60/120/365: M4, 91 days silent,
    # scores 3, the at-risk window; M5, 274 days, scores 2, lapsed); frequency is on
    # order counts (2/3/5/8), because two members share each of one and three orders,
    # more than a fifth of five; money is on quantiles (all distinct); and each default
    # value layer gets the member it was written for
    assert got == {
        "M1": (0, 4, 200_000, 5, 3, 4, "regular"),
        "M2": (5, 3, 30_000, 5, 3, 2, "regular"),
        "M3": (15, 1, 300_000, 5, 1, 5, "develop"),
        "M4": (91, 3, 60_000, 3, 3, 3, "regular"),
        "M5": (274, 1, 5_000, 2, 1, 1, "dormant"),
    }


def test_quantile_layers(con: BaseBackend) -> None:
    # when they are scored in quantile layers
    got = scored(con, RFMConfig(layering="quantile"))
    # then scores are 1 + 5 x (share strictly worse): ties share the lower score
    # (M3 and M5 bought once: f=1; M2 and M4 three times: f=3)
    assert got == {
        "M1": (0, 4, 200_000, 5, 5, 4, "vip"),
        "M2": (5, 3, 30_000, 4, 3, 2, "regular"),
        "M3": (15, 1, 300_000, 3, 1, 5, "develop"),
        "M4": (91, 3, 60_000, 2, 3, 3, "win_back"),
        "M5": (274, 1, 5_000, 1, 1, 1, "dormant"),
    }


def test_threshold_layers(con: BaseBackend) -> None:
    # when scored on the default thresholds (30/60/120/365 days, 2/3/5/8 orders,
    # 100/300/1,000/3,000 CNY)
    got = scored(con, RFMConfig(layering="threshold"))
    # then each value scores 1 + the edges it reaches
    assert {m: v[3:] for m, v in got.items()} == {
        "M1": (5, 3, 4, "regular"),
        "M2": (5, 3, 3, "regular"),
        "M3": (5, 1, 5, "develop"),
        "M4": (3, 3, 3, "regular"),
        "M5": (2, 1, 1, "dormant"),
    }


def _one_order_each(days_silent: list[int], extra: dict[str, int] | None = None) -> list[Any]:
    """Members m0, m1, ... with one order `days_silent[i]` days before 2024-03-01, and
    `extra` members with that many orders each, the last on 2024-03-01."""
    end = datetime(2024, 3, 1)
    rows = [
        (f"o{i}", f"m{i}", (end - timedelta(days=d)).isoformat(), 5_000 + i)
        for i, d in enumerate(days_silent)
    ]
    for member, count in (extra or {}).items():
        rows += [
            (f"{member}-{k}", member, (end - timedelta(days=20 * k)).isoformat(), 8_000)
            for k in range(count)
        ]
    return rows


def scored_rows(con: BaseBackend, rows: list[Any], config: RFMConfig) -> dict[str, Any]:
    df = con.execute(rfm_scores(rfm_values(load_orders(con, orders_table(rows))), config))
    return {r["member_id"]: r for r in df.to_dict("records")}


def test_frequency_keeps_its_order_counts_when_most_members_buy_once(con: BaseBackend) -> None:
    # given ten members, eight of whom bought once (as on real retail data), one twice
    # and one five times
    rows = _one_order_each([10] * 8, {"two": 2, "five": 5})
    # when scored on quantiles, one order scores 1 and anything more scores 5: two bands
    quantile = scored_rows(con, rows, RFMConfig(layering="quantile"))
    assert {int(r["f"]) for r in quantile.values()} == {1, 5}
    # then the default scores frequency by order counts: three bands, in order
    got = scored_rows(con, rows, RFMConfig())
    assert int(got["m0"]["f"]) == 1 and int(got["two"]["f"]) == 2 and int(got["five"]["f"]) == 4


def test_a_member_silent_for_years_is_never_active_looking(con: BaseBackend) -> None:
    # given a base where most members are long gone: one order each, 700 down to 0 days ago
    silent = [700, 650, 600, 550, 519, 500, 400, 300, 10, 0]
    rows = _one_order_each(silent)
    # when scored on quantiles, the member silent 519 days is in the middle layer (r=3)
    quantile = scored_rows(con, rows, RFMConfig(layering="quantile"))
    assert int(quantile["m4"]["r"]) == 3
    # then by default recency is in days: silent more than a year scores 1, more than the
    # lifecycle's 120 days at most 2, and such a one-order member is dormant
    got = scored_rows(con, rows, RFMConfig())
    for i, days in enumerate(silent):
        r = int(got[f"m{i}"]["r"])
        assert (r == 1) == (days > 365) and (r <= 2) == (days > 120), (days, r)
        assert got[f"m{i}"]["segment"] == ("dormant" if days > 120 else "develop")


def test_segments_are_configurable_and_first_match_wins(con: BaseBackend) -> None:
    # given a brand's own mapping: big spenders first, then anyone recent
    config = RFMConfig(
        segments=(SegmentRule("whale", monetary=(5, 5)), SegmentRule("recent", recency=(4, 5))),
        fallback="rest",
    )
    # when scored
    got = {m: v[-1] for m, v in scored(con, config).items()}
    # then M3 (m=5) is a whale before anything else, M1 and M2 are recent
    assert got == {"M1": "recent", "M2": "recent", "M3": "whale", "M4": "rest", "M5": "rest"}
    assert config.segment_names() == ["whale", "recent", "rest"]


def test_as_of_ignores_later_orders(con: BaseBackend) -> None:
    # when scored as of 2024-02-20 noon
    got = scored(con, RFMConfig(), t_end=datetime(2024, 2, 20, 12))
    # then M1's and M2's later orders do not exist yet, and recency counts whole days
    assert got["M1"][:3] == (0, 3, 150_000)
    assert got["M2"][:3] == (10, 2, 20_000)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"layering": "kmeans"}, "layering"),
        ({"scores": 1}, "scores"),
        ({"layering": "threshold", "recency_days": (30, 90)}, "recency_days"),
        ({"recency_days": (30, 90)}, "recency_days"),
        ({"layering": "threshold", "monetary_fen": (5, 4, 3, 2)}, "monetary_fen"),
        ({"segments": (SegmentRule("x", recency=(0, 6)),)}, "segments.x.recency"),
    ],
)
def test_bad_config_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=f"^{field}: "):
        RFMConfig(**kwargs)
