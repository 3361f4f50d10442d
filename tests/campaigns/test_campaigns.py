"""Campaigns on SQLite and PostgreSQL: a plan validated, launched once however often it is
run, arms stable and near their share, the budget never passed, and a report whose
incremental revenue, test and ROI are checked against numbers worked out by hand."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats
from sqlalchemy import text
from tests.conftest import Store
from tests.coupons.helpers import T0, basket, new_member, save_template

from siyu.campaigns import plan as plans
from siyu.campaigns.assignment import bucket, in_holdout
from siyu.campaigns.errors import CampaignState
from siyu.campaigns.launch import launch
from siyu.campaigns.report import members, report
from siyu.coupons.redeem import Redemption, redeem
from siyu.identity.ingest import IdentifierEncoder
from siyu.orders.models import orders

START = T0
END = T0 + timedelta(days=30)


def _plan(**fields: Any) -> plans.Plan:
    doc: dict[str, Any] = {
        "code": "SPRING",
        "name_zh": "春季唤醒",
        "name_en": "Spring wake-up",
        "target": {"stage": "at_risk"},
        "starts_at": START.isoformat(),
        "ends_at": END.isoformat(),
        "coupons": ["SPRING20"],
        "holdout_bp": 2000,
    }
    return plans.Plan.model_validate({**doc, **fields})


def _at_risk(store: Store, ids: list[int]) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO member_stages (group_id, member_id, stage, orders, computed_at)
                    VALUES (:g, :m, 'at_risk', 2, :at)"""),
            [{"g": store.group_id, "m": m, "at": T0.replace(tzinfo=None)} for m in ids],
        )


def _order(store: Store, member_id: int, n: int, paid: int, at: datetime) -> None:
    # through the table, as ingestion writes orders (times in their stored form)
    with store.engine.begin() as conn:
        conn.execute(
            orders.insert().values(
                group_id=store.group_id,
                order_id=f"O-{member_id}-{n}",
                brand_id="B1",
                channel="pos",
                store_id="S1",
                buyer_identity_id=0,
                member_id=member_id,
                status="paid",
                ordered_at=at.replace(tzinfo=None),
                total_fen=paid,
                discount_fen=0,
                paid_fen=paid,
            )
        )


def test_a_plan_refuses_what_makes_no_sense() -> None:
    with pytest.raises(ValidationError, match="segment or stage"):
        _plan(target={"segment": "vip", "stage": "lapsed"})
    with pytest.raises(ValidationError, match="ends_at"):
        _plan(ends_at=START.isoformat())
    with pytest.raises(ValidationError, match="holdout_bp"):
        _plan(holdout_bp=6000)
    with pytest.raises(ValidationError, match="gives something"):
        _plan(coupons=[])
    with pytest.raises(ValidationError, match="stage"):
        _plan(target={"stage": "sleepy"})


def test_assignment_is_stable_and_near_its_share() -> None:
    held = sum(in_holdout("SPRING", m, 2000) for m in range(1, 20001))
    assert 0.19 < held / 20000 < 0.21
    assert [bucket("SPRING", m) for m in (1, 2, 3)] == [bucket("SPRING", m) for m in (1, 2, 3)]
    # another campaign's arms are independent of this one's
    both = sum(
        in_holdout("SPRING", m, 5000) and in_holdout("AUTUMN", m, 5000) for m in range(1, 20001)
    )
    assert 0.23 < both / 20000 < 0.27


def test_launch_once_within_budget_and_report(store: Store, encoder: IdentifierEncoder) -> None:
    ids = [new_member(store.engine, encoder, store.group_id, f"u-{i}") for i in range(30)]
    _at_risk(store, ids)
    save_template(store.engine, store.group_id)  # cost 1,500 a coupon
    plans.save(store.engine, store.group_id, _plan(budget_fen=1500 * 20), None)
    first = launch(store.engine, store.group_id, "SPRING", at=T0)
    assert first.target == 30 and first.treatment + first.holdout == 30
    given = min(first.treatment, 20)
    assert first.coupons["SPRING20"]["issued"] == given
    assert first.over_budget == first.treatment - given
    # launching again gives nobody anything twice, and the plan is now fixed
    again = launch(store.engine, store.group_id, "SPRING", at=T0)
    assert again.coupons["SPRING20"] == {"issued": 0, "replayed": given, "refused": 0}
    with pytest.raises(CampaignState):
        plans.save(store.engine, store.group_id, _plan(), None)
    treated = members(store.engine, store.group_id, "SPRING", "treatment", at=END)
    held = members(store.engine, store.group_id, "SPRING", "holdout", at=END)
    assert sorted(treated + held) == sorted(ids)
    assert held == sorted(m for m in ids if in_holdout("SPRING", m, 2000))
    # spend in the period: every treated member 300 yuan, every held one 100 yuan; one
    # order before the period and one after do not count
    for m in treated:
        _order(store, m, 1, 30000, START + timedelta(days=3))
    for m in held:
        _order(store, m, 1, 10000, START + timedelta(days=3))
    _order(store, held[0], 2, 999999, START - timedelta(seconds=1))
    _order(store, held[0], 3, 999999, END)
    # two treated members redeem their coupon
    with store.engine.connect() as conn:
        codes = (
            conn.execute(
                text(
                    "SELECT code FROM coupons WHERE group_id = :g"
                    " AND campaign = 'SPRING' ORDER BY code"
                ),
                {"g": store.group_id},
            )
            .scalars()
            .all()
        )
    for i, code in enumerate(codes[:2]):
        redeem(
            store.engine,
            store.group_id,
            Redemption(code, f"R-{i}", basket(), f"k{i}"),
            T0 + timedelta(days=1),
        )
    out = report(store.engine, store.group_id, "SPRING", END + timedelta(days=1))
    assert (out.treatment.members, out.holdout.members) == (len(treated), len(held))
    assert out.treatment.revenue_fen == 30000 * len(treated)
    assert out.holdout.revenue_fen == 10000 * len(held)
    assert out.incremental_revenue_fen == pytest.approx(20000 * len(treated))
    assert (out.redemptions, out.cost_fen, out.discount_fen) == (2, 3000, 4000)
    assert out.roi == pytest.approx((20000 * len(treated) - 3000) / 3000)
    assert out.note == "no spend varies in either arm: no test"
    redeemers = members(store.engine, store.group_id, "SPRING", "treatment", "redeemers")
    assert len(redeemers) == 2


def test_the_test_matches_scipy_on_varied_spend(store: Store, encoder: IdentifierEncoder) -> None:
    ids = [new_member(store.engine, encoder, store.group_id, f"u-{i}") for i in range(40)]
    _at_risk(store, ids)
    save_template(store.engine, store.group_id)
    plans.save(store.engine, store.group_id, _plan(holdout_bp=5000), None)
    launch(store.engine, store.group_id, "SPRING", at=T0)
    rng = np.random.default_rng(3)
    spent: dict[str, list[int]] = {"treatment": [], "holdout": []}
    for arm in ("treatment", "holdout"):
        for m in members(store.engine, store.group_id, "SPRING", arm, at=END):
            paid = int(rng.integers(0, 3)) * int(rng.integers(1000, 50000))
            if paid:
                _order(store, m, 1, paid, START + timedelta(days=2))
            spent[arm].append(paid)
    out = report(store.engine, store.group_id, "SPRING", END)
    expected = stats.ttest_ind(spent["treatment"], spent["holdout"], equal_var=False)
    assert out.p_value == pytest.approx(expected.pvalue)
    lift = np.mean(spent["treatment"]) - np.mean(spent["holdout"])
    assert out.incremental_revenue_fen == pytest.approx(lift * len(spent["treatment"]))
    low, high = out.ci95_per_member_fen or (0, 0)
    assert low < lift < high
    # a campaign with no holdout says so instead of guessing
    plans.save(store.engine, store.group_id, _plan(code="ALL", holdout_bp=0), None)
    launch(store.engine, store.group_id, "ALL", at=T0)
    assert report(store.engine, store.group_id, "ALL", END).note == (
        "no holdout: incremental revenue cannot be measured"
    )


def test_a_scan_of_the_campaigns_code_enrols_within_the_budget(
    store: Store, encoder: IdentifierEncoder
) -> None:
    from siyu.campaigns.triggers import on_scan
    from siyu.scenes.registry import create

    ids = [new_member(store.engine, encoder, store.group_id, f"u-{i}") for i in range(40)]
    save_template(store.engine, store.group_id)  # cost 1,500
    # nobody in the target at launch: everyone comes by scanning the poster's code
    plans.save(store.engine, store.group_id, _plan(budget_fen=1500 * 5), None)
    assert launch(store.engine, store.group_id, "SPRING", at=T0).target == 0
    create(store.engine, store.group_id, "poster-1", "permanent", campaign="SPRING")
    at = START + timedelta(days=1)
    seen = [on_scan(store.engine, store.group_id, "poster-1", m, False, at) for m in ids]
    again = on_scan(store.engine, store.group_id, "poster-1", ids[0], False, at)
    assert all(s is not None for s in seen) and again is not None
    treated = [s for s in seen if s is not None and s.arm == "treatment"]
    held = [m for m, s in zip(ids, seen, strict=True) if s is not None and s.arm == "holdout"]
    assert held == [m for m in ids if in_holdout("SPRING", m, 2000)]
    # the budget pays for five members' coupons: the sixth treated scanner gets none
    assert sum(s.granted for s in treated) == 5
    with store.engine.connect() as conn:
        issued = conn.execute(
            text("SELECT COUNT(*) FROM coupons WHERE group_id = :g AND campaign = 'SPRING'"),
            {"g": store.group_id},
        ).scalar_one()
    assert issued == 5
    # a flagged scan, or one after the campaign, enrols no one
    assert on_scan(store.engine, store.group_id, "poster-1", ids[1], True, at) is None
    assert on_scan(store.engine, store.group_id, "poster-1", ids[1], False, END) is None
