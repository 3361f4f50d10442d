"""Coupons in the store, on SQLite and PostgreSQL: issue with limits, redemption exactly
once, return on refund, expiry, liability, and coupons following OneID merges."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from tests.conftest import Store
from tests.coupons.helpers import (
    T0,
    basket,
    check_liability,
    new_member,
    save_template,
    statuses,
)

from siyu.coupons import catalog, tier_packs
from siyu.coupons.errors import (
    CouponNotApplicable,
    CouponNotRedeemable,
    LimitReached,
    NotReturnable,
)
from siyu.coupons.expiry import expire
from siyu.coupons.issue import issue
from siyu.coupons.liability import liability
from siyu.coupons.redeem import Redemption, redeem, redeem_many
from siyu.coupons.returns import give_back
from siyu.errors import NotFoundError, ValidationError
from siyu.identity.ingest import IdentifierEncoder
from siyu.identity.service import merge_members, unmerge
from siyu.ledger.errors import IdempotencyConflict


def _members(store: Store, encoder: IdentifierEncoder, n: int) -> list[int]:
    return [new_member(store.engine, encoder, store.group_id, f"u-{i}") for i in range(n)]


def test_issue_once_per_key_and_member_within_limits(
    store: Store, encoder: IdentifierEncoder
) -> None:
    a, b, c = _members(store, encoder, 3)
    save_template(store.engine, store.group_id, limits={"per_member": 2, "issued": 4})
    first = issue(store.engine, store.group_id, "SPRING20", [a, b, 999_999], "wave-1", at=T0)
    assert first.counts == {"issued": 2, "replayed": 0, "refused": 1}
    assert first.refused == {999_999: "unknown member"}
    # the same key again issues nothing and answers the same coupons
    again = issue(store.engine, store.group_id, "SPRING20", [a, b], "wave-1", at=T0)
    assert again.counts == {"issued": 0, "replayed": 2, "refused": 0}
    assert {x.code for x in again.issued} == {x.code for x in first.issued}
    # a second wave: a and b reach their per-member limit of 2 here, the total of 4 too
    second = issue(store.engine, store.group_id, "SPRING20", [a, b, c], "wave-2", at=T0)
    assert second.counts["issued"] == 2 and second.refused == {c: "limits.issued"}
    third = issue(store.engine, store.group_id, "SPRING20", [a], "wave-3", at=T0)
    assert third.refused == {a: "limits.per_member"}
    # a refused member's per-member slot was given back: c holds none and counted none
    with store.engine.connect() as conn:
        used = conn.execute(
            text("""SELECT member_id, used FROM coupon_counters WHERE group_id = :g
                    AND counter = 'SPRING20:per_member' ORDER BY member_id"""),
            {"g": store.group_id},
        ).all()
    assert {int(m): int(u) for m, u in used} == {a: 2, b: 2, c: 0}
    assert statuses(store.engine, store.group_id) == {"issued": 4}
    # the key names the request: reusing it for another template is refused
    save_template(store.engine, store.group_id, code="OTHER")
    with pytest.raises(ValidationError, match="key"):
        issue(store.engine, store.group_id, "OTHER", [a], "wave-1", at=T0)
    with pytest.raises(NotFoundError, match="template"):
        issue(store.engine, store.group_id, "NOPE", [a], "k", at=T0)
    check_liability(store.engine, store.group_id)


def test_redeem_exactly_once_and_return_on_refund(store: Store, encoder: IdentifierEncoder) -> None:
    (a,) = _members(store, encoder, 1)
    save_template(store.engine, store.group_id)
    (coupon,) = issue(store.engine, store.group_id, "SPRING20", [a], "w", at=T0).issued
    assert coupon.valid_until - coupon.valid_from == timedelta(days=30)
    at = T0 + timedelta(days=1)
    ask = Redemption(coupon.code, "O-1", basket(12000), "redeem-1", member_id=a)
    # below the threshold: refused, nothing written, the key still free
    with pytest.raises(CouponNotApplicable, match="basket"):
        redeem(store.engine, store.group_id, Redemption(coupon.code, "O-0", basket(9999), "r0"), at)
    done = redeem(store.engine, store.group_id, ask, at)
    assert (done.off_fen, done.member_id, done.replayed) == (2000, a, False)
    # a retry of the same request is answered as the first, nothing applied again
    assert redeem(store.engine, store.group_id, ask, at).replayed
    # another order with the same coupon is refused; the same key for another is too
    with pytest.raises(CouponNotRedeemable, match="already redeemed"):
        redeem(store.engine, store.group_id, Redemption(coupon.code, "O-2", basket(), "r2"), at)
    with pytest.raises(IdempotencyConflict):
        redeem(
            store.engine, store.group_id, Redemption(coupon.code, "O-2", basket(), "redeem-1"), at
        )
    # the order is refunded: the coupon comes back, usable again, once per key
    back = give_back(store.engine, store.group_id, coupon.code, "O-1", "refund-1", at=at)
    assert back["status"] == "issued" and not back["replayed"]
    assert give_back(store.engine, store.group_id, coupon.code, "O-1", "refund-1", at=at)[
        "replayed"
    ]
    with pytest.raises(NotReturnable):
        give_back(store.engine, store.group_id, coupon.code, "O-1", "refund-2", at=at)
    again = redeem(store.engine, store.group_id, Redemption(coupon.code, "O-3", basket(), "r3"), at)
    assert again.off_fen == 2000
    totals = liability(store.engine, store.group_id, at + timedelta(days=1))[0]
    assert (totals.issued, totals.redeemed, totals.returned, totals.outstanding) == (1, 2, 1, 0)
    assert totals.redeemed_off_fen == 2000 and totals.redeemed_cost_fen == 1500
    check_liability(store.engine, store.group_id)


def test_validity_edges_and_other_members(store: Store, encoder: IdentifierEncoder) -> None:
    a, b = _members(store, encoder, 2)
    save_template(
        store.engine,
        store.group_id,
        validity={"starts_at": "2026-03-10T00:00:00Z", "ends_at": "2026-03-20T00:00:00Z"},
    )
    (coupon,) = issue(store.engine, store.group_id, "SPRING20", [a], "w", at=T0).issued
    start, end = coupon.valid_from, coupon.valid_until
    ask = Redemption(coupon.code, "O-1", basket(), "r1", member_id=a)
    with pytest.raises(CouponNotRedeemable, match="not valid yet"):
        redeem(store.engine, store.group_id, ask, start - timedelta(seconds=1))
    with pytest.raises(CouponNotRedeemable, match="expired"):
        redeem(store.engine, store.group_id, ask, end)  # the end is exclusive
    with pytest.raises(CouponNotRedeemable, match="not member"):
        redeem(
            store.engine, store.group_id, Redemption(coupon.code, "O-1", basket(), "r9", b), start
        )
    with pytest.raises(NotFoundError, match="code"):
        redeem(store.engine, store.group_id, Redemption("NOSUCHCODE", "O-1", basket(), "rx"), start)
    # the last second of the window still redeems
    assert redeem(store.engine, store.group_id, ask, end - timedelta(seconds=1)).off_fen == 2000
    # a refund after the window: the coupon comes back expired, not usable
    back = give_back(store.engine, store.group_id, coupon.code, "O-1", "ref", at=end)
    assert back["status"] == "expired"
    check_liability(store.engine, store.group_id)
    assert liability(store.engine, store.group_id, end)[0].outstanding == 0


def test_redemption_limits_and_budget_count_from_the_newest_version(
    store: Store, encoder: IdentifierEncoder
) -> None:
    members = _members(store, encoder, 4)
    save_template(store.engine, store.group_id)
    held = issue(store.engine, store.group_id, "SPRING20", members, "w", at=T0).issued
    at = T0 + timedelta(days=1)
    redeem(store.engine, store.group_id, Redemption(held[0].code, "O-0", basket(), "r0"), at)
    # HQ caps the budget at three redemptions' cost (1,500 each): one was before the cap
    save_template(store.engine, store.group_id, limits={"budget_fen": 4500})
    asks = [Redemption(c.code, f"O-{i}", basket(), f"r{i}") for i, c in enumerate(held)]
    answers = redeem_many(store.engine, store.group_id, asks[1:], at)
    assert [type(x).__name__ for x in answers] == ["Redeemed", "Redeemed", "LimitReached"]
    refused = answers[2]
    assert isinstance(refused, LimitReached) and refused.limit == "budget_fen"
    assert statuses(store.engine, store.group_id) == {"redeemed": 3, "issued": 1}
    # the coupons keep the terms they were issued under
    assert catalog.issued_under
    check_liability(store.engine, store.group_id)


def test_expiry_is_recorded_once_and_liability_follows(
    store: Store, encoder: IdentifierEncoder
) -> None:
    members = _members(store, encoder, 3)
    save_template(store.engine, store.group_id)
    issue(store.engine, store.group_id, "SPRING20", members, "w", at=T0)
    assert expire(store.engine, store.group_id, T0 + timedelta(days=29)) == 0
    assert expire(store.engine, store.group_id, T0 + timedelta(days=30)) == 3
    assert expire(store.engine, store.group_id, T0 + timedelta(days=31)) == 0
    before = liability(store.engine, store.group_id, T0 + timedelta(days=1))[0]
    after = liability(store.engine, store.group_id, T0 + timedelta(days=31))[0]
    assert (before.outstanding, before.outstanding_face_fen) == (3, 6000)
    assert (after.expired, after.outstanding, after.outstanding_cost_fen) == (3, 0, 0)
    check_liability(store.engine, store.group_id)


def test_coupons_follow_merges_and_come_back_on_unmerge(
    store: Store, encoder: IdentifierEncoder
) -> None:
    a = new_member(store.engine, encoder, store.group_id, "u-a")
    # the same person signed up again in a mini-program, before it knew her unionid
    b = new_member(store.engine, encoder, store.group_id, "o-b", "openid")
    save_template(store.engine, store.group_id)
    kept = issue(store.engine, store.group_id, "SPRING20", [b], "w1", at=T0).issued[0]
    used = issue(store.engine, store.group_id, "SPRING20", [b], "w2", at=T0).issued[0]
    merge_id, survivor = merge_members(store.engine, store.group_id, a, b, "same person")
    absorbed = b if survivor == a else a
    assert absorbed == b
    with store.engine.connect() as conn:
        holders = (
            conn.execute(
                text("SELECT DISTINCT member_id FROM coupons WHERE group_id = :g"),
                {"g": store.group_id},
            )
            .scalars()
            .all()
        )
    assert holders == [a]
    # the absorbed member's id still redeems, for the survivor
    at = T0 + timedelta(days=1)
    done = redeem(store.engine, store.group_id, Redemption(used.code, "O", basket(), "r", b), at)
    assert done.member_id == a
    # issuing to the absorbed id issues to the survivor
    extra = issue(store.engine, store.group_id, "SPRING20", [b], "w3", at=T0).issued[0]
    assert extra.member_id == a
    unmerge(store.engine, store.group_id, merge_id, "two people")
    with store.engine.connect() as conn:
        held = dict(
            conn.execute(
                text("SELECT code, member_id FROM coupons WHERE group_id = :g"),
                {"g": store.group_id},
            ).all()
        )
    # the coupon the merge moved comes back; the one the survivor used stays with its order
    assert held == {kept.code: b, used.code: a, extra.code: a}
    # following again moves nothing
    from siyu.identity.coupon_follow import follow_coupons

    assert follow_coupons(store.engine, store.group_id) == (0, 0)
    check_liability(store.engine, store.group_id)


def test_tier_pack_issued_once_per_upgrade(store: Store, encoder: IdentifierEncoder) -> None:
    (a,) = _members(store, encoder, 1)
    save_template(store.engine, store.group_id, code="gold-welcome")
    with store.engine.begin() as conn:
        for change_id_detail in ('{"coupon_pack": "gold-welcome"}', '{"coupon_pack": null}'):
            conn.execute(
                text("""INSERT INTO tier_changes (group_id, member_id, scope_key, from_tier,
                          to_tier, reason, detail, created_at)
                        VALUES (:g, :m, '*', 'silver', 'gold', 'upgrade', :d, :at)"""),
                {"g": store.group_id, "m": a, "d": change_id_detail, "at": T0.replace(tzinfo=None)},
            )
    first = tier_packs.issue_tier_packs(store.engine, store.group_id, now=T0)
    assert first == {"issued": 1, "refused": 0, "no_template": 0}
    assert tier_packs.issue_tier_packs(store.engine, store.group_id, now=T0)["issued"] == 0
    assert statuses(store.engine, store.group_id) == {"issued": 1}


def test_redemption_identifies_the_person(store: Store, encoder: IdentifierEncoder) -> None:
    from siyu.config import DEFAULT_STRONG_TYPES
    from siyu.coupons.identify import identify

    a, b = _members(store, encoder, 2)
    phone = encoder.encode("phone", "138 0013 8000")
    # a's phone, first seen at the counter where a redeems her coupon
    first = identify(
        store.engine, encoder, store.group_id, a, phone, "pos", T0, DEFAULT_STRONG_TYPES
    )
    # (OneID gives the phone and its marketplace hash a member of their own, then joins
    # it to a: a merge of that new member, as a bind makes)
    assert (first.linked, first.member_id) == (True, a)
    with store.engine.connect() as conn:
        holder = conn.execute(
            text("SELECT member_id FROM identities WHERE group_id = :g AND type = 'phone'"),
            {"g": store.group_id},
        ).scalar_one()
    assert holder == a
    # the same phone presented with b's coupon: two unionids can never be one person, so
    # OneID records the conflict and merges nobody
    second = identify(
        store.engine, encoder, store.group_id, b, phone, "pos", T0, DEFAULT_STRONG_TYPES
    )
    assert (second.member_id, second.merges) == (a, []) and second.conflicts  # still a's
    # a member with no identifier but a phone cannot be linked to: said, not guessed
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE identities SET member_id = NULL WHERE group_id = :g AND member_id = :m"),
            {"g": store.group_id, "m": b},
        )
    third = identify(
        store.engine, encoder, store.group_id, b, phone, "pos", T0, DEFAULT_STRONG_TYPES
    )
    assert not third.linked and third.why_not
