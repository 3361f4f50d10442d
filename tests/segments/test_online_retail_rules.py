"""Real data: UCI Online Retail invoices as orders and lines (CustomerID as member,
InvoiceNo as order, StockCode as sku, 'C' invoices cancelled). Rules from the issue select
exactly the customers a direct pandas computation finds."""

from __future__ import annotations

from datetime import timedelta

import ibis
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.analytics.data import shared_file
from tests.segments.tables import with_orders

from siyu.segments.compile import SegmentTables, compile_rule

pytestmark = pytest.mark.slow

SKU = "85123A"  # WHITE HANGING HEART T-LIGHT HOLDER, the most bought item


@pytest.fixture(scope="module")
def retail() -> tuple[pd.DataFrame, SegmentTables]:
    raw = pq.read_table(shared_file("online_retail", "online_retail_uci352_full.parquet"))
    df = raw.to_pandas()
    df = df[df.CustomerID.notna()].copy()
    df["member_id"] = df.CustomerID.astype("int64").astype(str)
    df["status"] = df.InvoiceNo.str.startswith("C").map({True: "cancelled", False: "paid"})
    invoices = df.groupby("InvoiceNo").agg(
        member_id=("member_id", "first"),
        ordered_at=("InvoiceDate", "min"),
        status=("status", "first"),
    )
    orders = pa.table(
        {
            "order_id": invoices.index.to_numpy(),
            "member_id": invoices.member_id.to_numpy(),
            "ordered_at": pa.array(invoices.ordered_at, pa.timestamp("us")),
            "amount_fen": pa.array([0] * len(invoices), pa.int64()),
            "status": invoices.status.to_numpy(),
        }
    )
    lines = pa.table(
        {"order_id": df.InvoiceNo.to_numpy(), "sku": df.StockCode.astype(str).to_numpy()}
    )
    lines = with_orders(lines, orders)  # each line with its invoice's member, time and status
    first = invoices.groupby("member_id").ordered_at.min()
    members = pa.table(
        {
            "member_id": first.index.to_numpy(),
            "status": ["active"] * len(first),
            "registered_at": pa.array(first, pa.timestamp("us")),
        }
    )
    tables = SegmentTables(
        members=ibis.memtable(members),
        orders=ibis.memtable(orders),
        order_lines=ibis.memtable(lines),
    )
    return df, tables


def selected(tables: SegmentTables, rule: dict[str, object]) -> list[str]:
    expr = compile_rule({"version": 1, "rule": rule}, tables)  # T: the latest paid invoice
    return sorted(ibis.duckdb.connect().execute(expr).member_id)


def test_three_orders_and_none_in_60_days(retail: tuple[pd.DataFrame, SegmentTables]) -> None:
    df, tables = retail
    rule = {
        "all": [
            {"orders": {"count": {"gte": 3}}},
            {"orders": {"within_days": 60, "count": {"lte": 0}}},
        ]
    }
    paid = df[df.status == "paid"]
    t = paid.InvoiceDate.max()
    invoices = paid.groupby("member_id").agg(
        n=("InvoiceNo", "nunique"), last=("InvoiceDate", "max")
    )
    expected = sorted(
        invoices.index[(invoices.n >= 3) & (invoices["last"] <= t - timedelta(days=60))]
    )
    assert 100 < len(expected) < len(invoices)
    assert selected(tables, rule) == expected
    # and "last order more than 60 days ago" says the same for members with orders
    recency = {"all": [{"orders": {"count": {"gte": 3}}}, {"last_order": {"more_than_days": 60}}]}
    assert selected(tables, recency) == expected


def test_bought_a_stock_code_in_180_days(retail: tuple[pd.DataFrame, SegmentTables]) -> None:
    df, tables = retail
    paid = df[df.status == "paid"]
    t = paid.InvoiceDate.max()
    recent = paid[(paid.InvoiceDate > t - timedelta(days=180)) & (paid.StockCode == SKU)]
    expected = sorted(set(recent.member_id))
    assert len(expected) > 100
    assert selected(tables, {"bought": {"sku": [SKU], "within_days": 180}}) == expected
    # and the complement among customers who ordered in that time
    rule = {
        "all": [
            {"orders": {"within_days": 180}},
            {"not": {"bought": {"sku": [SKU], "within_days": 180}}},
        ]
    }
    buyers = set(paid.member_id[paid.InvoiceDate > t - timedelta(days=180)])
    assert selected(tables, rule) == sorted(buyers - set(expected))
