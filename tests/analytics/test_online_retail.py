"""Real data: UCI Online Retail (541,909 invoice lines, 4,372 customers). DuckDB's retention
and RFM equal an independent pandas computation, member by member."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.analytics import reference
from tests.analytics.data import shared_file

from siyu.analytics.engines import connect, load_orders
from siyu.analytics.knee import find_knee
from siyu.analytics.retention import retention_counts, retention_rows
from siyu.analytics.rfm import rfm_scores, rfm_values

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def retail() -> tuple[pa.Table, datetime]:
    """Invoice lines as orders: cancellations (C...) and returns left out, pence as fen
    (the arithmetic is the same for any currency's 1/100)."""
    raw = pq.read_table(shared_file("online_retail", "online_retail_uci352_full.parquet"))
    df = raw.to_pandas()
    df = df[
        df.CustomerID.notna()
        & ~df.InvoiceNo.str.startswith("C")
        & (df.Quantity > 0)
        & (df.UnitPrice >= 0)
    ]
    lines = pa.table(
        {
            "order_id": df.InvoiceNo,
            "member_id": df.CustomerID.astype("int64").astype(str),
            "ordered_at": df.InvoiceDate,
            "amount_fen": np.rint(df.Quantity * df.UnitPrice * 100).astype("int64"),
            "country": df.Country,
        }
    )
    return lines, df.InvoiceDate.max().to_pydatetime()


def test_retention_equals_an_independent_computation(retail: tuple[pa.Table, datetime]) -> None:
    # given 392k invoice lines (several per invoice, the same time on each)
    lines, t_end = retail
    con = connect("duckdb")
    orders = load_orders(con, lines)
    # when retention by order count is computed with a 90-day window
    df = con.execute(retention_counts(orders, 90, 10))
    got = [
        (int(r["k"]), int(r["members"]), int(r["eligible"]), int(r["retained"]))
        for r in df.to_dict("records")
    ]
    # then every count equals the loop over members' sorted distinct invoices
    expected = reference.retention(lines, 90, 10, t_end)
    assert got == expected
    # and the data is what it should be: 4,339 buyers, most of them repeat buyers
    assert got[0][1] == 4339 and got[1][1] > 2800
    # and the curve rises with k, the knee's evidence is there for every supported k
    rows = retention_rows(df, 10)
    knee = find_knee(rows)
    assert [p.k for p in knee.points if p.supported] == list(range(1, 11))
    assert rows[0].rate is not None and rows[9].rate is not None and rows[9].rate > rows[0].rate


def test_rfm_equals_an_independent_computation(retail: tuple[pa.Table, datetime]) -> None:
    # given the same invoices
    lines, t_end = retail
    con = connect("duckdb")
    orders = load_orders(con, lines)
    # when members are scored in the default layers
    got = con.execute(rfm_scores(rfm_values(orders))).set_index("member_id").sort_index()
    # then values and scores equal pandas's (invoice amounts summed over their lines)
    ref = reference.rfm(lines, t_end, layering="auto")
    assert got.index.tolist() == ref.index.tolist()
    for column in ("recency_days", "frequency", "monetary_fen", "r", "f", "m"):
        assert got[column].tolist() == ref[column].tolist(), column
    # and the layers are balanced where values are distinct (monetary): about 1/5 each
    shares = got.m.value_counts(normalize=True).sort_index()
    assert shares.between(0.19, 0.21).all(), shares
    assert isinstance(pd.Series(got.monetary_fen).iloc[0], np.integer)
    # and frequency, where a third of the customers bought once, uses all five bands
    assert sorted(got.f.unique()) == [1, 2, 3, 4, 5]
    assert_layers_mean_something(got)


def assert_layers_mean_something(got: pd.DataFrame) -> None:
    """Every default value layer is held by its kind of member: nobody silent over a year
    looks active, every layer of the default rules is used and none holds everyone."""
    assert got.f.nunique() > 2
    assert (got[got.recency_days > 365].segment.isin(["win_back", "dormant"])).all()
    assert (got[got.recency_days > 120].r <= 2).all()
    assert (got[got.recency_days <= 120].r >= 3).all()
    shares = got.segment.value_counts(normalize=True)
    assert set(shares.index) == {"vip", "regular", "develop", "win_back", "dormant"}, shares
    assert shares.max() < 0.8, shares


def test_rfm_on_cdnow_where_most_customers_buy_once() -> None:
    # given CDNOW's 18 months of transactions (23,570 customers, half of whom bought once)
    raw = pd.read_csv(shared_file("cdnow", "CDNOW_master.txt"), sep=r"\s+", dtype={"date": str})
    lines = pa.table(
        {
            "order_id": [f"{c}-{i}" for i, c in enumerate(raw.customer_id)],
            "member_id": raw.customer_id.astype(str),
            "ordered_at": pd.to_datetime(raw.date, format="%Y%m%d"),
            "amount_fen": np.rint(raw.dollar_value * 100).astype("int64"),
        }
    )
    con = connect("duckdb")
    # when scored in the default layers
    got = con.execute(rfm_scores(rfm_values(load_orders(con, lines)))).set_index("member_id")
    # then they equal the reference, frequency is on order counts (one order is over a
    # fifth of the customers) with five bands, and the layers mean what they say
    ref = reference.rfm(lines, lines["ordered_at"].to_pandas().max(), layering="auto")
    for column in ("r", "f", "m"):
        assert got.sort_index()[column].tolist() == ref[column].tolist(), column
    assert (got.frequency == 1).mean() > 0.2
    assert sorted(got.f.unique()) == [1, 2, 3, 4, 5]
    assert_layers_mean_something(got)
