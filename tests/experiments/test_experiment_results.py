"""An experiment's results on SQLite and PostgreSQL, checked against a computation in
Python from the same orders: the per-arm sums from SQL equal numpy's over the per-member
values; the lift and its interval equal scipy's Welch test on the raw per-member values
(1e-6); CUPED equals the statistics run on the raw arrays; per stage the same; and the
members behind each figure are the ones Python picks."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps
from sqlalchemy import text
from tests.conftest import Store
from tests.coupons.helpers import T0, basket, new_member, save_template
from tests.experiments.helpers import make_plan, put_in_stage, save_send

from siyu.coupons.redeem import Redemption, redeem
from siyu.errors import ValidationError
from siyu.experiments import plan as plans
from siyu.experiments import stats
from siyu.experiments.assign import expose, start
from siyu.experiments.results import METRICS, arm_sums, members, results
from siyu.identity.ingest import IdentifierEncoder
from siyu.messaging import consent
from siyu.orders.models import orders
from siyu.segments.models import segment_members, segments
from siyu.store.dialect import dialect_of

DAY = timedelta(days=1)
VARIANTS = [
    {"name": "control", "weight_bp": 5000, "kind": "none"},
    {"name": "note", "weight_bp": 5000, "kind": "message", "ref": "M1"},
]


def _segment(store: Store, ids: list[int]) -> None:
    now = T0.replace(tzinfo=None)
    with store.engine.begin() as conn:
        seg = conn.execute(
            segments.insert().values(
                group_id=store.group_id,
                slug="trial",
                name_zh="试验",
                name_en="Trial",
                owner="hq",
                refresh="manual",
                version=1,
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key[0]
        conn.execute(
            segment_members.insert(),
            [
                {
                    "group_id": store.group_id,
                    "segment_id": seg,
                    "member_id": m,
                    "set_by": "t",
                    "set_at": now,
                }
                for m in ids
            ],
        )


def _orders(store: Store, ids: list[int], arm: dict[int, str]) -> list[dict[str, Any]]:
    """Random orders around T0 (pre-period, window, outside both, cancelled, refunded),
    written to the store; returned as plain rows for the check."""
    rng = np.random.default_rng(7)
    rows: list[dict[str, Any]] = []

    def order(m: int, at: datetime, paid: int, status: str = "paid", refund: int = 0) -> None:
        rows.append(
            {
                "id": f"O{len(rows)}",
                "m": m,
                "at": at,
                "paid": paid,
                "status": status,
                "refund": refund,
            }
        )

    for m in ids:
        if rng.random() < 0.6:  # pre-period spend, correlated with the window's
            order(m, T0 - DAY * float(rng.uniform(1, 59)), int(rng.lognormal(9, 0.8)))
        buys = 0.45 if arm[m] == "note" else 0.35
        if rng.random() < buys + (0.15 if rows and rows[-1]["m"] == m else 0):
            paid = int(rng.lognormal(9.2, 0.7))
            kind = rng.random()
            refund = paid if kind < 0.1 else paid // 3 if kind < 0.2 else 0
            order(m, T0 + DAY * float(rng.uniform(0, 29.9)), paid, refund=refund)
        if rng.random() < 0.2:
            order(m, T0 + DAY * float(rng.uniform(0, 29)), 5000, status="cancelled")
        if rng.random() < 0.2:  # outside the window and before the pre-period
            order(m, T0 + DAY * 31, 7000)
            order(m, T0 - DAY * 61, 7000)
    with store.engine.begin() as conn:
        conn.execute(
            orders.insert(),
            [
                {
                    "group_id": store.group_id,
                    "order_id": r["id"],
                    "brand_id": "B1",
                    "channel": "pos" if i % 2 else "wechat_mp",  # the till and online
                    "store_id": "S1",
                    "buyer_identity_id": 0,
                    "member_id": r["m"],
                    "status": r["status"],
                    "ordered_at": r["at"].replace(tzinfo=None),
                    "total_fen": r["paid"],
                    "discount_fen": 0,
                    "paid_fen": r["paid"],
                }
                for i, r in enumerate(rows)
            ],
        )
        refunds = [r for r in rows if r["refund"]]
        conn.execute(
            text("""INSERT INTO refunds (group_id, refund_id, order_id, refunded_at, amount_fen)
                    VALUES (:g, :r, :o, :at, :a)"""),
            [
                {
                    "g": store.group_id,
                    "r": f"R{r['id']}",
                    "o": r["id"],
                    "at": (r["at"] + DAY).replace(tzinfo=None),
                    "a": r["refund"],
                }
                for r in refunds
            ],
        )
    return rows


def _withdrawals(store: Store, ids: list[int]) -> list[dict[str, Any]]:
    """Marketing consent granted before T0 and withdrawn by some members, through the
    consent service: before the window, in it (on one channel or all), after it, twice;
    returned as rows (status `withdraw`) for the check."""
    rng = np.random.default_rng(11)
    rows: list[dict[str, Any]] = []
    for m in ids:
        if rng.random() < 0.5:
            continue
        consent.record(store.engine, store.group_id, m, "grant", source="till", at=T0 - 90 * DAY)
        for _ in range(int(rng.integers(1, 3))):
            at = T0 + timedelta(seconds=int(rng.integers(-10 * 86400, 45 * 86400)))
            channel = "sms" if rng.random() < 0.3 else "*"
            consent.record(
                store.engine, store.group_id, m, "withdraw", channel=channel, source="sms", at=at
            )
            rows.append({"m": m, "at": at, "status": "withdraw", "paid": 0, "refund": 0})
    return rows


def _expected(
    rows: list[dict[str, Any]], ids: list[int], until: datetime
) -> dict[int, dict[str, float]]:
    """Each member's metrics, worked out row by row."""
    out = {
        m: {
            "revenue_fen": 0.0,
            "pre": 0.0,
            "repurchase": 0.0,
            "next_order": 0.0,
            "coupon_redemption": 0.0,
            "unsubscribe": 0.0,
        }
        for m in ids
    }
    for r in rows:
        if r["status"] == "withdraw":
            if T0 <= r["at"] < T0 + 30 * DAY and r["at"] < until:
                out[r["m"]]["unsubscribe"] = 1.0
            continue
        if r["status"] == "cancelled" or r["at"] >= until:
            continue
        net = r["paid"] - r["refund"]
        e = out[r["m"]]
        if T0 <= r["at"] < T0 + 30 * DAY:
            e["revenue_fen"] += net
            e["next_order"] = 1.0
            e["repurchase"] = max(e["repurchase"], float(net > 0))
        elif T0 - 60 * DAY <= r["at"] < T0:
            e["pre"] += net
    return out


@pytest.fixture
def trial(store: Store) -> tuple[Store, dict[int, str], dict[int, str], list[dict[str, Any]]]:
    ids = list(range(1, 801))
    stage = {m: "new_2" if m % 3 == 0 else "new_1" for m in ids}
    for name in ("new_1", "new_2"):
        put_in_stage(store.engine, store.group_id, [m for m in ids if stage[m] == name], name)
    _segment(store, ids)
    plan = make_plan(target={"segment": "trial"}, variants=VARIANTS)
    save_send(store.engine, store.group_id)
    plans.save(store.engine, store.group_id, plan, None)
    start(store.engine, store.group_id, "KNEE2", at=T0)
    with store.engine.connect() as conn:
        arm = {
            int(m): str(v)
            for m, v in conn.execute(
                text("SELECT member_id, variant FROM experiment_members WHERE group_id = :g"),
                {"g": store.group_id},
            )
        }
    rows = _orders(store, ids, arm) + _withdrawals(store, ids)
    # As a brand's store is when results are read, days after the data landed: analysed.
    # The session's PostgreSQL database takes every test's rows and autovacuum lags behind
    # them; on statistics from when these tables were nearly empty this one query took 92 s
    # in a full run (1 s alone).
    with store.engine.begin() as conn:
        dialect_of(conn).refresh_statistics(
            conn, "orders", "refunds", "coupons", "experiment_members", "consent_events"
        )
    return store, arm, stage, rows


def _arrays(
    expected: dict[int, dict[str, float]],
    arm: dict[int, str],
    variant: str,
    metric: str,
    only: set[int] | None = None,
) -> np.ndarray:
    return np.array(
        [
            e[metric]
            for m, e in sorted(expected.items())
            if arm[m] == variant and (only is None or m in only)
        ]
    )


def test_sums_from_sql_equal_the_per_member_values(trial: Any) -> None:
    store, arm, stage, rows = trial
    at = T0 + 40 * DAY
    expected = _expected(rows, sorted(arm), at)
    sums = arm_sums(store.engine, store.group_id, "KNEE2", at=at)
    assert set(sums) == {(v, s) for v in ("control", "note") for s in ("new_1", "new_2")}
    for (variant, st), s in sums.items():
        who = {m for m in arm if stage[m] == st}
        pre = _arrays(expected, arm, variant, "pre", who)
        assert s.n == len(pre)
        assert s.pre == pytest.approx((pre.sum(), pre @ pre), rel=1e-12)
        for metric in METRICS:
            y = _arrays(expected, arm, variant, metric, who)
            assert s.metrics[metric] == pytest.approx((y.sum(), y @ y, y @ pre), rel=1e-12)


def test_lift_equals_scipy_on_the_raw_values(trial: Any) -> None:
    store, arm, stage, rows = trial
    at = T0 + 40 * DAY
    expected = _expected(rows, sorted(arm), at)
    out = results(store.engine, store.group_id, "KNEE2", at=at)
    assert out.overall.counts == {
        "control": sum(v == "control" for v in arm.values()),
        "note": sum(v == "note" for v in arm.values()),
    }
    assert out.not_measured == {}
    for breakdown in [out.overall, *out.stages]:
        who = None if breakdown.stage is None else {m for m in arm if stage[m] == breakdown.stage}
        got = {c.metric: c for c in breakdown.comparisons}
        c_rev = _arrays(expected, arm, "control", "revenue_fen", who)
        t_rev = _arrays(expected, arm, "note", "revenue_fen", who)
        test = sps.ttest_ind(t_rev, c_rev, equal_var=False)
        low, high = test.confidence_interval(0.95)
        d = got["revenue_fen"].difference
        assert d is not None
        assert d.absolute.estimate == pytest.approx(t_rev.mean() - c_rev.mean(), abs=1e-6)
        assert (d.absolute.ci_low, d.absolute.ci_high) == pytest.approx((low, high), abs=1e-6)
        assert d.absolute.p_value == pytest.approx(test.pvalue, abs=1e-6)
        assert d.relative.estimate == pytest.approx(t_rev.mean() / c_rev.mean() - 1, abs=1e-6)
        # CUPED on the pre-period spend: the statistics run on the raw arrays
        c_pre = _arrays(expected, arm, "control", "pre", who)
        t_pre = _arrays(expected, arm, "note", "pre", who)
        raw = stats.cuped(stats.cuped_sums(c_rev, c_pre), stats.cuped_sums(t_rev, t_pre))
        cu = got["revenue_fen"].cuped
        assert cu is not None
        assert cu.theta == pytest.approx(raw.theta, abs=1e-9)
        assert cu.absolute.estimate == pytest.approx(raw.absolute.estimate, abs=1e-6)
        assert cu.absolute.std_error == pytest.approx(raw.absolute.std_error, abs=1e-6)
        assert cu.relative.ci_low == pytest.approx(raw.relative.ci_low, abs=1e-6)
        assert got["revenue_fen"].sequential is not None
        # a yes/no metric: the difference in rates, p(1 - p) as its variance
        for metric in ("repurchase", "next_order", "unsubscribe"):
            c, t = (_arrays(expected, arm, v, metric, who) for v in ("control", "note"))
            rate = got[metric].difference
            assert rate is not None
            assert rate.absolute.estimate == pytest.approx(t.mean() - c.mean(), abs=1e-12)
            se = np.sqrt(c.mean() * (1 - c.mean()) / c.size + t.mean() * (1 - t.mean()) / t.size)
            assert rate.absolute.std_error == pytest.approx(se, abs=1e-9)
        # no coupon variant: redemptions cannot be compared, and say why
        assert got["coupon_redemption"].note is not None
        assert "vary" in got["coupon_redemption"].note
    # the two ways of reading differ: a fully refunded order moves the count, not repurchase
    assert any(e["next_order"] and not e["repurchase"] for e in expected.values())


def test_the_members_behind_each_figure(trial: Any) -> None:
    store, arm, stage, rows = trial
    g = store.group_id
    at = T0 + 40 * DAY
    expected = _expected(rows, sorted(arm), at)
    assert 0 < sum(e["unsubscribe"] for e in expected.values()) < len(expected) / 2
    for metric in ("revenue_fen", "repurchase", "next_order", "unsubscribe"):
        want = sorted(m for m, e in expected.items() if arm[m] == "note" and e[metric] > 0)
        assert members(store.engine, g, "KNEE2", "note", metric, at=at) == want
    assert members(store.engine, g, "KNEE2", "control", "next_order", positive=False, at=at) == (
        sorted(m for m, e in expected.items() if arm[m] == "control" and not e["next_order"])
    )
    assert members(store.engine, g, "KNEE2", "note", stage="new_2", at=at) == sorted(
        m for m in arm if arm[m] == "note" and stage[m] == "new_2"
    )
    # read ten days in: only what was bought by then
    early = T0 + 10 * DAY
    partial = _expected(rows, sorted(arm), early)
    assert members(store.engine, g, "KNEE2", "note", "next_order", at=early) == sorted(
        m for m, e in partial.items() if arm[m] == "note" and e["next_order"]
    )
    with pytest.raises(ValidationError, match="variant"):
        members(store.engine, g, "KNEE2", "nobody")
    with pytest.raises(ValidationError, match="metric"):
        members(store.engine, g, "KNEE2", "note", "clicks")  # type: ignore[arg-type]
    # from exposure: only the exposed, their window starting when they were shown it
    shown = sorted(arm)[:300]
    expose(store.engine, g, "KNEE2", shown, T0 + 5 * DAY)
    late = results(store.engine, g, "KNEE2", anchor="exposure", at=at)
    assert sum(late.overall.counts.values()) == 300
    buyers = {
        r["m"]
        for r in rows
        if r["m"] in set(shown)
        and r["status"] == "paid"
        and T0 + 5 * DAY <= r["at"] < T0 + 35 * DAY
    }
    assert set(
        members(store.engine, g, "KNEE2", "note", "next_order", anchor="exposure", at=at)
    ) == {m for m in buyers if arm[m] == "note"}
    # withdrawals too count from the exposure: before it is not after it
    quit_after = {
        r["m"]
        for r in rows
        if r["m"] in set(shown)
        and r["status"] == "withdraw"
        and T0 + 5 * DAY <= r["at"] < T0 + 35 * DAY
    }
    assert quit_after
    assert set(
        members(store.engine, g, "KNEE2", "note", "unsubscribe", anchor="exposure", at=at)
    ) == {m for m in quit_after if arm[m] == "note"}


def test_coupon_redemptions_of_the_experiments_coupons(
    store: Store, encoder: IdentifierEncoder
) -> None:
    g = store.group_id
    # the arms are a hash of the member id with a random salt: at 12 members one arm had
    # fewer than two members about once in 300 runs; at 40, once in 10^10
    ids = [new_member(store.engine, encoder, g, f"u-{i}") for i in range(40)]
    put_in_stage(store.engine, g, ids, "new_1")
    save_template(store.engine, g)
    variants = [
        {"name": "control", "weight_bp": 5000, "kind": "none"},
        {"name": "coupon", "weight_bp": 5000, "kind": "coupon", "ref": "SPRING20"},
    ]
    plans.save(store.engine, g, make_plan(variants=variants), None)
    first = start(store.engine, g, "KNEE2", at=T0)
    assert first.coupons["coupon"]["issued"] == first.variants["coupon"] >= 2
    again = start(store.engine, g, "KNEE2", at=T0)
    assert again.coupons["coupon"]["issued"] == 0
    with store.engine.connect() as conn:
        held = conn.execute(
            text("""SELECT code, member_id FROM coupons WHERE group_id = :g
                    AND campaign = 'experiment:KNEE2' ORDER BY member_id"""),
            {"g": g},
        ).all()
    code, who = held[0]
    redeem(store.engine, g, Redemption(code, "O-1", basket(), "r1", who), T0 + DAY)
    at = T0 + 2 * DAY
    assert members(store.engine, g, "KNEE2", "coupon", "coupon_redemption", at=at) == [who]
    sums = arm_sums(store.engine, g, "KNEE2", at=at)
    assert sums[("coupon", "new_1")].metrics["coupon_redemption"][0] == 1
    assert sums[("control", "new_1")].metrics["coupon_redemption"][0] == 0


def test_an_unsubscribe_through_a_merged_member_is_the_persons(
    store: Store, encoder: IdentifierEncoder
) -> None:
    from tests.experiments.helpers import save_plan

    from siyu.identity.service import merge_members

    g, e = store.group_id, store.engine
    # x oldest, then y and q (not in the target; signed up again with an openid, so
    # they may merge), z and w in the target with x
    x = new_member(e, encoder, g, "u-x")
    y, q = (new_member(e, encoder, g, f"o-{n}", "openid") for n in "yq")
    z, w = (new_member(e, encoder, g, f"u-{n}") for n in "zw")
    put_in_stage(e, g, [x, z, w], "new_1")
    save_plan(e, g)
    start(e, g, "KNEE2", at=T0)
    # q withdraws in the window, then q merges into y and y into x: a chain to x
    consent.record(e, g, q, "withdraw", source="sms_reply", at=T0 + 3 * DAY)
    merge_members(e, g, y, q, "same person")
    merge_members(e, g, x, y, "same person")
    # z withdrew before its assignment and granted again; w withdraws after the window
    consent.record(e, g, z, "withdraw", source="sms_reply", at=T0 - DAY)
    consent.record(e, g, z, "grant", source="till", at=T0 + DAY)
    consent.record(e, g, w, "withdraw", channel="sms", source="sms_reply", at=T0 + 31 * DAY)
    at = T0 + 40 * DAY
    sums = arm_sums(e, g, "KNEE2", at=at)
    assert sum(s.metrics["unsubscribe"][0] for s in sums.values()) == 1
    with e.connect() as conn:
        variant = conn.execute(
            text("SELECT variant FROM experiment_members WHERE group_id = :g AND member_id = :m"),
            {"g": g, "m": x},
        ).scalar_one()
    assert members(e, g, "KNEE2", variant, "unsubscribe", at=at) == [x]
    # read before the withdrawal: nobody yet
    early = arm_sums(e, g, "KNEE2", at=T0 + 2 * DAY)
    assert sum(s.metrics["unsubscribe"][0] for s in early.values()) == 0
