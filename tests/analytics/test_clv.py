"""CLV models reproduce the published CDNOW fits, and the summary computed from orders with
Ibis reproduces the published CDNOW summary, member by member, on every engine."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from ibis import BaseBackend
from tests.analytics.data import shared_file

from siyu.analytics.bgnbd import fit_bgnbd
from siyu.analytics.clv import clv_summary, fit_clv
from siyu.analytics.engines import load_orders
from siyu.analytics.gamma_gamma import fit_gamma_gamma
from siyu.errors import ValidationError

# Fader, Hardie & Lee (2005), table of estimates; log-likelihood -9582.4
BGNBD_PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
# Fader & Hardie (2013), "The Gamma-Gamma Model of Monetary Value"
GAMMA_GAMMA_PUBLISHED = {"p": 6.25, "q": 3.74, "gamma": 15.44}
CALIBRATION_END = datetime(1997, 9, 30, 23, 59, 59)  # 39 weeks from 1997-01-01


def cdnow_summary() -> pd.DataFrame:
    return pd.read_csv(shared_file("cdnow", "cdnow_customers_summary.csv"))


def cdnow_orders() -> pa.Table:
    """The 1/10 cohort's transactions as siyu orders (sample id as member, cents as fen)."""
    raw = pd.read_csv(
        shared_file("cdnow", "CDNOW_sample.txt"),
        sep=r"\s+",
        header=None,
        names=["master_id", "member_id", "date", "cds", "dollars"],
    )
    return pa.table(
        {
            "order_id": [f"o{i}" for i in range(len(raw))],
            "member_id": raw.member_id.astype(str),
            "ordered_at": pd.to_datetime(raw.date.astype(str), format="%Y%m%d"),
            "amount_fen": (raw.dollars * 100).round().astype("int64"),
        }
    )


def test_bgnbd_reproduces_the_published_cdnow_fit() -> None:
    # given CDNOW's calibration summary (weeks)
    d = cdnow_summary()
    # when BG/NBD is fitted
    fit = fit_bgnbd(d.frequency, d.recency, d["T"])
    # then every parameter is within 0.5% of the paper's, and so is the log-likelihood
    for name, published in BGNBD_PUBLISHED.items():
        assert getattr(fit, name) == pytest.approx(published, rel=0.005), name
    assert fit.log_likelihood == pytest.approx(-9582.4, abs=0.1)
    assert fit.members == 2357


def test_bgnbd_predictions_match_the_paper() -> None:
    # given the fit, and the paper's worked example: x=2, t_x=30.43, T=38.86
    d = cdnow_summary()
    fit = fit_bgnbd(d.frequency, d.recency, d["T"])
    # then this member is expected to make 1.226 purchases in the next 39 weeks
    assert fit.expected_purchases(39, [2], [30.43], [38.86])[0] == pytest.approx(1.226, abs=1e-3)
    # and P(alive) is 1 without a repeat purchase, lower the longer since the last one
    alive = fit.p_alive([0, 2, 2], [0, 30.43, 5.0], [38.86, 38.86, 38.86])
    assert alive[0] == 1.0 and 0 < alive[2] < alive[1] < 1


def test_gamma_gamma_reproduces_the_published_cdnow_fit() -> None:
    # given CDNOW's average repeat spend (dollars) of its 946 repeat buyers
    d = pd.read_csv(shared_file("cdnow", "cdnow_customers_summary_with_transactions.csv"))
    # when Gamma-Gamma is fitted
    fit = fit_gamma_gamma(d.x, d.zbar)
    # then p, q and gamma are within 1% of the note's
    assert fit.members == 946
    for name, published in GAMMA_GAMMA_PUBLISHED.items():
        assert getattr(fit, name) == pytest.approx(published, rel=0.01), name
    # and a buyer's expected spend lies between the population mean and their own average
    population = fit.p * fit.gamma / (fit.q - 1)
    own = fit.expected_spend([2], [22.35])[0]
    assert min(population, 22.35) < own < max(population, 22.35)


def test_summary_from_orders_is_the_published_summary(con: BaseBackend) -> None:
    # given CDNOW's raw transactions (including the holdout period) on an engine
    orders = load_orders(con, cdnow_orders())
    # when the summary is computed as of the end of the 39-week calibration period
    got = con.execute(clv_summary(orders, CALIBRATION_END))
    got = got.assign(ID=got.member_id.astype(int)).set_index("ID").sort_index()
    # then frequency, recency and T (days / 7) are the published ones for every member
    published = pd.read_csv(
        shared_file("cdnow", "cdnow_customers_summary_with_transactions.csv")
    ).set_index("ID")
    assert got.index.tolist() == published.index.tolist()
    assert (got.frequency == published.x).all()
    assert ((got.recency_days / 7).round(2) == published.t_x).all()
    assert ((got.T_days / 7).round(2) == published["T"]).all()
    # and the average repeat spend too, to the cent (the file rounds half up)
    repeat = got.frequency > 0
    zbar = got.repeat_fen[repeat] / got.frequency[repeat] / 100
    assert np.abs(zbar - published.zbar[repeat]).max() <= 0.0051
    assert (published.zbar[~repeat] == 0).all() and (got.repeat_fen[~repeat] == 0).all()


def test_clv_from_orders_fits_both_models_and_keeps_money_in_fen(con: BaseBackend) -> None:
    # given CDNOW's transactions and the summary in weeks
    orders = load_orders(con, cdnow_orders())
    summary = con.execute(clv_summary(orders, CALIBRATION_END))
    # when CLV is fitted over 39 weeks
    result = fit_clv(summary, period_days=7, horizon=39)
    # then BG/NBD is the published fit (same data), Gamma-Gamma's gamma is in fen
    assert result.bgnbd.r == pytest.approx(BGNBD_PUBLISHED["r"], rel=0.005)
    assert result.gamma_gamma is not None
    assert result.gamma_gamma.p == pytest.approx(GAMMA_GAMMA_PUBLISHED["p"], rel=0.01)
    assert result.gamma_gamma.gamma == pytest.approx(GAMMA_GAMMA_PUBLISHED["gamma"] * 100, rel=0.01)
    # and CLV is integer fen per member, the total of the members' values
    assert result.clv_fen is not None and result.clv_fen.dtype == np.int64
    payload = result.to_json()
    assert payload["clv_fen"] == int(result.clv_fen.sum()) > 0
    members = result.members()
    assert len(members) == 2357 and all(isinstance(m["clv_fen"], int) for m in members)
    # with the paper's 39-week forecast total of about 1,654 purchases (holdout 1,788)
    assert payload["expected_purchases"] == pytest.approx(1653.4, abs=1.0)


@pytest.mark.parametrize(
    ("x", "t_x", "T", "field"),
    [
        ([-1, 2], [0, 3], [5, 5], "frequency"),
        ([1.5, 2], [1, 3], [5, 5], "frequency"),
        ([1, 2], [6, 3], [5, 5], "recency"),
        ([0, 2], [1, 3], [5, 5], "recency"),
        ([], [], [], "summary"),
    ],
)
def test_bad_summaries_name_the_column(
    x: list[float], t_x: list[float], T: list[float], field: str
) -> None:
    with pytest.raises(ValidationError, match=f"^{field}: "):
        fit_bgnbd(x, t_x, T)


def test_gamma_gamma_needs_positive_spend() -> None:
    with pytest.raises(ValidationError, match=r"^monetary: "):
        fit_gamma_gamma([1, 2, 3], [10.0, 0.0, 5.0])
