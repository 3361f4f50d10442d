"""A full recompute makes the orders one row per order once and tells every analysis so
(`distinct=True`): on every engine, each analysis must then give exactly what it gives
from the raw order lines, which it aggregates itself."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import ibis
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from ibis import BaseBackend
from tests.analytics.data import generated_orders

from siyu.analytics.engines import load_orders, to_pandas
from siyu.analytics.kpi_service import kpi_report
from siyu.analytics.kpis import order_facts
from siyu.analytics.retention import retention_counts
from siyu.analytics.rfm import rfm_scores, rfm_values
from siyu.analytics.stages import StageConfig, member_stages, month_ends, stage_transitions
from siyu.demo.config import GeneratorConfig

CONFIG = StageConfig(knee=4)


@pytest.fixture(scope="module")
def lines(tmp_path_factory: pytest.TempPathFactory) -> tuple[pa.Table, datetime]:
    """A generated brand's orders with every third order split into two lines: the second
    line a minute later, carrying a third of the amount (so one order is several rows, and
    its time is its earliest line's)."""
    orders, _ = generated_orders(
        tmp_path_factory.mktemp("once"), GeneratorConfig(members=1_500, knee=4, seed=5)
    )
    orders = orders.filter(pc.not_equal(orders["status"], "cancelled"))
    orders = orders.append_column("guide_id", pa.nulls(orders.num_rows, pa.string()))
    split = orders.take([i for i in range(orders.num_rows) if i % 3 == 0])
    third = pc.divide(split["amount_fen"], 3)
    first = split.set_column(3, "amount_fen", pc.subtract(split["amount_fen"], third))
    second = split.set_column(3, "amount_fen", third).set_column(
        2, "ordered_at", pc.add(split["ordered_at"], pa.scalar(timedelta(minutes=1)))
    )
    rest = orders.take([i for i in range(orders.num_rows) if i % 3 != 0])
    table = pa.concat_tables([rest, first, second])
    return table, max(orders["ordered_at"].to_pylist())


def _rows(con: BaseBackend, expr: ibis.Table, *keys: str) -> list[dict[str, Any]]:
    frame = to_pandas(con, expr).sort_values(list(keys)).reset_index(drop=True)
    return [{k: (None if v != v else v) for k, v in r.items()} for r in frame.to_dict("records")]


def test_every_analysis_agrees_on_orders_made_distinct_once(
    con: BaseBackend, lines: tuple[pa.Table, datetime]
) -> None:
    # given order lines on an engine, and the same orders made one row per order once
    table, t_end = lines
    raw = load_orders(con, pa.Table.from_batches(table.to_batches()))
    members = ibis.memtable({"member_id": sorted(set(table["member_id"].to_pylist()))})
    dims = ("brand_id", "channel", "guide_id")
    with order_facts(raw, t_end, None, dims).cache() as once:
        # then retention, RFM, stages, transitions and the KPIs are the same either way
        assert _rows(con, retention_counts(raw, 90, 8, t_end), "k") == _rows(
            con, retention_counts(once, 90, 8, t_end, distinct=True), "k"
        )
        assert _rows(con, rfm_scores(rfm_values(raw, t_end)), "member_id") == _rows(
            con, rfm_scores(rfm_values(once, t_end, distinct=True)), "member_id"
        )
        assert _rows(con, member_stages(raw, 4, CONFIG, t_end, members), "member_id") == _rows(
            con, member_stages(once, 4, CONFIG, t_end, members, distinct=True), "member_id"
        )
        times = month_ends(t_end, 3)
        keys = ("as_of", "from_stage", "to_stage")
        assert _rows(con, stage_transitions(raw, 4, times, CONFIG, members), *keys) == _rows(
            con, stage_transitions(once, 4, times, CONFIG, members, distinct=True), *keys
        )
        from_lines = kpi_report(con, raw, None, None, None, t_end)
        assert from_lines["totals"]["orders"] == len(set(table["order_id"].to_pylist()))
        assert kpi_report(con, once, None, None, None, t_end, distinct=True) == from_lines
