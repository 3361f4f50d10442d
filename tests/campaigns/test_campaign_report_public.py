"""Real data: a campaign over UCI Online Retail (every customer and invoice imported into a
store, tests/retail_store.py), its report checked against pandas and scipy straight from
the parquet, with each member's arm recomputed by hashlib from the documented rule.

Given: the lifecycle run as of 2011-09-01 (the knee taken as 4) writes every member's
stage; a campaign to the at-risk stage from 2011-09-01 to 2011-12-01 with a 20% holdout
and a coupon. When the report is read after the period, then per arm its members, buyers,
revenue, the incremental revenue, Welch's p-value and interval equal the independent
computation (to 1e-6 relative), and the buyers behind the figure are the pandas set."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sqlalchemy import text
from tests.conftest import Store
from tests.coupons.helpers import basket, save_template
from tests.retail_store import Retail, load_retail

from siyu.analytics.landing import land
from siyu.analytics.lifecycle import stages_from_warehouse, write_member_stages
from siyu.analytics.stages import StageConfig
from siyu.campaigns import plan as plans
from siyu.campaigns.launch import launch
from siyu.campaigns.report import members, report
from siyu.coupons.redeem import Redemption, redeem
from siyu.privacy import Vault

pytestmark = pytest.mark.slow

CODE = "UCI-AUTUMN"
START = datetime(2011, 9, 1, tzinfo=UTC)
END = datetime(2011, 12, 1, tzinfo=UTC)
HOLDOUT_BP = 2000
STAGE = "at_risk"


def holdout(code: str, member_id: int, share_bp: int) -> bool:
    """The rule docs/architecture.md states, written again here: SHA-256 of
    `code:member_id`, its first 8 bytes as a big-endian integer, modulo 10,000, below
    the holdout's share in basis points."""
    digest = hashlib.sha256(f"{code}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 < share_bp


@pytest.fixture
def launched(store: Store, vault: Vault, tmp_path: Path) -> tuple[Store, Retail, list[int]]:
    retail = load_retail(store, vault, tmp_path)
    land(store.engine, store.group_id, tmp_path / "wh.duckdb", tables=("orders", "members"))
    stages = stages_from_warehouse(
        tmp_path / "wh.duckdb", store.group_id, StageConfig(knee=4), as_of=START
    )
    write_member_stages(store.engine, store.group_id, stages.members)
    with store.engine.connect() as conn:
        target = [
            int(m)
            for m in conn.execute(
                text("SELECT member_id FROM member_stages WHERE group_id = :g AND stage = :s"),
                {"g": store.group_id, "s": STAGE},
            ).scalars()
        ]
    assert len(target) > 300
    save_template(store.engine, store.group_id)
    doc: dict[str, Any] = {
        "code": CODE,
        "name_zh": "秋季唤醒",
        "name_en": "Autumn wake-up",
        "target": {"stage": STAGE},
        "starts_at": START.isoformat(),
        "ends_at": END.isoformat(),
        "coupons": ["SPRING20"],
        "holdout_bp": HOLDOUT_BP,
    }
    plans.save(store.engine, store.group_id, plans.Plan.model_validate(doc), None)
    launch(store.engine, store.group_id, CODE, at=START)
    return store, retail, target


def expected_arms(retail: Retail, target: list[int]) -> dict[str, pd.DataFrame]:
    """Per arm, each target member's paid amount and paid invoices in the period, from the
    parquet's invoices (cancellations left out), zeros included."""
    customer_of = {m: c for c, m in retail.member_of.items()}
    inv = retail.invoices
    period = inv[
        ~inv.cancelled
        & (inv.ordered_at >= START.replace(tzinfo=None))
        & (inv.ordered_at < END.replace(tzinfo=None))
    ]
    per_customer = period.groupby("customer").agg(spent=("paid_fen", "sum"), n=("paid_fen", "size"))
    frame = pd.DataFrame({"member_id": target})
    frame["customer"] = frame.member_id.map(customer_of)
    frame = frame.join(per_customer, on="customer").fillna({"spent": 0, "n": 0})
    frame["arm"] = [
        "holdout" if holdout(CODE, m, HOLDOUT_BP) else "treatment" for m in frame.member_id
    ]
    return {arm: frame[frame.arm == arm] for arm in ("treatment", "holdout")}


def test_campaign_report_matches_pandas_and_scipy(
    launched: tuple[Store, Retail, list[int]],
) -> None:
    store, retail, target = launched
    arms = expected_arms(retail, target)
    out = report(store.engine, store.group_id, CODE, at=datetime(2012, 1, 1, tzinfo=UTC))
    for arm in ("treatment", "holdout"):
        figures = getattr(out, arm)
        frame = arms[arm]
        assert figures.members == len(frame)
        assert figures.buyers == int((frame.n > 0).sum())
        assert figures.revenue_fen == int(frame.spent.sum())
        assert figures.revenue_per_member_fen == pytest.approx(frame.spent.mean(), rel=1e-9)
        # the members behind the figures, arm by arm
        assert members(store.engine, store.group_id, CODE, arm) == sorted(frame.member_id)
        assert members(store.engine, store.group_id, CODE, arm, "buyers") == sorted(
            frame.member_id[frame.n > 0]
        )
    treated = arms["treatment"].spent.to_numpy(float)
    held = arms["holdout"].spent.to_numpy(float)
    assert 0.15 < len(held) / len(target) < 0.25
    lift = treated.mean() - held.mean()
    assert out.incremental_revenue_fen == pytest.approx(lift * len(treated), rel=1e-6)
    welch = stats.ttest_ind(treated, held, equal_var=False)
    low, high = welch.confidence_interval(0.95)
    assert out.p_value == pytest.approx(welch.pvalue, rel=1e-6)
    assert out.ci95_per_member_fen is not None
    assert out.ci95_per_member_fen == pytest.approx((low, high), rel=1e-6)
    # Welch's interval by hand, not through scipy's own: the statistic's standard error
    # and the Welch-Satterthwaite degrees of freedom
    v1, v2 = treated.var(ddof=1) / len(treated), held.var(ddof=1) / len(held)
    df = (v1 + v2) ** 2 / (v1**2 / (len(treated) - 1) + v2**2 / (len(held) - 1))
    half = stats.t.ppf(0.975, df) * np.sqrt(v1 + v2)
    assert out.ci95_per_member_fen == pytest.approx((lift - half, lift + half), rel=1e-6)
    assert out.p_value == pytest.approx(2 * stats.t.sf(abs(lift) / np.sqrt(v1 + v2), df), rel=1e-6)
    assert out.coupons_issued == len(treated)
    assert (out.redemptions, out.cost_fen, out.roi) == (0, 0, None)  # nothing redeemed yet

    # when treated members redeem their coupon on their first invoice of at least 100.00
    # within its 30 days (the demo's way: the invoice is what the data says it is)
    redeemers = redeem_on_real_invoices(store, retail, arms["treatment"])
    assert len(redeemers) > 20
    out = report(store.engine, store.group_id, CODE, at=datetime(2012, 1, 1, tzinfo=UTC))
    assert (out.redemptions, out.redeemers) == (len(redeemers), len(redeemers))
    assert (out.cost_fen, out.discount_fen) == (1500 * len(redeemers), 2000 * len(redeemers))
    assert out.roi == pytest.approx((lift * len(treated) - out.cost_fen) / out.cost_fen, rel=1e-6)
    assert members(store.engine, store.group_id, CODE, "treatment", "redeemers") == redeemers
    assert members(store.engine, store.group_id, CODE, "holdout", "redeemers") == []


def redeem_on_real_invoices(store: Store, retail: Retail, treated: pd.DataFrame) -> list[int]:
    """Each treated member's coupon redeemed on its first paid invoice of at least 10,000
    fen (the template's threshold) in the coupon's 30 days; returns who redeemed."""
    inv = retail.invoices
    window = inv[
        ~inv.cancelled
        & (inv.paid_fen >= 10_000)
        & (inv.ordered_at >= START.replace(tzinfo=None))
        & (inv.ordered_at < START.replace(tzinfo=None) + timedelta(days=30))
    ].sort_values("ordered_at", kind="stable")
    first = window.groupby("customer").head(1)
    member_of = dict(zip(treated.customer, treated.member_id, strict=True))
    with store.engine.connect() as conn:
        code_of = dict(
            conn.execute(
                text("""SELECT member_id, code FROM coupons
                        WHERE group_id = :g AND campaign = :c"""),
                {"g": store.group_id, "c": CODE},
            ).all()
        )
    redeemed = []
    for invoice, row in first[first.customer.isin(member_of)].iterrows():
        member_id = member_of[row.customer]
        ask = Redemption(
            code_of[member_id], str(invoice), basket(int(row.paid_fen)), f"uci-{invoice}"
        )
        redeem(store.engine, store.group_id, ask, row.ordered_at.tz_localize(UTC))
        redeemed.append(member_id)
    return sorted(redeemed)
