"""RFM on five members whose scores and segments are worked out by hand, on every engine."""

from __future__ import annotations

from datetime import datetime
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


def test_quantile_layers_and_default_segments(con: BaseBackend) -> None:
    # given five members, T_end = 2024-03-01 (M1's last order)
    # when they are scored in quantile layers
    got = scored(con, RFMConfig())
    # then scores are 1 + 5 x (share strictly worse): ties share the lower score
    # (M3 and M5 bought once: f=1; M2 and M4 three times: f=3), and each default segment
    # gets the member it was written for
    assert got == {
        "M1": (0, 4, 200_000, 5, 5, 4, "vip"),
        "M2": (5, 3, 30_000, 4, 3, 2, "loyal"),
        "M3": (15, 1, 300_000, 3, 1, 5, "ordinary"),
        "M4": (91, 3, 60_000, 2, 3, 3, "at_risk"),
        "M5": (274, 1, 5_000, 1, 1, 1, "lapsed"),
    }


def test_threshold_layers(con: BaseBackend) -> None:
    # when scored on the default thresholds (30/90/180/365 days, 2/3/5/8 orders,
    # 100/300/1,000/3,000 CNY)
    got = scored(con, RFMConfig(layering="threshold"))
    # then each value scores 1 + the edges it reaches
    assert {m: v[3:] for m, v in got.items()} == {
        "M1": (5, 3, 4, "loyal"),
        "M2": (5, 3, 3, "loyal"),
        "M3": (5, 1, 5, "ordinary"),
        "M4": (3, 3, 3, "loyal"),
        "M5": (2, 1, 1, "ordinary"),
    }


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
        ({"layering": "threshold", "monetary_fen": (5, 4, 3, 2)}, "monetary_fen"),
        ({"segments": (SegmentRule("x", recency=(0, 6)),)}, "segments.x.recency"),
    ],
)
def test_bad_config_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=f"^{field}: "):
        RFMConfig(**kwargs)
