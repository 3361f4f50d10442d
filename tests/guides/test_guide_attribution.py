"""Distribution: orders attributed to the guide whose share was touched last within the
window, else the till's guide, else the protected own guide; explainable, replaced per
period, on hand-made journeys. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from tests.guides.journey import Journey, at

from siyu.errors import ValidationError
from siyu.guides.attribution import AttributionRules, attribute, attributed_orders, explain
from siyu.guides.binding import rebind, release_guide
from siyu.guides.errors import GuideLeft, ShareCodeTaken, ShareNotFound
from siyu.guides.shares import record_share, record_touch, touches_from_events

DECEMBER = (at(1, 0), at(31, 0))


def _shares(j: Journey) -> None:
    record_share(j.store.engine, j.g, "G2", "product", "K1", "g2-durian")
    record_share(j.store.engine, j.g, "G3", "campaign", "CNY", "g3-cny")


def _touch(j: Journey, member: str, code: str, day: int, hour: int = 10) -> int:
    key = f"{member}-{code}-{day}-{hour}"
    return record_touch(
        j.store.engine, j.g, code, key, at(day, hour), member_id=j.members[member]
    ).touch_id


def _who(j: Journey) -> dict[str, tuple[str, str]]:
    with j.store.engine.connect() as conn:
        rows = attributed_orders(conn, j.g, *DECEMBER)
    return {r.order_id: (r.guide_id, r.basis) for r in rows}


def test_journeys_are_attributed_by_last_touch_till_and_own_guide(journey: Journey) -> None:
    j = journey
    _shares(j)
    rebind(j.store.engine, j.g, j.members["M3"], "G3", "HQ", at=at(1))
    # M1 opened G2's share on the 1st and bought at G1's till on the 5th: in the window
    touched = _touch(j, "M1", "g2-durian", 1)
    j.order("M1", "o-in", at(5), guide="G1")
    # M2 opened it on the 1st and bought at G1's till on the 10th: out of the 7-day window
    _touch(j, "M2", "g2-durian", 1)
    j.order("M2", "o-out-till", at(10), guide="G1")
    # M3 (own guide G3 since the 1st) opened G2's share on the 1st, bought online the 10th
    _touch(j, "M3", "g2-durian", 1)
    j.order("M3", "o-out-own", at(10), channel="miniprogram")
    # M4 opened G2's share on the 2nd, G3's on the 4th, bought online on the 5th
    _touch(j, "M4", "g2-durian", 2)
    _touch(j, "M4", "g3-cny", 4)
    j.order("M4", "o-two", at(5), channel="miniprogram")
    # M6 bought online on the 5th and opened G2's share on the 6th, after the order
    j.order("M6", "o-before", at(5), channel="miniprogram")
    _touch(j, "M6", "g2-durian", 6)
    # a cancelled order in the window is nobody's
    j.order("M1", "o-cancelled", at(5, 12), status="cancelled")
    # when December is attributed with the default rules (7 days, 30 days' protection)
    done = attribute(j.store.engine, j.g, *DECEMBER, at=at(31, 1))
    # then
    assert _who(j) == {
        "o-in": ("G2", "share"),
        "o-out-till": ("G1", "till"),
        "o-out-own": ("G3", "own_guide"),
        "o-two": ("G3", "share"),
    }
    assert done.by_basis == {"share": 2, "till": 1, "own_guide": 1}
    with j.store.engine.connect() as conn:
        why = explain(conn, j.g, "o-in")
        own = explain(conn, j.g, "o-out-own")
        rows = attributed_orders(conn, j.g, *DECEMBER)
        assert explain(conn, j.g, "o-before") is None
    assert why is not None and (why.share_code, why.share_kind, why.share_target) == (
        "g2-durian",
        "product",
        "K1",
    )
    assert (why.touch_id, why.touched_at, why.window_days, why.protect_days) == (
        touched,
        at(1),
        7,
        30,
    )
    assert own is not None and own.binding_rule == "hq" and own.binding_id is not None
    assert {(r.order_id, r.member_id, r.paid_fen, r.ordered_at) for r in rows} >= {
        ("o-in", j.members["M1"], 10_000, at(5))
    }
    # and running the period again replaces its rows with the same result
    again = attribute(j.store.engine, j.g, *DECEMBER, at=at(31, 2))
    assert again.by_basis == done.by_basis and j.store.count("order_attributions") == 4


def test_the_own_guide_is_protected_from_other_guides_touches(journey: Journey) -> None:
    # given M5 bound to G1 by HQ on the 1st, who opened G2's share on the 3rd and G1's own
    # share on the 8th, and bought online on the 4th and on the 9th
    j = journey
    _shares(j)
    record_share(j.store.engine, j.g, "G1", "page", "/pages/new", "g1-new")
    rebind(j.store.engine, j.g, j.members["M5"], "G1", "HQ", at=at(1))
    _touch(j, "M5", "g2-durian", 3)
    j.order("M5", "o-4th", at(4), channel="miniprogram")
    _touch(j, "M5", "g1-new", 8)
    j.order("M5", "o-9th", at(9), channel="miniprogram")
    # when attributed with 30 days' protection: G2's touch cannot take the order from G1,
    # while G1's own share does
    attribute(j.store.engine, j.g, *DECEMBER, AttributionRules(7, 30))
    assert _who(j) == {"o-4th": ("G1", "own_guide"), "o-9th": ("G1", "share")}
    # when attributed again with no protection: the last touch wins
    attribute(j.store.engine, j.g, *DECEMBER, AttributionRules(7, 0))
    assert _who(j) == {"o-4th": ("G2", "share"), "o-9th": ("G1", "share")}
    # and with a protection of 2 days (ended on the 3rd) the own guide gets nothing
    # without a touch or a till of its own
    j.order("M5", "o-20th", at(20), channel="miniprogram")
    attribute(j.store.engine, j.g, *DECEMBER, AttributionRules(7, 2))
    assert _who(j) == {"o-4th": ("G2", "share"), "o-9th": ("G1", "share")}


def test_touches_by_identity_and_from_events(journey: Journey) -> None:
    # given a touch recorded by the buyer's identity (the channel saw the card, not the
    # member), and a view event whose scene is G3's share code
    j = journey
    _shares(j)
    record_touch(j.store.engine, j.g, "g2-durian", "t-1", at(2), identity_id=j.cards["M1"])
    j.order("M1", "o-1", at(3), channel="miniprogram")
    j.event("M2", "view", at(4), scene="g3-cny")
    j.order("M2", "o-2", at(5), channel="miniprogram")
    # when the events' touches are recorded (twice) and December is attributed
    assert touches_from_events(j.store.engine, j.g, *DECEMBER) == 1
    assert touches_from_events(j.store.engine, j.g, *DECEMBER) == 0
    attribute(j.store.engine, j.g, *DECEMBER)
    # then
    assert _who(j) == {"o-1": ("G2", "share"), "o-2": ("G3", "share")}
    # and a retried touch is recorded once
    again = record_touch(j.store.engine, j.g, "g2-durian", "t-1", at(9), identity_id=1)
    assert again.touched_at == at(2) and j.store.count("share_touches") == 2


def test_a_left_guide_keeps_earlier_touches_but_gets_no_new_ones(journey: Journey) -> None:
    j = journey
    _shares(j)
    _touch(j, "M1", "g2-durian", 2)
    j.order("M1", "o-1", at(3), channel="miniprogram")
    release_guide(j.store.engine, j.g, "G2", "resigned", at=at(4))
    _touch(j, "M2", "g2-durian", 5)
    j.order("M2", "o-2", at(6), guide="G1")
    attribute(j.store.engine, j.g, *DECEMBER)
    assert _who(j) == {"o-1": ("G2", "share"), "o-2": ("G1", "till")}
    with pytest.raises(GuideLeft):
        record_share(j.store.engine, j.g, "G2", "product", "K2")


def test_bad_shares_and_rules_are_refused(journey: Journey) -> None:
    j = journey
    _shares(j)
    # the same share again is the one recorded; the code for something else is taken
    same = record_share(j.store.engine, j.g, "G2", "product", "K1", "g2-durian")
    assert same.guide_id == "G2" and j.store.count("guide_shares") == 2
    with pytest.raises(ShareCodeTaken):
        record_share(j.store.engine, j.g, "G1", "product", "K1", "g2-durian")
    with pytest.raises(ValidationError, match="kind"):
        record_share(j.store.engine, j.g, "G1", "video", "K1")
    with pytest.raises(ShareNotFound):
        record_touch(j.store.engine, j.g, "nope", "k", at(1), member_id=j.members["M1"])
    with pytest.raises(ValidationError, match="window_days"):
        AttributionRules(window_days=0)
    with pytest.raises(ValidationError, match="until"):
        attribute(j.store.engine, j.g, at(5), at(5))
    assert j.store.count("share_touches") == 0
