"""A marketing send against the global holdout, on SQLite and PostgreSQL: the people it
reached and those its planning held out, their orders from every channel in the window
from its due time, and the differences, checked against scipy on the raw per-person
values (Welch's t) and on the two proportions."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from scipy import stats
from sqlalchemy import text
from tests.conftest import Store
from tests.messaging.msg_helpers import T, at_stage, bulk_members, grant_all, send, till_order

from siyu.campaigns import global_holdout
from siyu.errors import NotFoundError, ValidationError
from siyu.experiments.send_effect import send_effect
from siyu.messaging.plan import plan


def test_a_send_against_its_held_out_people(store: Store) -> None:
    g, e = store.group_id, store.engine
    # given 240 reachable members, half of them held out of everything
    ids = bulk_members(e, g, 240)
    at_stage(e, g, ids)
    grant_all(e, g, ids)
    holdout = global_holdout.set_share(e, g, 5_000)
    held = [m for m in ids if holdout.holds(m)]
    reached = [m for m in ids if not holdout.holds(m)]
    send(e, g, "PROMO")
    assert send_effect(e, g, "PROMO") is None  # a draft: nothing to compare yet
    plan(e, g, "PROMO", now=T - timedelta(hours=1))
    # and orders: a third of the reached buy once in the week, a sixth of the held out;
    # and orders that must not count: cancelled, the second before the send was due,
    # and the first second after the window
    spend: dict[int, int] = {}
    n = 0
    for side, every in ((reached, 3), (held, 6)):
        for i, m in enumerate(side):
            if i % every == 0:
                n += 1
                fen = 1000 + 37 * i
                till_order(e, g, f"O{n}", m, fen, T + timedelta(days=1, minutes=i))
                spend[m] = fen
    till_order(e, g, "X1", reached[1], 99_999, T + timedelta(days=2), "cancelled")
    till_order(e, g, "X2", reached[1], 99_999, T - timedelta(seconds=1))
    till_order(e, g, "X3", held[1], 99_999, T + timedelta(days=7))
    # when the send is read against the holdout
    effect = send_effect(e, g, "PROMO", window_days=7)
    # then each side is its people, buyers, orders and revenue in the window
    assert effect is not None
    assert (effect.reached.people, effect.held_out.people) == (len(reached), len(held))
    assert effect.reached.buyers == sum(1 for m in reached if m in spend)
    assert effect.held_out.buyers == sum(1 for m in held if m in spend)
    assert effect.reached.revenue_fen == sum(spend.get(m, 0) for m in reached)
    assert effect.held_out.orders == effect.held_out.buyers
    # and the revenue per person's difference is Welch's t on the raw values (scipy)
    x_reached = np.array([spend.get(m, 0) for m in reached], dtype=float)
    x_held = np.array([spend.get(m, 0) for m in held], dtype=float)
    revenue = effect.revenue_per_person_fen
    assert revenue is not None
    assert revenue.absolute.estimate == pytest.approx(x_reached.mean() - x_held.mean(), abs=1e-9)
    welch = stats.ttest_ind(x_reached, x_held, equal_var=False)
    assert revenue.absolute.p_value == pytest.approx(welch.pvalue, abs=1e-9)
    low, high = welch.confidence_interval()
    assert (revenue.absolute.ci_low, revenue.absolute.ci_high) == (
        pytest.approx(low, abs=1e-6),
        pytest.approx(high, abs=1e-6),
    )
    # and the buyer rate's, two proportions with p(1 - p) variances (scipy from the stats)
    p1, p0 = effect.reached.buyers / len(reached), effect.held_out.buyers / len(held)
    rate = effect.buyer_rate
    assert rate is not None and rate.absolute.estimate == pytest.approx(p1 - p0, abs=1e-12)
    by_stats = stats.ttest_ind_from_stats(
        p1, np.sqrt(p1 * (1 - p1)), len(reached), p0, np.sqrt(p0 * (1 - p0)), len(held),
        equal_var=False,
    )  # fmt: skip
    assert rate.absolute.p_value == pytest.approx(by_stats.pvalue, abs=1e-9)
    # and a wider window takes in the order at its edge
    wider = send_effect(e, g, "PROMO", window_days=8)
    assert wider is not None and wider.held_out.revenue_fen == effect.held_out.revenue_fen + 99_999


def test_no_holdout_no_comparison_and_bad_asks_are_refused(store: Store) -> None:
    g, e = store.group_id, store.engine
    ids = bulk_members(e, g, 40)
    at_stage(e, g, ids)
    grant_all(e, g, ids)
    send(e, g, "ALL")
    plan(e, g, "ALL", now=T - timedelta(hours=1))
    # no global holdout: nobody was held out, there is nothing to compare with
    assert send_effect(e, g, "ALL") is None
    # a holdout with no held-out buyer: the sides are answered, the rate's lift is not
    global_holdout.set_share(e, g, 5_000)
    send(e, g, "HALF", at=T + timedelta(days=8))
    plan(e, g, "HALF", now=T)
    with e.begin() as conn:
        conn.execute(text("DELETE FROM orders WHERE group_id = :g"), {"g": g})
    quiet = send_effect(e, g, "HALF")
    assert quiet is not None and quiet.held_out.buyers == 0 and quiet.buyer_rate is None
    with pytest.raises(ValidationError, match="window_days"):
        send_effect(e, g, "HALF", window_days=0)
    with pytest.raises(NotFoundError, match="NOPE"):
        send_effect(e, g, "NOPE")
