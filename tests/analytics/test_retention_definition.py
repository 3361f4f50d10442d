"""Retention by order count, counted by hand on a tiny brand whose orders sit exactly on
the edges of the definition (a gap of exactly W, a k-th order exactly W before T_end), so an
off-by-one in eligibility or in the window changes the counts. Runs on every engine."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from ibis import BaseBackend
from tests.analytics import reference
from tests.analytics.data import orders_table

from siyu.analytics.engines import load_orders
from siyu.analytics.retention import (
    order_sequence,
    retention_counts,
    retention_rows,
    wilson,
)
from siyu.errors import ValidationError

W = 10
ROWS = [
    # A: a gap of exactly W (retained), then W + 1 second (not retained)
    ("a1", "A", "2024-01-01T00:00:00", 100, "x"),
    ("a2", "A", "2024-01-11T00:00:00", 100, "y"),
    ("a3", "A", "2024-01-21T00:00:01", 100, "y"),
    # B: two orders at the same instant, ordered by order id whatever the row order
    ("b2", "B", "2024-01-01T09:00:00", 100, "y"),
    ("b1", "B", "2024-01-01T09:00:00", 100, "y"),
    ("b3", "B", "2024-01-05T00:00:00", 100, "y"),
    # C: one order on two rows (order lines) is one order
    ("c1", "C", "2024-01-03T00:00:00", 100, "x"),
    ("c1", "C", "2024-01-03T01:00:00", 50, "x"),
    # D: first order exactly W before T_end (eligible), second at T_end (retained)
    ("d1", "D", "2024-01-22T00:00:00", 100, "x"),
    ("d2", "D", "2024-02-01T00:00:00", 100, "x"),
    # E: first order one second too late to be eligible
    ("e1", "E", "2024-01-22T00:00:01", 100, "y"),
    # F: came back within W, but too recently to be counted either way
    ("f1", "F", "2024-01-23T00:00:00", 100, "y"),
    ("f2", "F", "2024-01-24T00:00:00", 100, "y"),
    # G: the December cohort
    ("g1", "G", "2023-12-20T00:00:00", 100, "x"),
    ("g2", "G", "2023-12-25T00:00:00", 100, "x"),
]


def tiny() -> object:
    return orders_table([r[:4] for r in ROWS], brand_id=[r[4] for r in ROWS])


def counts(con: BaseBackend, **kwargs: object) -> list[tuple[object, ...]]:
    table = load_orders(con, tiny())  # type: ignore[arg-type]
    df = con.execute(retention_counts(table, W, 4, **kwargs))  # type: ignore[arg-type]
    by = list(kwargs.get("by", ()))  # type: ignore[call-overload]
    return [
        (*(rec[d] for d in by), int(rec["k"]), rec["members"], rec["eligible"], rec["retained"])
        for rec in df.sort_values([*by, "k"]).to_dict("records")
    ]


def test_counts_follow_the_definition_to_the_second(con: BaseBackend) -> None:
    # given the tiny brand, T_end = D's second order (2024-02-01), W = 10 days
    # when retention is counted
    got = counts(con)
    # then (k, members with >= k orders, eligible, retained) are the hand counts:
    # k=1 eligible A B C D G (E and F too recent), retained A (gap exactly W) B D G;
    # k=2 eligible A B G, retained B only (A's gap is W + 1 s); k=3 eligible A B, none back
    assert got == [(1, 7, 5, 4), (2, 5, 3, 1), (3, 2, 2, 0)]


def test_as_of_ignores_later_orders(con: BaseBackend) -> None:
    # given an as-of time before A's third order and D, E, F's orders
    # when retention is counted as of then
    got = counts(con, t_end=datetime(2024, 1, 21))
    # then A's window after its second order closed empty, and D, E, F do not exist yet
    assert got == [(1, 4, 4, 3), (2, 3, 3, 1), (3, 1, 1, 0)]


def test_breakdowns_follow_the_members_first_order(con: BaseBackend) -> None:
    # when broken down by brand (A's later orders are at brand y, but A started at x)
    by_brand = counts(con, by=["brand_id"])
    # then each member stays in its first order's group, and the groups add up
    assert by_brand == [
        ("x", 1, 4, 4, 3),
        ("x", 2, 3, 2, 0),
        ("x", 3, 1, 1, 0),
        ("y", 1, 3, 1, 1),
        ("y", 2, 2, 1, 1),
        ("y", 3, 1, 1, 0),
    ]
    # and the cohort month is the first order's month
    assert counts(con, by=["cohort_month"]) == [
        ("2023-12", 1, 1, 1, 1),
        ("2023-12", 2, 1, 1, 0),
        ("2024-01", 1, 6, 4, 3),
        ("2024-01", 2, 4, 2, 1),
        ("2024-01", 3, 2, 2, 0),
    ]


def test_orders_at_the_same_instant_are_ordered_by_order_id(con: BaseBackend) -> None:
    # given B's b2 listed before b1, at the same time
    table = load_orders(con, tiny())  # type: ignore[arg-type]
    seq = con.execute(order_sequence(table))
    # then k follows the order id, and c1's two rows are one order at its earliest time
    ks = {r["order_id"]: int(r["k"]) for r in seq.to_dict("records")}
    assert (ks["b1"], ks["b2"], ks["b3"]) == (1, 2, 3)
    c1 = seq[seq.order_id == "c1"]
    assert len(c1) == 1 and str(c1.iloc[0].ordered_at) == "2024-01-03 00:00:00"


def test_rows_fill_every_k_with_rates_and_wilson_intervals(con: BaseBackend) -> None:
    # when the executed counts become rows for k = 1..4
    table = load_orders(con, tiny())  # type: ignore[arg-type]
    rows = retention_rows(con.execute(retention_counts(table, W, 4)), 4)
    # then k = 4, which nobody reached, is there with no rate, and rates are exact
    assert [(r.k, r.eligible, r.retained, r.rate) for r in rows] == [
        (1, 5, 4, 0.8),
        (2, 3, 1, 1 / 3),
        (3, 2, 0, 0.0),
        (4, 0, 0, None),
    ]
    # and the interval of 4 of 5 is the textbook Wilson interval (0.376, 0.964)
    assert rows[0].ci_low == pytest.approx(0.3755, abs=1e-4)
    assert rows[0].ci_high == pytest.approx(0.9638, abs=1e-4)


def test_wilson_stays_inside_zero_and_one() -> None:
    # given none or all of 10 retained, then the interval is one-sided, within [0, 1]
    assert wilson(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    low, high = wilson(10, 10)
    assert low == pytest.approx(0.7225, abs=1e-4) and high == 1.0
    assert wilson(0, 0) == (None, None)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"window_days": 0}, "window_days"), ({"max_k": 0}, "max_k"), ({"by": ["nope"]}, "by")],
)
def test_bad_parameters_name_the_field(kwargs: dict[str, object], field: str) -> None:
    # given the tiny brand as an unbound Ibis table (no engine needed to reject)
    import ibis

    table = ibis.memtable(tiny())
    args: dict[str, object] = {"window_days": W, "max_k": 4, **kwargs}
    # when the expression is built with a bad value, then the error names the field
    with pytest.raises(ValidationError, match=f"^{field}: "):
        retention_counts(table, **args)  # type: ignore[arg-type]


def test_the_curve_is_the_same_however_orders_at_one_instant_are_ordered(
    con: BaseBackend,
) -> None:
    # given 300 members whose orders often fall at the same instant (whole days, a few
    # weeks): the curve sorts by time alone, the definition by (ordered_at, order_id)
    rng = random.Random(7)
    rows = []
    for m in range(300):
        for i in range(rng.randint(1, 9)):
            day = rng.randint(0, 40)
            at = (datetime(2024, 1, 1) + timedelta(days=day)).isoformat()
            rows.append((f"o{m}-{rng.randint(0, 10**6)}-{i}", f"M{m}", at, 100))
    table = orders_table(rows)
    end = datetime(2024, 2, 10)
    # when the curve is counted
    df = con.execute(retention_counts(load_orders(con, table), 7, 8, end))
    got = [(int(r.k), int(r.members), int(r.eligible), int(r.retained)) for r in df.itertuples()]
    # then it equals the member-by-member reference, which sorts by (ordered_at, order_id)
    assert got == reference.retention(table, 7, 8, end)
    # and the numbered sequence (the definition's tie-break) gives the same counts
    seq = con.execute(order_sequence(load_orders(con, table)))
    seq = seq[seq.k <= 8].sort_values(["member_id", "k"])
    assert seq.groupby("k").size().tolist() == [g[1] for g in got]
