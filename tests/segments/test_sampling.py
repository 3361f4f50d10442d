"""Estimated previews on UCI Online Retail (4,372 customers, data we did not make): past
the threshold a preview counts one member in a hundred and scales up; its ids are sampled
members who match, the same members on DuckDB and Spark. The 95% intervals are checked
for what they promise: over the hundred possible samples (buckets), at least 90 hold the
exact size."""

from __future__ import annotations

from typing import Any

import pytest
from ibis import BaseBackend
from sqlalchemy import Engine
from tests.segments.test_automatic_tags import retail, retail_warehouse  # noqa: F401

from siyu.analytics.engines import connect, to_arrow
from siyu.segments.compile import compile_rule
from siyu.segments.evaluate import preview_rule
from siyu.segments.rules import parse_document, references
from siyu.segments.sampling import (
    BUCKETS,
    MULTIPLIER,
    PRIME,
    estimate,
    in_sample,
    sampled,
)
from siyu.segments.sources import segment_tables
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade

RULES = {
    "two_plus_orders": {"orders": {"count": {"gte": 2}}},
    "spent_500": {"orders": {"spend_fen": {"gte": 50_000}}},
    "lapsed_regulars": {
        "all": [
            {"orders": {"count": {"gte": 3}}},
            {"not": {"orders": {"within_days": 90, "count": {"gte": 1}}}},
        ]
    },
}


@pytest.fixture(scope="module")
def store_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('sampling') / 'siyu.db'}")
    upgrade(engine)
    return engine


def test_past_the_threshold_a_preview_is_an_estimate_from_one_member_in_a_hundred(
    con: BaseBackend,
    retail: dict[str, Any],  # noqa: F811
    store_engine: Engine,
) -> None:
    # given the invoices as a warehouse, and members with two orders or more
    wh = retail_warehouse(con, retail)
    doc = {"version": 1, "rule": RULES["two_plus_orders"]}
    population = len(retail["members"])
    # when it is previewed exactly, and with estimates from 1,000 members up
    exact = preview_rule(store_engine, con, wh, doc, sample=5, exact=True, sample_from=0)
    guess = preview_rule(store_engine, con, wh, doc, sample=100, sample_from=1_000)
    # then the exact preview is not an estimate, and the estimate says it is one
    assert not exact.estimated and exact.size_low is None
    assert exact.size == preview_rule(store_engine, con, wh, doc, sample=0).size  # < 1M
    assert guess.estimated and guess.sampled_members is not None
    assert guess.size_low is not None and guess.size_high is not None
    assert guess.size_low <= guess.size <= guess.size_high
    # about one member in a hundred was drawn: the members whose id hashes to bucket 0
    assert population / (3 * BUCKETS) < guess.sampled_members < 3 * population / BUCKETS
    members = wh.members()
    drawn = members.filter(in_sample(members.member_id)).select("member_id")
    drawn_ids = set(to_arrow(con, drawn).column("member_id").to_pylist())
    assert len(drawn_ids) == guess.sampled_members
    # the same members on every engine: the scramble is integer arithmetic, here in Python
    assert drawn_ids == {m for m in retail["members"] if scrambled(m) % BUCKETS == 0}
    # and the ids shown are all the sampled members who match the rule
    matching = to_arrow(
        con, compile_rule(doc, wh_tables(store_engine, con, wh, doc), wh.data_end())
    )
    matched = set(matching.column("member_id").to_pylist())
    assert set(guess.sample) == matched & drawn_ids
    assert guess.size == round(len(guess.sample) * population / guess.sampled_members)


def scrambled(member_id: int) -> int:
    x = member_id % PRIME
    for _ in range(2):
        x = x * MULTIPLIER % PRIME
    return x


def wh_tables(engine: Engine, con: BaseBackend, wh: Any, doc: dict[str, Any]) -> Any:
    return segment_tables(engine, con, wh, references(parse_document(doc).rule))


@pytest.mark.parametrize("name", sorted(RULES))
def test_the_95_percent_intervals_hold_the_exact_size_in_90_of_100_samples(
    retail: dict[str, Any],  # noqa: F811
    store_engine: Engine,
    name: str,
) -> None:
    # given the invoices on DuckDB and a rule's exact size
    con = connect("duckdb")
    wh = retail_warehouse(con, retail)
    doc = {"version": 1, "rule": RULES[name]}
    as_of = wh.data_end()
    tables = wh_tables(store_engine, con, wh, doc)
    population = int(con.execute(tables.members.count()))
    exact = int(con.execute(compile_rule(doc, tables, as_of).count()))
    # when each of the hundred buckets is the sample
    held = 0
    for bucket in range(BUCKETS):
        cut = sampled(tables, bucket)
        found = int(con.execute(compile_rule(doc, cut, as_of).count()))
        drawn = int(con.execute(cut.members.count()))
        guess = estimate(found, drawn, population)
        held += guess.low <= exact <= guess.high
    # then the intervals keep (about) their promise
    assert held >= 90, (name, held)
    con.disconnect()


def test_the_estimate_and_its_interval() -> None:
    # nothing found in a sample of 100 of 10,000: zero, but the interval is not zero
    none = estimate(0, 100, 10_000)
    assert (none.size, none.low) == (0, 0) and 0 < none.high < 10_000
    # half found: half, inside a symmetric interval; all found: the interval ends at N
    half = estimate(50, 100, 10_000)
    assert half.size == 5_000 and half.low < 5_000 < half.high
    assert 5_000 - half.low == pytest.approx(half.high - 5_000, abs=2)
    assert estimate(100, 100, 10_000).high == 10_000
    # an empty sample says nothing: anything from 0 to N
    empty = estimate(0, 0, 10_000)
    assert (empty.size, empty.low, empty.high) == (0, 0, 10_000)
