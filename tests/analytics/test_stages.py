"""Lifecycle stages from the knee, and month-over-month transitions, on every engine: a
hand-counted example, then a generated brand against the member-by-member reference."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import ibis
import pyarrow as pa
import pytest
from ibis import BaseBackend
from tests.analytics import reference
from tests.analytics.data import generated_orders, orders_table

from siyu.analytics.engines import load_orders
from siyu.analytics.lifecycle import stages_from_orders
from siyu.analytics.stages import (
    StageConfig,
    member_stages,
    month_ends,
    stage_names,
    stage_transitions,
    stages_at,
)
from siyu.demo.config import GeneratorConfig
from siyu.errors import ValidationError

AS_OF = datetime(2024, 6, 30, 12, 0, 0)
CONFIG = StageConfig(knee=3, at_risk_days=30, lapsed_days=90)
# member: order times (10:00 unless given); the stage as of AS_OF is in the test
HAND = {
    "a": ["2024-04-01T10:00:00", "2024-05-10T10:00:00", "2024-06-20T10:00:00"],
    "b": ["2024-06-29T10:00:00"],
    "c": ["2024-04-20T10:00:00", "2024-05-15T12:00:00"],
    "d": [f"{m}-01T10:00:00" for m in ("2023-11", "2023-12", "2024-01", "2024-02", "2024-03")],
    "e": ["2024-05-01T12:00:00", "2024-05-31T12:00:00"],
    "g": ["2024-05-01T12:00:00", "2024-05-30T12:00:00"],
    "h": ["2024-07-05T10:00:00"],  # after AS_OF: not yet a buyer
}


def _hand_orders() -> pa.Table:
    rows = [(f"{m}{i}", m, at, 1_000) for m, times in HAND.items() for i, at in enumerate(times)]
    # a second line of a's last order, and a cancelled order of b: neither is an order more
    rows += [("a2", "a", "2024-06-20T10:00:00", 500), ("bx", "b", "2024-06-01T10:00:00", 10)]
    status = ["paid"] * (len(rows) - 1) + ["cancelled"]
    return orders_table(rows, status=status)


def test_hand_counted_stages(con: BaseBackend) -> None:
    # given the hand-made members on an engine, knee 3, at risk after 30 days, lapsed after 90
    orders = load_orders(con, _hand_orders())
    members = ibis.memtable({"member_id": ["a", "b", "c", "d", "e", "g", "h", "z"]})
    # when their stages are computed as of AS_OF with the members table
    df = con.execute(member_stages(orders, 3, CONFIG, AS_OF, members).order_by("member_id"))
    got = {r.member_id: (int(r.orders), r.stage) for r in df.itertuples(index=False)}
    # then:
    assert got == {
        "a": (3, "loyal"),  # 3 orders (a line is not an order), 10 days ago
        "b": (1, "new_1"),  # the cancelled order does not count
        "c": (2, "at_risk"),  # 46 days of silence
        "d": (5, "lapsed"),  # past the knee but silent for 121 days: silence wins
        "e": (2, "new_2"),  # exactly 30 whole days: not more than 30
        "g": (2, "at_risk"),  # 31 days
        "h": (0, "prospect"),  # ordered only after AS_OF
        "z": (0, "prospect"),  # never ordered
    }
    recency = {r.member_id: r.recency_days for r in df.itertuples(index=False)}
    assert (recency["a"], recency["d"], recency["e"], recency["g"]) == (10, 121, 30, 31)


def test_hand_counted_transitions(con: BaseBackend) -> None:
    # given the same members, from the end of May to AS_OF
    orders = load_orders(con, _hand_orders())
    times = month_ends(AS_OF, 1)
    assert times == [datetime(2024, 5, 31, 23, 59, 59, 999_999), AS_OF]
    assert month_ends(datetime(2024, 1, 15), 2)[:2] == [
        datetime(2023, 11, 30, 23, 59, 59, 999_999),
        datetime(2023, 12, 31, 23, 59, 59, 999_999),
    ]
    # when the month's moves are counted (buyers only: no members table)
    df = con.execute(stage_transitions(orders, 3, times, CONFIG))
    got = {(r.from_stage, r.to_stage): int(r.members) for r in df.itertuples(index=False)}
    # then every member who bought by AS_OF moved as counted by hand
    assert got == {
        ("new_2", "loyal"): 1,  # a: third order in June
        ("prospect", "new_1"): 1,  # b: first order in June
        ("new_2", "at_risk"): 2,  # c (46 days), g (31 days)
        ("lapsed", "lapsed"): 1,  # d
        ("new_2", "new_2"): 1,  # e: 30 days is not more than 30
    }
    assert set(df.as_of) == {AS_OF}


@pytest.fixture(scope="module")
def brand(tmp_path_factory: pytest.TempPathFactory) -> tuple[pa.Table, dict[str, Any]]:
    return generated_orders(
        tmp_path_factory.mktemp("stages"), GeneratorConfig(members=3_000, knee=4, seed=29)
    )


def test_stages_and_transitions_match_the_reference(
    con: BaseBackend, brand: tuple[pa.Table, dict[str, Any]]
) -> None:
    # given a generated brand (true persons as members) on an engine
    orders, truth = brand
    window = truth["retention_window"]["recommended_days"]
    config = StageConfig(window_days=window)
    # when stages are found from the data's own knee, with three months of moves
    report = stages_from_orders(orders, config, months=3, con=con)
    # then the knee is the generator's
    assert report.knee == truth["knee"] == 4
    assert report.payload["knee_source"] == "data"
    # and every member's orders and stage are the reference's
    t_end = datetime.fromisoformat(report.payload["as_of"])
    expected = reference.stages(orders, t_end, 4, config.at_risk_days, config.lapsed_days)
    got = {
        m: (int(n), s)
        for m, n, s in zip(
            report.members["member_id"].to_pylist(),
            report.members["orders"].to_pylist(),
            report.members["stage"].to_pylist(),
            strict=True,
        )
    }
    assert got == {m: (n, s) for m, (n, _, s) in expected.items()}
    assert sum(s["members"] for s in report.payload["stages"]) == len(expected)
    # and every month's matrix is the reference's
    times = month_ends(t_end, 3)
    moves = reference.transitions(orders, times, 4, config.at_risk_days, config.lapsed_days)
    assert len(report.payload["transitions"]) == 3
    for i, matrix in enumerate(report.payload["transitions"], start=1):
        assert matrix["month"] == times[i].strftime("%Y-%m")
        for before, row in matrix["matrix"].items():
            for after, n in row.items():
                assert n == moves.get((times[i], before, after), 0), (matrix["month"], before)


def test_config_and_input_errors_name_the_field_and_rule() -> None:
    with pytest.raises(ValidationError, match=r"knee: must be 2\.\.50"):
        StageConfig(knee=1)
    with pytest.raises(
        ValidationError, match=r"lapsed_days: must be more than at_risk_days \(60\)"
    ):
        StageConfig(lapsed_days=60)
    with pytest.raises(ValidationError, match="at_risk_days: must be >= 1 day"):
        StageConfig(at_risk_days=0)
    with pytest.raises(ValidationError, match="months: must be >= 1"):
        month_ends(AS_OF, 0)
    flat = orders_table([("o1", "a", "2024-01-01T10:00:00", 1), ("o2", "b", "2024-01-02", 1)])
    with pytest.raises(ValidationError, match="knee: the retention curve has no knee"):
        stages_from_orders(flat, StageConfig(min_support=1))


def test_stage_names_follow_the_journey() -> None:
    assert stage_names(4) == [
        "prospect",
        "new_1",
        "new_2",
        "new_3",
        "loyal",
        "at_risk",
        "lapsed",
    ]
    assert stage_names(2) == ["prospect", "new_1", "loyal", "at_risk", "lapsed"]


def test_stages_at_month_ends_cut_days_where_member_stages_does(con: BaseBackend) -> None:
    # given members whose last order sits on either side of the at-risk and lapsed edges,
    # to the second and within one (the matrices compare with a precomputed instant,
    # member_stages counts whole days)
    at = datetime(2024, 6, 30, 23, 59, 59, 999_999)
    offsets = []
    for days in (CONFIG.at_risk_days, CONFIG.lapsed_days):
        edge = at - timedelta(days=days + 1)
        for delta in (-1.5, -1, -0.5, -0.000_001, 0, 0.000_001, 0.5, 1, 1.5):
            offsets.append(edge + timedelta(seconds=delta))
    rows = [(f"o{i}", f"m{i}", t.isoformat(), 100) for i, t in enumerate(offsets)]
    table = load_orders(con, orders_table(rows))
    # when stages are taken at that time both ways
    one = con.execute(member_stages(table, 3, CONFIG, at))
    many = con.execute(stages_at(table, 3, [at], CONFIG))
    # then every member has the same stage, and both sides of each edge occur
    assert dict(zip(one.member_id, one.stage, strict=True)) == dict(
        zip(many.member_id, many.stage, strict=True)
    )
    assert set(one.stage) == {"new_1", "at_risk", "lapsed"}
