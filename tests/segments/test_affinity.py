"""The affinity score on SQLite and PostgreSQL: scores hand-computed from hand-made facts
(decay, refunds, cancelled orders, the window's edges to the second, a member without
facts, a merged member), the rules' validation and versions, the `auto.affinity` bands,
and the tiers' activity equal to the affinity score under the same weights, no decay."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert
from tests.conftest import Store

from siyu.errors import ValidationError
from siyu.identity.models import members
from siyu.ledger import program, tiers
from siyu.orders.models import events, orders, refunds
from siyu.orders.scoring import Weights, score_members
from siyu.segments.affinity import (
    AffinityRules,
    affinity_rules,
    band_of,
    explain,
    parse_rules,
    rules_version,
    save_rules,
    weights_of,
)
from siyu.segments.affinity.writeback import write_scores
from siyu.segments.automatic import BY_SLUG

T = datetime(2024, 6, 30, 12, 0, 0)
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
RULES = AffinityRules(
    coefficients={"orders": 10, "spend_per_100_yuan": 2, "sign_in": 1, "share": 4},
    window_days=30,
    half_life_days=10,
)


def _member(conn: Any, group: str, status: str = "active") -> int:
    return int(
        conn.execute(
            insert(members).returning(members.c.member_id),
            {
                "group_id": group,
                "status": status,
                "registered_at": T - 400 * DAY,
                "created_at": T,
                "updated_at": T,
            },
        ).scalar_one()
    )


def _order(
    conn: Any, group: str, oid: str, member: int, at: datetime, paid: int, status: str = "paid"
) -> None:
    conn.execute(
        insert(orders),
        {
            "group_id": group,
            "order_id": oid,
            "brand_id": "B1",
            "channel": "pos",
            "buyer_identity_id": 1,
            "member_id": member,
            "status": status,
            "ordered_at": at,
            "total_fen": paid,
            "discount_fen": 0,
            "paid_fen": paid,
        },
    )


def _event(conn: Any, group: str, eid: str, member: int, kind: str, at: datetime) -> None:
    conn.execute(
        insert(events),
        {
            "group_id": group,
            "event_id": eid,
            "type": kind,
            "channel": "miniprogram",
            "identity_id": 1,
            "member_id": member,
            "occurred_at": at,
        },
    )


@pytest.fixture
def brand(store: Store) -> dict[str, int]:
    """A: orders, a refund, sign-ins and shares around the window's edges; B: only an
    unweighted view; C: nothing; D: merged (holding facts it should no longer hold)."""
    g = store.group_id
    with store.engine.begin() as conn:
        a, b, c = _member(conn, g), _member(conn, g), _member(conn, g)
        d = _member(conn, g, "merged")
        _order(conn, g, "O1", a, T, 30_000)  # at T: inside, age 0
        conn.execute(
            insert(refunds),
            {
                "group_id": g,
                "refund_id": "R1",
                "order_id": "O1",
                "refunded_at": T,
                "amount_fen": 5_000,
            },
        )
        _order(conn, g, "O2", a, T - 10 * DAY, 10_000)  # one half-life old
        _order(conn, g, "O3", a, T - DAY, 50_000, "cancelled")  # never counts
        _order(conn, g, "O4", a, T - 30 * DAY, 70_000)  # exactly 30 days: outside
        _order(conn, g, "O5", a, T + SECOND, 70_000)  # after T: ignored
        _event(conn, g, "E1", a, "sign_in", T)  # at T: inside, weight 1
        _event(conn, g, "E2", a, "sign_in", T - 20 * DAY)  # two half-lives: 0.25
        _event(conn, g, "E3", a, "share", T - 30 * DAY)  # exactly 30 days: outside
        _event(conn, g, "E4", a, "share", T - 30 * DAY + SECOND)  # just inside
        _event(conn, g, "E5", a, "sign_in", T + SECOND)  # after T: ignored
        _event(conn, g, "E6", a, "view", T - DAY)  # no coefficient: no points
        _event(conn, g, "E7", b, "view", T - DAY)
        _order(conn, g, "O6", d, T - DAY, 90_000)
        _event(conn, g, "E8", d, "share", T - DAY)
    return {"a": a, "b": b, "c": c, "d": d}


def test_scores_are_the_hand_computed_ones_with_decay_and_edges(
    store: Store, brand: dict[str, int]
) -> None:
    # given the rules: orders 10, spend 2 per 100 yuan, sign-in 1, share 4; 30 days; h = 10
    with store.engine.connect() as conn:
        scores = score_members(conn, store.group_id, weights_of(RULES), T)
    a = scores[brand["a"]]
    parts = {p.behaviour: p for p in a.parts}
    # then orders: O1 (age 0) and O2 (one half-life); O3 cancelled, O4 on the edge, O5 late
    assert (parts["orders"].count, parts["orders"].decayed) == (2, pytest.approx(1.5))
    assert parts["orders"].points == pytest.approx(15)
    # spend: O1 300 - 50 refunded = 2.5 hundreds at weight 1, O2 1 hundred at 0.5
    assert parts["spend_per_100_yuan"].count == pytest.approx(3.5)
    assert parts["spend_per_100_yuan"].decayed == pytest.approx(3.0)
    assert parts["spend_per_100_yuan"].points == pytest.approx(6.0)
    # sign-ins: at T (1) and 20 days before (0.25); the one after T is ignored
    assert (parts["sign_in"].count, parts["sign_in"].decayed) == (2, pytest.approx(1.25))
    # shares: the one exactly 30 days old is out, the one a second younger is in
    share = 0.5 ** ((30 * 86_400 - 1) / (10 * 86_400))
    assert parts["share"].count == 1
    assert parts["share"].decayed == pytest.approx(share, rel=1e-9)
    assert parts["share"].points == pytest.approx(4 * share, rel=1e-9)
    assert a.total == pytest.approx(15 + 6 + 1.25 + 4 * share, rel=1e-9)
    assert [p.behaviour for p in a.parts] == ["orders", "spend_per_100_yuan", "sign_in", "share"]
    # and B, with an unweighted view only, scores 0; C without facts is not listed
    assert scores[brand["b"]].total == 0
    assert brand["c"] not in scores
    # and the merged member is listed only when merged members are not left out
    assert brand["d"] in scores
    with store.engine.connect() as conn:
        active = score_members(conn, store.group_id, weights_of(RULES), T, active_only=True)
    assert brand["d"] not in active and set(active) == {brand["a"], brand["b"]}


def test_without_decay_counts_are_whole_and_edges_hold(store: Store, brand: dict[str, int]) -> None:
    weights = Weights(events={"sign_in": 1, "share": 5}, window_days=30, orders=10)
    with store.engine.connect() as conn:
        a = score_members(conn, store.group_id, weights, T, [brand["a"]])[brand["a"]]
        # a window ending a second before T drops what happened at T
        early = score_members(conn, store.group_id, weights, T - SECOND, [brand["a"]])
    assert [(p.behaviour, p.count, p.decayed, p.points) for p in a.parts] == [
        ("orders", 2, 2, 20),
        ("sign_in", 2, 2, 2),
        ("share", 1, 1, 5),
    ]
    assert a.total == 27
    # at T - 1 s: O1 and E1 (at T) are out; O4 and E3 (30 days before T) are now inside
    late = {p.behaviour: p.count for p in early[brand["a"]].parts}
    assert late == {"orders": 2, "sign_in": 1, "share": 2}


def test_explain_gives_every_part_and_a_member_without_facts_scores_zero(
    store: Store, brand: dict[str, int]
) -> None:
    save_rules(store.engine, store.group_id, RULES, None)
    # when a member without facts is explained, then every behaviour is there, at zero
    c = explain(store.engine, store.group_id, brand["c"], T)
    assert c.score == 0 and c.band is None and c.version == 1
    assert [(p.behaviour, p.count, p.points) for p in c.parts] == [
        ("orders", 0, 0),
        ("spend_per_100_yuan", 0, 0),
        ("sign_in", 0, 0),
        ("share", 0, 0),
    ]
    # and A's explanation adds up to its score, in the rules' window and half-life
    a = explain(store.engine, store.group_id, brand["a"], T)
    assert (a.window_days, a.half_life_days, a.as_of) == (30, 10, T)
    assert a.score == pytest.approx(sum(p.points for p in a.parts), abs=1e-3)
    assert a.score == pytest.approx(22.25 + 4 * 0.5 ** (2_591_999 / 864_000), abs=1e-4)
    assert a.band == "low"  # the default bands: high 100, medium 30, low 1


def test_auto_affinity_bands_active_members_by_the_rules(
    store: Store, brand: dict[str, int]
) -> None:
    # given bands: top from 22.75, mid from 1; A scores 22.7500004 (shown 22.75), B 0
    bands = [{"value": "top", "min_score": 22.75}, {"value": "mid", "min_score": 1}]
    rules = AffinityRules.model_validate({**RULES.model_dump(), "bands": bands})
    save_rules(store.engine, store.group_id, rules, None)
    # when the scores are written and the automatic tag is computed from them, then A is
    # top, B (0) and C hold none, D is merged
    write_scores(store.engine, store.group_id, T)
    with store.engine.connect() as conn:
        rows = BY_SLUG["auto.affinity"].compute(conn, store.group_id, T)
    got = dict(zip(rows["member_id"].to_pylist(), rows["value"].to_pylist(), strict=True))
    assert got == {brand["a"]: "top"}
    # and with the top band a ten-thousandth higher, A is mid
    higher = [{"value": "top", "min_score": 22.7501}, {"value": "mid", "min_score": 1}]
    save_rules(
        store.engine,
        store.group_id,
        rules.model_validate({**rules.model_dump(), "bands": higher}),
        None,
    )
    write_scores(store.engine, store.group_id, T)
    with store.engine.connect() as conn:
        mid = BY_SLUG["auto.affinity"].compute(conn, store.group_id, T)
    assert mid["value"].to_pylist() == ["mid"]
    # and the band reads the shown (rounded to 4 decimals) score
    assert band_of(rules, 22.749_999_99) == "top"
    assert band_of(rules, 22.7499) == "mid"


def test_tier_activity_equals_the_affinity_score_under_the_same_weights(
    store: Store, brand: dict[str, int]
) -> None:
    # given tier rules with activity weights and affinity rules with the same, no decay
    weights = {"sign_in": 1, "share": 5, "view": 2}
    tier = program.TierRules(activity_weights=weights, window_days=30)
    rules = AffinityRules(coefficients=weights, window_days=30, half_life_days=None)
    for now in (T, T - SECOND, T + 5 * DAY):
        with store.engine.connect() as conn:
            activity = tiers.metrics(conn, store.group_id, None, tier, now)
            scores = score_members(conn, store.group_id, weights_of(rules), now)
        # then each member's tier activity is its affinity score, to the point
        assert {k[0]: m["activity"] for k, m in activity.items()} == {
            m: s.total for m, s in scores.items()
        }
    # and a member listed alone reads the same: A's sign-ins 1 + 1, share 5, view 2
    with store.engine.connect() as conn:
        one = tiers.metrics(conn, store.group_id, [brand["a"]], tier, T)
        alone = score_members(conn, store.group_id, weights_of(rules), T, [brand["a"]])
    assert one[(brand["a"], "*")]["activity"] == alone[brand["a"]].total == 1 + 1 + 5 + 2


@pytest.mark.parametrize(
    ("doc", "field", "rule"),
    [
        ({"coefficients": {"sign_in": -1}}, "coefficients.sign_in", "must be a number ≥ 0"),
        ({"coefficients": {"sign_in": "x"}}, "coefficients.sign_in", "must be a number ≥ 0"),
        ({"coefficients": {"sign_in": True}}, "coefficients.sign_in", "must be a number ≥ 0"),
        ({"coefficients": {"share": 10_001}}, "coefficients.share", "≤ 10000"),
        ({"coefficients": {"likes": 1}}, "coefficients", "'likes' is not a behaviour"),
        ({"half_life_days": 0}, "half_life_days", "greater than or equal to 1"),
        ({"window_days": 4000}, "window_days", "less than or equal to 3650"),
        (
            {"bands": [{"value": "a", "min_score": 1}, {"value": "b", "min_score": 5}]},
            "bands",
            "highest min_score down",
        ),
        (
            {"bands": [{"value": "a", "min_score": 5}, {"value": "a", "min_score": 1}]},
            "bands",
            "unique",
        ),
        ({"bands": [{"value": "A b", "min_score": 5}]}, "bands.0.value", "pattern"),
        ({"bands": [{"value": "a", "min_score": 0}]}, "bands.0.min_score", "greater than 0"),
        ({"bands": []}, "bands", "at least 1"),
        ({"decay": 1}, "decay", "Extra inputs"),
    ],
)
def test_rules_are_refused_naming_the_field_and_rule(doc: Any, field: str, rule: str) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_rules(doc)
    assert refused.value.field == field
    assert rule in refused.value.rule


def test_rules_are_versioned_and_the_newest_applies(store: Store) -> None:
    # given a group on the defaults: version 0
    with store.engine.connect() as conn:
        assert affinity_rules(conn, store.group_id) == (0, AffinityRules())
    assert rules_version(store.engine, store.group_id) == 0
    # when HQ stores two versions, then the second is in force and both are kept
    first = parse_rules({"coefficients": {"orders": 1}, "half_life_days": None})
    second = parse_rules({"coefficients": {"view": 0.5}})
    assert save_rules(store.engine, store.group_id, first, 7) == 1
    assert save_rules(store.engine, store.group_id, second, 7) == 2
    with store.engine.connect() as conn:
        assert affinity_rules(conn, store.group_id) == (2, second)
    assert store.count("loyalty_programs") == 2
    # and the tier rules are untouched by them
    assert program.version(store.engine, store.group_id, "tiers") == 0
    assert math.isclose(second.coefficients["view"], 0.5)
