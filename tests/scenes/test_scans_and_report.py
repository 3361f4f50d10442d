"""Scans and what each scene brought, on SQLite and PostgreSQL: a scan recorded once per
key, acquisition by the registration window or the caller's word, codes past their life
flagged, scans following OneID merges, and the report's numbers on hand-made orders."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from tests.conftest import Store
from tests.scenes.helpers import T0, new_member, order, permanent, refund, value

from siyu.errors import NotFoundError, ValidationError
from siyu.identity.ingest import IdentifierEncoder
from siyu.identity.service import merge_members, unmerge
from siyu.ledger.errors import IdempotencyConflict
from siyu.scenes import registry
from siyu.scenes.report import (
    acquired_members,
    referred_members,
    scene_report,
    star_members,
)
from siyu.scenes.scans import record_scan

MIN = timedelta(minutes=1)


def test_a_scan_is_recorded_once_and_acquires_a_new_member_once(
    store: Store, encoder: IdentifierEncoder
) -> None:
    g, e = store.group_id, store.engine
    permanent(e, g, "S1-door", store_id="S1")
    permanent(e, g, "S2-door", store_id="S2")
    m = new_member(e, encoder, g, "u-1")  # registered at T0
    # when the member's scan 5 minutes after registering arrives twice
    first = record_scan(e, g, "S1-door", "wx:1", member_id=m, at=T0 + 5 * MIN)
    again = record_scan(e, g, "S1-door", "wx:1", member_id=m, at=T0 + 5 * MIN)
    # then it is one scan, and it acquired the member
    assert (first.first_touch, first.replayed, again.replayed) == (True, False, True)
    assert again.scan_id == first.scan_id and store.count("qr_scans") == 1
    # the key reused for another scan is refused
    with pytest.raises(IdempotencyConflict):
        record_scan(e, g, "S2-door", "wx:1", member_id=m, at=T0 + 5 * MIN)
    # a later scan of another code does not acquire the member again
    later = record_scan(e, g, "S2-door", "wx:2", member_id=m, at=T0 + 6 * MIN)
    assert later.first_touch is False
    # an old member scanning (registered long before) is not acquired, unless the caller says so
    old = new_member(e, encoder, g, "u-2")
    assert not record_scan(e, g, "S1-door", "wx:3", member_id=old, at=T0 + 31 * MIN).first_touch
    said = record_scan(e, g, "S2-door", "wx:4", member_id=old, at=T0 + 40 * MIN, acquired=True)
    assert said.first_touch
    # a visitor who is not a member yet is recorded without acquisition
    assert not record_scan(e, g, "S1-door", "wx:5", identity_id=77, at=T0).first_touch
    # refusals name the field
    with pytest.raises(NotFoundError):
        record_scan(e, g, "nowhere", "wx:6", member_id=m, at=T0)
    with pytest.raises(ValidationError) as refused:
        record_scan(e, g, "S1-door", "wx:7", member_id=999_999_999, at=T0)
    assert refused.value.field == "member_id"
    with pytest.raises(ValidationError) as refused:
        record_scan(e, g, "S1-door", "wx:8", acquired=True, at=T0)
    assert refused.value.field == "acquired"


def test_scans_of_expired_or_archived_codes_are_flagged_and_acquire_no_one(
    store: Store, encoder: IdentifierEncoder
) -> None:
    g, e = store.group_id, store.engine
    end = T0 + timedelta(days=30)
    registry.create(e, g, "tmp", "temporary", expires_at=end, at=T0)
    permanent(e, g, "old-poster")
    registry.archive(e, g, "old-poster", at=T0 + MIN)
    m = new_member(e, encoder, g, "u-1")
    live = record_scan(e, g, "tmp", "k1", member_id=m, at=end - timedelta(seconds=1))
    assert (live.flag, live.first_touch) == (None, False)  # too late for acquisition
    late = record_scan(e, g, "tmp", "k2", member_id=m, at=end, acquired=True)
    assert (late.flag, late.first_touch) == ("expired", False)
    retired = record_scan(e, g, "old-poster", "k3", member_id=m, at=T0 + 2 * MIN, acquired=True)
    assert (retired.flag, retired.first_touch) == ("archived", False)
    rows = {r.scene: r for r in scene_report(e, g)}
    assert (rows["tmp"].scans, rows["tmp"].flagged, rows["tmp"].acquired) == (2, 1, 0)
    assert (rows["old-poster"].scans, rows["old-poster"].flagged) == (1, 1)


def test_scans_follow_merges_and_stay_with_the_survivor_on_unmerge(
    store: Store, encoder: IdentifierEncoder
) -> None:
    g, e = store.group_id, store.engine
    permanent(e, g, "A")
    permanent(e, g, "B")
    a = new_member(e, encoder, g, "u-a")
    # the same person signed up again in a mini-program, before it knew her unionid
    b = new_member(e, encoder, g, "o-b", "openid")
    c = new_member(e, encoder, g, "u-c")
    record_scan(e, g, "A", "k1", member_id=a, at=T0 + MIN)
    record_scan(e, g, "B", "k2", member_id=b, at=T0 + 2 * MIN)  # b acquired later than a
    record_scan(e, g, "B", "k3", member_id=c, referrer_member_id=b, at=T0 + 3 * MIN)
    # when a and b turn out to be one person
    merge_id, survivor = merge_members(e, g, a, b, "same person")
    gone = b if survivor == a else a
    # then every scan names the survivor, as scanner and as referrer
    with e.connect() as conn:
        held = conn.execute(
            text("""SELECT COUNT(*) FROM qr_scans WHERE group_id = :g
                    AND (member_id = :m OR referrer_member_id = :m)"""),
            {"g": g, "m": gone},
        ).scalar_one()
    assert held == 0
    # the person is acquired once, by the earliest first-touch scan (A)
    assert acquired_members(e, g, "A") == [survivor]
    assert acquired_members(e, g, "B") == [c]
    assert [(s.member_id, s.brought) for s in star_members(e, g)] == [(survivor, 1)]
    # a scan delivered again under its key after the merge is a replay, not a conflict
    assert record_scan(e, g, "B", "k2", member_id=b, at=T0 + 2 * MIN).replayed
    # an unmerge leaves the scans with the survivor (documented in identity.fact_follow)
    unmerge(e, g, merge_id, "two people")
    assert acquired_members(e, g, "A") == [survivor]
    assert star_members(e, g)[0].member_id == survivor


def test_report_per_scene_on_known_orders(store: Store, encoder: IdentifierEncoder) -> None:
    g, e = store.group_id, store.engine
    permanent(e, g, "P1", store_id="S1", campaign="spring")
    permanent(e, g, "P2", store_id="S2", campaign="spring")
    permanent(e, g, "P3", guide_id="G1")
    star = new_member(e, encoder, g, "star")  # an old member who shares codes
    m1, m2, m3, m4, m5 = (new_member(e, encoder, g, f"u-{i}") for i in range(1, 6))
    # P1 acquires m1..m4 (m2, m3 by the star's shared code), P2 acquires m5 (shared too)
    for i, m in enumerate((m1, m2, m3, m4)):
        ref = star if m in (m2, m3) else None
        record_scan(e, g, "P1", f"p1-{i}", member_id=m, referrer_member_id=ref, at=T0 + MIN)
    record_scan(e, g, "P2", "p2-0", member_id=m5, referrer_member_id=star, at=T0 + MIN)
    record_scan(e, g, "P2", "p2-1", member_id=m1, at=T0 + 2 * MIN)  # not a new acquisition
    record_scan(e, g, "P1", "p1-9", member_id=star, referrer_member_id=m1, at=T0 + 50 * MIN)
    # m1: 5 orders of 100 yuan, one refunded by 30; m2: 2 paid and 1 cancelled; m3: 1;
    # m4: none; m5: 4; the star's own orders count for no scene
    for i in range(5):
        order(e, g, f"m1-{i}", m1, 10_000, days=i + 1)
    refund(e, g, "m1-0", 3_000)
    order(e, g, "m2-0", m2, 5_000)
    order(e, g, "m2-1", m2, 5_000, days=2)
    order(e, g, "m2-x", m2, 99_999, status="cancelled", days=3)
    order(e, g, "m3-0", m3, 1_234)
    for i in range(4):
        order(e, g, f"m5-{i}", m5, 2_000, days=i + 1)
    order(e, g, "star-0", star, 50_000)
    value(e, g, m1, 80_000)
    value(e, g, m3, 1_000)
    # when HQ reads the report with the knee at 4
    rows = {r.scene: r for r in scene_report(e, g, knee=4)}
    p1, p2, p3 = rows["P1"], rows["P2"], rows["P3"]
    # then each number is what the orders say
    assert (p1.scans, p1.acquired) == (5, 4)
    assert p1.reached == {1: 3, 2: 2, 3: 1, 4: 1}
    assert p1.revenue_fen == 50_000 - 3_000 + 10_000 + 1_234
    assert (p1.clv_members, p1.clv_fen) == (2, 81_000)
    assert (p2.scans, p2.acquired, p2.reached, p2.revenue_fen) == (
        2,
        1,
        {1: 1, 2: 1, 3: 1, 4: 1},
        8_000,
    )
    assert (p3.scans, p3.acquired, p3.reached[1], p3.revenue_fen) == (0, 0, 0, 0)
    assert p1.as_dict(4)["reached_orders"] == {"1": 3, "2": 2, "3": 1, "4+": 1}
    # and every count opens its members
    assert acquired_members(e, g, "P1") == sorted([m1, m2, m3, m4])
    assert acquired_members(e, g, "P1", min_orders=2) == sorted([m1, m2])
    assert acquired_members(e, g, "P1", min_orders=4) == [m1]
    # star members: ranked by the members they brought
    stars = star_members(e, g)
    assert [(s.member_id, s.brought, s.scans) for s in stars] == [(star, 3, 3), (m1, 0, 1)]
    assert referred_members(e, g, star) == sorted([m2, m3, m5])
    # a campaign's codes, a list of scenes, a knee of 2
    assert [r.scene for r in scene_report(e, g, campaign="spring")] == ["P1", "P2"]
    assert [r.scene for r in scene_report(e, g, scenes=["P3"])] == ["P3"]
    assert scene_report(e, g, knee=2, scenes=["P1"])[0].reached == {1: 3, 2: 2}
    with pytest.raises(ValidationError):
        scene_report(e, g, knee=0)
