"""Affinity scores kept as numbers (`member_affinity`) and compared by segment rules: the
refresh writes every member's shown score and the next refresh replaces them, on SQLite
and PostgreSQL; a rule on `affinity` selects, on DuckDB and on Spark, exactly the members
whose score pandas computes from the same facts and coefficients says it should (the
threshold exactly equal, a member with no behaviour, a merged member counted once under
its survivor), as does the real-time pass; and on the generated brand, the stored scores
and a rule agree with pandas and with the `auto.affinity` bands."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pytest
from ibis import BaseBackend
from sqlalchemy import Engine, text
from tests.analytics.store_brand import T1, event, import_and_resolve, write_brand
from tests.brandfiles import write
from tests.conftest import Store
from tests.segments import autotag_reference as ref
from tests.segments.test_automatic_tags import demo, frame, held  # noqa: F401

from siyu.analytics.engines import connect, engine_name, to_arrow
from siyu.analytics.landing import land
from siyu.analytics.warehouse import Warehouse, open_warehouse
from siyu.config import DEFAULT_STRONG_TYPES
from siyu.errors import ValidationError
from siyu.identity.resolve import resolve_all
from siyu.importer.service import import_directory
from siyu.privacy import Vault
from siyu.segments.affinity import AffinityRules, band_of, explain, save_rules
from siyu.segments.automatic import refresh_automatic_tags
from siyu.segments.compile import SegmentTables, compile_rule
from siyu.segments.evaluate import preview_rule
from siyu.segments.realtime import evaluate_members
from siyu.segments.rules import parse_document, references
from siyu.segments.sources import segment_tables
from siyu.segments.stored import define_segment

T = datetime(2024, 3, 5, 8, 0, 0)  # the small brand's data end (its last order)
ONLY = ["auto.affinity"]
# spend and events only, halving every 7 days: refunding a member's orders in full leaves
# it nothing to score
SPEND_AND_EVENTS = AffinityRules.model_validate(
    {
        "coefficients": {"spend_per_100_yuan": 5, "view": 1, "add_to_cart": 2, "sign_in": 3},
        "window_days": 30,
        "half_life_days": 7,
        "bands": [{"value": "high", "min_score": 4}, {"value": "low", "min_score": 0.5}],
    }
)
WITH_ORDERS = AffinityRules.model_validate(
    {
        "coefficients": {"orders": 10, "spend_per_100_yuan": 5, "view": 1, "add_to_cart": 2},
        "window_days": 30,
        "half_life_days": 7,
    }
)


def seconds(at: datetime) -> int:
    return int(pd.Timestamp(at).value // 1_000_000_000)


def facts(engine: Engine, group_id: str) -> dict[str, pd.DataFrame]:
    """The store's own rows (facts carry their current member after OneID)."""
    sql = {
        "orders": "SELECT order_id, member_id, status, ordered_at, paid_fen FROM orders "
        "WHERE group_id = :g",
        "refunds": "SELECT order_id, amount_fen FROM refunds WHERE group_id = :g",
        "events": "SELECT member_id, type, occurred_at FROM events WHERE group_id = :g",
        "members": "SELECT member_id, status FROM members WHERE group_id = :g",
    }
    return {name: frame(engine, query, group_id) for name, query in sql.items()}


def active_members(raw: dict[str, pd.DataFrame]) -> set[int]:
    members = raw["members"]
    return {int(m) for m in members.member_id[members.status == "active"]}


def pandas_shown(
    raw: dict[str, pd.DataFrame], rules: AffinityRules, as_of: datetime
) -> dict[int, float]:
    """Every active member's score rounded to 4 places as pandas computes it (0 without
    behaviour in the window)."""
    active = active_members(raw)
    totals = ref.affinity_scores(
        raw["orders"],
        raw["refunds"],
        raw["events"],
        active,
        seconds(as_of),
        dict(rules.coefficients),
        rules.window_days,
        rules.half_life_days,
    )
    return {m: round(totals.get(m, 0.0), 4) for m in active}


def as_e4(shown: dict[int, float]) -> dict[int, int]:
    """The rows `member_affinity` should hold: shown scores other than 0, in 1/10,000."""
    return {m: round(s * 10_000) for m, s in shown.items() if s != 0}


def stored(engine: Engine, group_id: str) -> pd.DataFrame:
    return frame(
        engine,
        "SELECT member_id, score_e4, rules_version, as_of, computed_at FROM member_affinity "
        "WHERE group_id = :g",
        group_id,
    )


def stored_e4(engine: Engine, group_id: str) -> dict[int, int]:
    rows = stored(engine, group_id)
    return dict(zip(rows.member_id.astype(int), rows.score_e4.astype(int), strict=True))


def member_of(engine: Engine, group_id: str, order_id: str) -> int:
    sql = "SELECT member_id FROM orders WHERE group_id = :g AND order_id = :o"
    with engine.connect() as conn:
        return int(conn.execute(text(sql), {"g": group_id, "o": order_id}).scalar_one())


def refresh(store: Store, where: Path) -> None:
    land(store.engine, store.group_id, where)
    con = connect("duckdb")
    try:
        wh = open_warehouse(con, where, store.group_id)
        refresh_automatic_tags(store.engine, wh, store.group_id, as_of=T, only=ONLY)
    finally:
        con.disconnect()


def link_t1_to_m1_card(directory: Path) -> None:
    """A verified link between M1's card and the Tmall buyer T-1: OneID merges the two."""
    write(
        directory / "identities.csv",
        [
            {
                "type": "card",
                "value": "C001",
                "scope": "B1",
                "channel": "tmall",
                "observed_at": "2024-03-04T10:00:00",
                "verified": "true",
                "linked_type": T1[0],
                "linked_value": T1[1],
            }
        ],
    )


def import_more(store: Store, vault: Vault, directory: Path) -> None:
    """Import the files in `directory` (every row accepted), then batch OneID."""
    report = import_directory(
        store.engine, vault, store.group_id, directory, directory.parent / "rejects"
    )
    assert not list((directory.parent / "rejects").glob("*")), report
    resolve_all(store.engine, store.group_id, DEFAULT_STRONG_TYPES)


def rule(condition: dict[str, Any]) -> dict[str, Any]:
    return {"version": 1, "rule": condition}


def affinity(op: str, value: Any) -> dict[str, Any]:
    return {"attribute": "affinity", "op": op, "value": value}


def test_a_refresh_stores_the_scores_and_the_next_one_replaces_them(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    # given the small brand: M1 (O1, refunded 9 yuan of 99, a view), M2 (O2, O5), M3 (only
    # a cancelled order: no behaviour), the Tmall buyer T-1 (O4, a view, a cart); and rules
    # on spend and events only, halving every 7 days
    g = store.group_id
    import_and_resolve(store.engine, vault, g, write_brand(tmp_path / "brand"))
    m1, m2, m3, t1 = (member_of(store.engine, g, o) for o in ("O1", "O2", "O3", "O4"))
    save_rules(store.engine, g, SPEND_AND_EVENTS, None)
    at_least_one = rule(affinity("gte", 1))
    # a rule on the score is refused while no refresh has computed it (all would read 0)
    with store.engine.begin() as conn, pytest.raises(ValidationError) as early:
        define_segment(
            conn, g, "engaged", name_zh="活跃", name_en="Engaged", rule=at_least_one, owner="k"
        )
    assert early.value.field == "rule" and "siyu tags refresh" in str(early.value)
    # when the tags are refreshed as of T
    refresh(store, tmp_path / "siyu.duckdb")
    # then each member who scores holds its shown score, as pandas computes it from the
    # store's facts; M3, without behaviour, has no row (it reads 0)
    before = pandas_shown(facts(store.engine, g), SPEND_AND_EVENTS, T)
    first = stored(store.engine, g)
    assert stored_e4(store.engine, g) == as_e4(before)
    assert set(first.member_id.astype(int)) == {m1, m2, t1} and before[m3] == 0
    assert set(first.rules_version) == {1}
    assert {pd.Timestamp(a).to_pydatetime() for a in first.as_of} == {T}
    # and a member's explanation, by default, is of the stored moment: the same number
    for m, e4 in as_e4(before).items():
        explained = explain(store.engine, g, m)
        assert (explained.as_of, round(explained.score * 10_000)) == (T, e4)
    # and auto.affinity bands the same numbers
    bands = {m: band_of(SPEND_AND_EVENTS, e4 / 10_000) for m, e4 in as_e4(before).items()}
    assert held(store.engine, g)["auto.affinity"] == {m: b for m, b in bands.items() if b}
    # and a rule may now name it
    with store.engine.begin() as conn:
        define_segment(
            conn, g, "engaged", name_zh="活跃", name_en="Engaged", rule=at_least_one, owner="k"
        )
    # when behaviour changes: M3 signs in, M2's two orders are refunded in full, and a
    # verified link ties T-1 to M1's card, so OneID merges the two
    changes = tmp_path / "changes"
    write(
        changes / "events.csv",
        [event("S1", "sign_in", "2024-03-04T10:00:00", ("card", "C003"))],
    )
    write(
        changes / "refunds.csv",
        [
            {
                "refund_id": "R2",
                "order_id": "O2",
                "refunded_at": T.isoformat(),
                "amount_fen": "1000",
            },
            {
                "refund_id": "R3",
                "order_id": "O5",
                "refunded_at": T.isoformat(),
                "amount_fen": "3000",
            },
        ],
    )
    link_t1_to_m1_card(changes)
    import_more(store, vault, changes)
    survivor = member_of(store.engine, g, "O1")
    gone = t1 if survivor == m1 else m1
    assert member_of(store.engine, g, "O4") == survivor
    # and the tags are refreshed again
    refresh(store, tmp_path / "siyu.duckdb")
    # then the scores are pandas' on the new facts: M3 has one, M2 (nothing left to score)
    # and the merged member have none
    after = pandas_shown(facts(store.engine, g), SPEND_AND_EVENTS, T)
    second = stored_e4(store.engine, g)
    assert second == as_e4(after)
    assert set(second) == {survivor, m3} and gone in set(first.member_id.astype(int))
    # and the survivor's score counts M1's and T-1's facts once each
    assert second[survivor] / 10_000 == pytest.approx(before[m1] + before[t1], abs=2e-4)
    assert second[survivor] > max(first.score_e4)
    # and the band tag followed: M2 and the merged member left it, M3 entered
    bands = {m: band_of(SPEND_AND_EVENTS, e4 / 10_000) for m, e4 in second.items()}
    assert held(store.engine, g)["auto.affinity"] == {m: b for m, b in bands.items() if b}


@pytest.fixture
def merged_brand(store: Store, vault: Vault, tmp_path: Path) -> dict[str, Any]:
    """The small brand with T-1 merged into M1 (the older member survives), rules with
    orders and decay, and the scores written as of T."""
    g = store.group_id
    import_and_resolve(store.engine, vault, g, write_brand(tmp_path / "brand"))
    m1, t1 = member_of(store.engine, g, "O1"), member_of(store.engine, g, "O4")
    link_t1_to_m1_card(tmp_path / "link")
    import_more(store, vault, tmp_path / "link")
    save_rules(store.engine, g, WITH_ORDERS, None)
    refresh(store, tmp_path / "siyu.duckdb")
    survivor = member_of(store.engine, g, "O1")
    assert member_of(store.engine, g, "O4") == survivor
    return {
        "survivor": survivor,
        "gone": t1 if survivor == m1 else m1,
        "m2": member_of(store.engine, g, "O2"),
        "m3": member_of(store.engine, g, "O3"),
    }


def warehouse_for(con: BaseBackend, store: Store, tmp_path: Path) -> Warehouse:
    """The store landed where the engine reads it: a DuckDB file, or Parquet for Spark."""
    if engine_name(con) == "duckdb":
        return open_warehouse(con, tmp_path / "siyu.duckdb", store.group_id)
    land(store.engine, store.group_id, tmp_path / "lake", "parquet")
    return open_warehouse(con, tmp_path / "lake", store.group_id)


def affinity_tables(store: Store, con: BaseBackend, wh: Warehouse) -> SegmentTables:
    """What a rule on `affinity` reads, loaded once for every case."""
    needs = references(parse_document(rule(affinity("gte", 0))).rule)
    return segment_tables(store.engine, con, wh, needs)


def selected(
    con: BaseBackend, tables: SegmentTables, doc: dict[str, Any], at: datetime
) -> set[int]:
    return selected_each(con, tables, [doc], at)[0]


def selected_each(
    con: BaseBackend, tables: SegmentTables, docs: list[dict[str, Any]], at: datetime
) -> list[set[int]]:
    """Each rule's members, every rule in one query (one Spark job, not one per rule)."""
    parts = [compile_rule(d, tables, at).mutate(case=ibis.literal(i)) for i, d in enumerate(docs)]
    rows = to_arrow(con, ibis.union(*parts, distinct=False)) if len(parts) > 1 else None
    rows = rows if rows is not None else to_arrow(con, parts[0])
    found: list[list[int]] = [[] for _ in docs]
    for case, member in zip(rows["case"].to_pylist(), rows["member_id"].to_pylist(), strict=True):
        found[case].append(int(member))
    assert all(len(f) == len(set(f)) for f in found)
    return [set(f) for f in found]


COMPARE = {
    "gte": lambda s, v: s >= v,
    "lte": lambda s, v: s <= v,
    "eq": lambda s, v: s == v,
}


def test_a_rule_on_affinity_selects_the_members_pandas_does(
    con: BaseBackend, store: Store, merged_brand: dict[str, Any], tmp_path: Path
) -> None:
    # given the scores written as of T, and pandas' from the same facts and coefficients
    g, survivor, gone = store.group_id, merged_brand["survivor"], merged_brand["gone"]
    raw = facts(store.engine, g)
    shown = pandas_shown(raw, WITH_ORDERS, T)
    assert stored_e4(store.engine, g) == as_e4(shown)
    # the merged member is not active; M3, without behaviour, scores 0
    assert gone not in shown and shown[merged_brand["m3"]] == 0
    assert set(shown) == {survivor, merged_brand["m2"], merged_brand["m3"]}
    wh = warehouse_for(con, store, tmp_path)
    tables = affinity_tables(store, con, wh)
    # when rules compare the score at each member's shown score (0 among them) and a
    # ten-thousandth above it
    cases: list[tuple[dict[str, Any], set[int]]] = []
    for score in sorted(set(shown.values())):
        for value in (score, round(score + 0.0001, 4)):
            for op, holds in COMPARE.items():
                want = {m for m, s in shown.items() if holds(s, value)}
                cases.append((rule(affinity(op, value)), want))
        low, high = score, round(score + 5, 4)
        want = {m for m, s in shown.items() if low <= s <= high}
        cases.append((rule(affinity("between", [low, high])), want))
        want = {m for m, s in shown.items() if not s >= score}
        cases.append((rule({"not": affinity("gte", score)}), want))
    cases.append((rule(affinity("gte", 10)), {m for m, s in shown.items() if s >= 10}))
    # then each selects exactly the members pandas does: the threshold itself is
    # included, the merged member never (its facts count once, for the survivor)
    got = selected_each(con, tables, [doc for doc, _ in cases], T)
    for (doc, want), found in zip(cases, got, strict=True):
        assert found == want, doc["rule"]
    assert any(want and len(want) < len(shown) for _, want in cases)
    exactly = rule(affinity("gte", shown[survivor]))
    assert survivor in selected(con, tables, exactly, T)
    assert gone not in selected(con, tables, rule(affinity("lte", 0)), T)
    # and the preview counts the same
    preview = preview_rule(store.engine, con, wh, exactly, as_of=T, exact=True)
    assert preview.size == len({m for m, s in shown.items() if s >= shown[survivor]})
    # and the real-time pass, reading the store, selects the same members
    everyone = np.array(sorted(shown), dtype=np.int64)
    with store.engine.connect() as conn:
        for doc, want in cases[:12]:
            found = evaluate_members(conn, g, parse_document(doc), everyone, T)
            assert set(found.tolist()) == want, doc["rule"]


def test_on_the_generated_brand_scores_and_rules_agree_with_pandas(
    con: BaseBackend,
    demo: dict[str, Any],  # noqa: F811
) -> None:
    # given the generated brand (600 members, OneID merged some) on the default rules
    engine, as_of = demo["engine"], demo["as_of"]
    where = demo["root"] / ("siyu.duckdb" if engine_name(con) == "duckdb" else "lake")
    wh = open_warehouse(con, where, "g1")
    # when the scores are refreshed
    refresh_automatic_tags(engine, wh, "g1", as_of=as_of, only=ONLY)
    # then they are pandas' scores from the store's facts, merged members left out
    shown = pandas_shown(facts(engine, "g1"), AffinityRules(), as_of)
    assert stored_e4(engine, "g1") == as_e4(shown)
    assert len(as_e4(shown)) > 100
    # and "affinity ≥ 30" selects the pandas members, who are auto.affinity's high and
    # medium holders; "affinity ≤ 0" the active members who did nothing in the year
    medium_up = {m for m, s in shown.items() if s >= 30}
    assert 5 < len(medium_up) < len(shown)
    tables = segment_tables(
        engine, con, wh, references(parse_document(rule(affinity("gte", 0))).rule)
    )
    assert selected(con, tables, rule(affinity("gte", 30)), as_of) == medium_up
    tagged = held(engine, "g1")["auto.affinity"]
    assert {m for m, band in tagged.items() if band in ("high", "medium")} == medium_up
    idle = selected(con, tables, rule(affinity("lte", 0)), as_of)
    assert idle == {m for m, s in shown.items() if s <= 0}
