"""One suite, every engine: retention, knee, RFM and the CLV summary on the same generated
brand give exactly the counts of an independent pandas implementation, so DuckDB and Spark
give identical results (integers compared exactly, no tolerance)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa
import pytest
from ibis import BaseBackend
from tests.analytics import reference
from tests.analytics.data import generated_orders

from siyu.analytics.clv import clv_summary
from siyu.analytics.engines import load_orders
from siyu.analytics.knee import find_knee
from siyu.analytics.retention import retention_counts, retention_rows
from siyu.analytics.rfm import RFMConfig, rfm_scores, rfm_values
from siyu.demo.config import GeneratorConfig

MAX_K = 8


@pytest.fixture(scope="module")
def brand(tmp_path_factory: pytest.TempPathFactory) -> tuple[pa.Table, dict[str, Any], datetime]:
    orders, truth = generated_orders(
        tmp_path_factory.mktemp("agree"), GeneratorConfig(members=3_000, knee=4, seed=23)
    )
    paid = orders.filter(pa.compute.not_equal(orders["status"], "cancelled"))
    t_end = max(paid["ordered_at"].to_pylist())
    return orders, truth, t_end


def test_retention_and_knee_match_the_reference(
    con: BaseBackend, brand: tuple[pa.Table, dict[str, Any], datetime]
) -> None:
    # given the brand's orders (with cancelled twins, which do not count) on an engine
    orders, truth, t_end = brand
    window = truth["retention_window"]["recommended_days"]
    table = load_orders(con, orders)
    # when retention by order count is computed with the data's own end
    df = con.execute(retention_counts(table, window, MAX_K))
    got = [
        (int(r["k"]), int(r["members"]), int(r["eligible"]), int(r["retained"]))
        for r in df.to_dict("records")
    ]
    # then every count equals the member-by-member reference
    assert got == reference.retention(orders, window, MAX_K, t_end)
    # and the knee is the generator's
    assert find_knee(retention_rows(df, MAX_K)).k == truth["knee"] == 4


def test_breakdowns_add_up_to_the_whole(
    con: BaseBackend, brand: tuple[pa.Table, dict[str, Any], datetime]
) -> None:
    # given the brand broken down by first-order brand, channel and cohort month
    orders, truth, t_end = brand
    window = truth["retention_window"]["recommended_days"]
    table = load_orders(con, orders)
    by = ["brand_id", "channel", "cohort_month"]
    df = con.execute(retention_counts(table, window, MAX_K, t_end, by))
    # then the groups sum to the whole curve ...
    total = df.groupby("k")[["members", "eligible", "retained"]].sum().reset_index()
    got = [tuple(int(v) for v in row) for row in total.itertuples(index=False)]
    assert got == reference.retention(orders, window, MAX_K, t_end)
    # ... and one group equals the reference run on that group's members alone
    paid = orders.to_pandas()
    paid = paid[paid.status != "cancelled"].sort_values(["ordered_at", "order_id"])
    first = paid.groupby("member_id").first()
    members = first.index[(first.brand_id == "B01") & (first.channel == "pos")]
    group = df[(df.brand_id == "B01") & (df.channel == "pos")]
    group = group.groupby("k")[["members", "eligible", "retained"]].sum().reset_index()
    expected = reference.retention(paid[paid.member_id.isin(members)], window, MAX_K, t_end)
    assert [tuple(int(v) for v in row) for row in group.itertuples(index=False)] == expected


@pytest.mark.parametrize("layering", ["auto", "quantile", "threshold"])
def test_rfm_matches_the_reference(
    con: BaseBackend, brand: tuple[pa.Table, dict[str, Any], datetime], layering: str
) -> None:
    # given the brand on an engine
    orders, _, t_end = brand
    table = load_orders(con, orders)
    config = RFMConfig(layering=layering)  # type: ignore[arg-type]
    # when members are scored
    got = con.execute(rfm_scores(rfm_values(table), config)).set_index("member_id").sort_index()
    # then values and scores are the reference's, and money is integer fen
    ref = reference.rfm(orders, t_end, layering=layering)
    assert str(got.monetary_fen.dtype) == "int64"
    for column in ("recency_days", "frequency", "monetary_fen"):
        assert got[column].tolist() == ref[column].tolist(), column
    if layering != "threshold":
        for column in ("r", "f", "m"):
            assert got[column].tolist() == ref[column].tolist(), column
    else:
        edges = {"r": config.recency_days, "f": config.frequency_orders, "m": config.monetary_fen}
        assert got.r.tolist() == [1 + sum(v <= e for e in edges["r"]) for v in ref.recency_days]
        assert got.f.tolist() == [1 + sum(v >= e for e in edges["f"]) for v in ref.frequency]
        assert got.m.tolist() == [1 + sum(v >= e for e in edges["m"]) for v in ref.monetary_fen]
    # and every member has exactly one segment of the configured ones
    assert set(got.segment) <= set(config.segment_names())


def test_clv_summary_matches_the_reference(
    con: BaseBackend, brand: tuple[pa.Table, dict[str, Any], datetime]
) -> None:
    # given the brand on an engine
    orders, _, t_end = brand
    table = load_orders(con, orders)
    # when the BG/NBD summary is computed from orders
    got = con.execute(clv_summary(table)).set_index("member_id").sort_index()
    # then it is the reference's, column by column
    ref = reference.clv_summary(orders, t_end)
    assert got.index.tolist() == ref.index.tolist()
    for column in ("frequency", "recency_days", "T_days", "repeat_fen"):
        assert got[column].astype("int64").tolist() == ref[column].tolist(), column


def test_generated_brand_file_is_not_empty(
    brand: tuple[pa.Table, dict[str, Any], datetime],
) -> None:
    # the suite above is only meaningful with repeat buyers at every k it checks
    orders, _, _ = brand
    assert orders.num_rows > 3_000
    rows = reference.retention(orders, 120, MAX_K, brand[2])
    assert len(rows) == MAX_K and all(r[2] > 0 for r in rows)
