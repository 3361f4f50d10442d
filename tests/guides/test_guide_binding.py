"""A member's own guide: bound by rule (acquisition before first purchase, the earliest
evidence first), rebound by HQ, released when a guide leaves, followed through merges;
history kept, every step safe to repeat. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from tests.guides.journey import Journey, at

from siyu.errors import ValidationError
from siyu.guides.binding import (
    bind_all,
    current_binding,
    follow_merges,
    history,
    rebind,
    release_guide,
)
from siyu.guides.errors import GuideLeft, GuideNotFound
from siyu.identity.service import merge_members, unmerge


def test_rules_bind_by_acquisition_then_first_store_purchase(journey: Journey) -> None:
    # given: M1 scanned G2's code before buying from G1; M2 added G3 on WeCom before buying
    # from G1; M6 added G3 on WeCom before scanning G2's code; M3 bought at the till first
    # without a guide, then from G1, then from G2; M4 bought online only; M5 did nothing
    j = journey
    j.scan("M1", "qr-g2", "G2", at(2))
    j.order("M1", "o1", at(3), guide="G1")
    j.event("M2", "wecom_add", at(2), guide="G3")
    j.order("M2", "o2", at(1), guide="G1")
    j.event("M6", "wecom_add", at(3), guide="G3")
    j.scan("M6", "qr-g2", "G2", at(5))
    j.order("M3", "o3a", at(1))
    j.order("M3", "o3b", at(2), guide="G1")
    j.order("M3", "o3c", at(3), guide="G2")
    j.order("M4", "o4", at(2), guide="G2", channel="miniprogram")
    j.order("M3", "o3x", at(1, 8), guide="G3", status="cancelled")
    # when the rules run
    bound = bind_all(j.store.engine, j.g, at(10))
    # then each member has the guide of its best evidence, by the rule that found it
    assert {m: j.bindings(m) for m in ("M1", "M2", "M3", "M6")} == {
        "M1": [("G2", "scene", None)],
        "M2": [("G3", "wecom", None)],
        "M3": [("G1", "first_purchase", None)],
        "M6": [("G3", "wecom", None)],
    }
    assert j.bindings("M4") == [] and j.bindings("M5") == []
    assert bound.by_rule == {"scene": 1, "wecom": 2, "first_purchase": 1}
    with j.store.engine.connect() as conn:
        found = current_binding(conn, j.g, j.members["M3"])
    assert found is not None and found.store_id == "S1" and found.bound_at == at(10)
    # and running again binds nobody twice
    assert bind_all(j.store.engine, j.g, at(11)).total == 0
    assert j.store.count("guide_bindings") == 4


def test_hq_rebinds_with_history_and_the_rules_never_override_it(journey: Journey) -> None:
    j = journey
    j.scan("M1", "qr-g2", "G2", at(2))
    bind_all(j.store.engine, j.g, at(3))
    # when HQ binds M1 to G1
    made = rebind(j.store.engine, j.g, j.members["M1"], "G1", "moved to G1's district", 7, at(4))
    # then the scene binding ended as rebound, with HQ's reason, and G1's began
    assert (made.guide_id, made.rule, made.bound_at) == ("G1", "hq", at(4))
    assert j.bindings("M1") == [("G2", "scene", "rebound"), ("G1", "hq", None)]
    with j.store.engine.connect() as conn:
        past = history(conn, j.g, j.members["M1"])
    assert [(b.guide_id, b.note) for b in past] == [
        ("G1", "moved to G1's district"),
        ("G2", "moved to G1's district"),
    ]
    # and the rules, run again, leave HQ's binding; rebinding to the same guide changes nothing
    bind_all(j.store.engine, j.g, at(5))
    rebind(j.store.engine, j.g, j.members["M1"], "G1", "again", 7, at(6))
    assert j.bindings("M1") == [("G2", "scene", "rebound"), ("G1", "hq", None)]


@pytest.mark.parametrize(
    ("guide", "reason", "error"),
    [("G9", "why", GuideNotFound), ("G1", "  ", ValidationError), ("G4", "why", GuideLeft)],
)
def test_a_refused_rebind_changes_nothing(
    journey: Journey, guide: str, reason: str, error: type[Exception]
) -> None:
    j = journey
    j.order("M1", "o1", at(1), guide="G2")
    bind_all(j.store.engine, j.g, at(2))
    release_guide(j.store.engine, j.g, "G4", "left the brand", at=at(2))
    with pytest.raises(error):
        rebind(j.store.engine, j.g, j.members["M1"], guide, reason, at=at(3))
    assert j.bindings("M1") == [("G2", "first_purchase", None)]


def test_a_guide_leaving_hands_its_members_to_the_store(journey: Journey) -> None:
    # given: M1, M2, M3 bought first from G1; M4 bought first from G1, then from G2; M5
    # bought first from G4, the only guide of store S2
    j = journey
    for m in ("M1", "M2", "M3", "M4"):
        j.order(m, f"{m}-1", at(1), guide="G1")
    j.order("M4", "M4-2", at(2), guide="G2")
    j.order("M5", "M5-1", at(1), guide="G4")
    bind_all(j.store.engine, j.g, at(3))
    assert [j.live(m) for m in ("M1", "M2", "M3", "M4", "M5")] == ["G1"] * 4 + ["G4"]
    # when G1 and G4 leave
    g1 = release_guide(j.store.engine, j.g, "G1", "resigned", 7, at(5))
    g4 = release_guide(j.store.engine, j.g, "G4", "store closed", 7, at(5))
    # then M4 goes by its next evidence (its first purchase from a guide still here), the
    # others in turn to S1's remaining guides; S2 has nobody left, so M5 stays unbound
    assert j.bindings("M4") == [
        ("G1", "first_purchase", "guide_left"),
        ("G2", "first_purchase", None),
    ]
    assert [j.live(m) for m in ("M1", "M2", "M3")] == ["G2", "G3", "G2"]
    assert j.bindings("M1")[-1] == ("G2", "store", None)
    assert j.bindings("M5") == [("G4", "first_purchase", "guide_left")]
    assert (g1.released, g1.rebound, g4.released, g4.rebound) == (4, 4, 1, 0)
    with j.store.engine.connect() as conn:
        ended = history(conn, j.g, j.members["M5"])[0]
    assert (ended.ended_at, ended.note) == (at(5), "store closed")
    # and releasing again, or running the rules again, changes nothing
    again = release_guide(j.store.engine, j.g, "G1", "resigned", 7, at(6))
    assert (again.released, bind_all(j.store.engine, j.g, at(6)).total) == (0, 0)
    assert j.store.count("guide_bindings") == 9


def test_a_merge_keeps_the_survivors_guide_or_inherits_the_earliest(journey: Journey) -> None:
    # given: M1 (registered first) bound to G1, M2 to G2; M3 unbound, M4 bound to G3, M5 to
    # G2 later than M4
    j = journey
    j.order("M1", "o1", at(1), guide="G1")
    j.scan("M2", "qr-g2", "G2", at(1))
    bind_all(j.store.engine, j.g, at(2))
    rebind(j.store.engine, j.g, j.members["M4"], "G3", "HQ", at=at(3))
    rebind(j.store.engine, j.g, j.members["M5"], "G2", "HQ", at=at(4))
    # when M1 and M2 are merged, then M3, M4 and M5
    engine = j.store.engine
    merge_members(engine, j.g, j.members["M1"], j.members["M2"], "same person")
    merge_members(engine, j.g, j.members["M3"], j.members["M4"], "same person")
    merge_members(engine, j.g, j.members["M3"], j.members["M5"], "same person")
    # then M1 keeps G1 and M2's binding ended as merged; M3 inherited the earliest (G3)
    assert j.bindings("M1") == [("G1", "first_purchase", None)]
    assert j.bindings("M2") == [("G2", "scene", "merged")]
    assert j.bindings("M3") == [("G3", "inherited", None)]
    assert j.bindings("M4")[-1] == ("G3", "hq", "merged")
    assert j.bindings("M5")[-1] == ("G2", "hq", "merged")
    with engine.connect() as conn:
        inherited = current_binding(conn, j.g, j.members["M3"])
        merge_id = conn.execute(
            text("SELECT merge_id FROM merges WHERE group_id = :g AND merged_id = :m"),
            {"g": j.g, "m": j.members["M4"]},
        ).scalar_one()
        carried = conn.execute(
            text("SELECT merge_id FROM guide_bindings WHERE binding_id = :b"),
            {"b": inherited.binding_id if inherited else None},
        ).scalar_one()
    assert inherited is not None and inherited.bound_at == at(3) and carried == merge_id
    # and HQ rebinding an absorbed member's id rebinds its survivor
    rebind(engine, j.g, j.members["M2"], "G3", "asked for G3", at=at(20))
    assert j.live("M1") == "G3" and j.live("M2") is None
    assert bind_all(engine, j.g, at(21)).total == 0


def test_an_unmerge_gives_the_restored_member_its_guide_back(journey: Journey) -> None:
    # given M4 bound to G3 merged into M3, who had no guide and inherited G3
    j = journey
    engine = j.store.engine
    rebind(engine, j.g, j.members["M4"], "G3", "HQ", at=at(3))
    merge_id, _ = merge_members(engine, j.g, j.members["M3"], j.members["M4"], "same person")
    assert j.live("M3") == "G3" and j.live("M4") is None
    # when the merge is undone
    unmerge(engine, j.g, merge_id, "two people after all")
    # then M4 has G3 again and M3's inherited copy is gone
    assert j.bindings("M4") == [("G3", "hq", None)]
    assert j.bindings("M3") == []
    # and following again changes nothing
    follow_merges(engine, j.g)
    assert j.bindings("M4") == [("G3", "hq", None)] and j.bindings("M3") == []
