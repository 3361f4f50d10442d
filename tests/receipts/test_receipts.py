"""Receipts on SQLite and PostgreSQL: tiers by the amount paid, duplicates claimed once
(also under a race), limits, auto-accept or review, and the reward given exactly once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import text
from tests.conftest import Store
from tests.coupons.helpers import new_member
from tests.receipts.helpers import (
    BOUGHT,
    NOW,
    brand,
    member,
    receipt,
    rewards_given,
    rule_doc,
    save_rule,
)

from siyu.errors import ForbiddenError, NotFoundError, ValidationError
from siyu.identity.ingest import IdentifierEncoder
from siyu.ledger.errors import IdempotencyConflict
from siyu.receipts import records, rules
from siyu.receipts.errors import ReceiptDecided, ReceiptLimitReached, ReceiptNotEligible
from siyu.receipts.review import decide
from siyu.receipts.rewards import settle
from siyu.receipts.upload import ReceiptIn, upload


@pytest.fixture
def brand_store(store: Store) -> Store:
    brand(store.engine, store.group_id)
    return store


def _points(store: Store, member_id: int) -> int:
    with store.engine.connect() as conn:
        found = conn.execute(
            text("""SELECT balance FROM ledger_accounts WHERE group_id = :g AND member_id = :m
                    AND owner = 'member' AND asset = 'points'"""),
            {"g": store.group_id, "m": member_id},
        ).scalar()
    return int(found or 0)


def _up(store: Store, given: ReceiptIn, key: str, rule: str = "BASKET") -> records.Receipt:
    return upload(store.engine, store.group_id, rule, given, key, at=NOW)


# --- tiers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "points", "coupon"),
    [(10000, 100, None), (29999, 100, None), (30000, 400, "SPRING20"), (45000, 400, "SPRING20")],
)
def test_the_highest_tier_reached_is_given_exactly_at_its_threshold(
    brand_store: Store, encoder: IdentifierEncoder, amount: int, points: int, coupon: str | None
) -> None:
    store = brand_store
    save_rule(store.engine, store.group_id)
    m = member(store.engine, encoder, store.group_id, "u1")
    done = _up(store, receipt(m, amount_fen=amount), "k1")
    assert done.status == "accepted" and done.reviewer == "auto"
    assert (done.reward_points, done.reward_coupon) == (points, coupon)
    assert done.posting_id is not None and done.rewarded_at is not None
    assert (done.coupon_id is not None) == (coupon is not None)
    assert _points(store, m) == points


def test_one_fen_below_the_lowest_tier_is_not_eligible_and_records_nothing(
    brand_store: Store, encoder: IdentifierEncoder
) -> None:
    store = brand_store
    save_rule(store.engine, store.group_id)
    m = member(store.engine, encoder, store.group_id, "u1")
    with pytest.raises(ReceiptNotEligible, match=r"amount_fen: 9999 .* 10000"):
        _up(store, receipt(m, amount_fen=9999), "k1")
    assert store.count("receipts") == 0
    assert store.count("receipt_numbers") == 0


def test_a_rule_version_applies_to_the_receipts_uploaded_under_it(
    brand_store: Store, encoder: IdentifierEncoder
) -> None:
    store = brand_store
    save_rule(store.engine, store.group_id, auto_accept=None)
    m = member(store.engine, encoder, store.group_id, "u1")
    first = _up(store, receipt(m, amount_fen=12000), "k1")
    # HQ doubles the points while the receipt waits for review
    save_rule(store.engine, store.group_id, tiers=[{"min_paid_fen": 10000, "points": 200}])
    done = decide(store.engine, store.group_id, first.receipt_id, "accepted", "key:1")
    assert done.reward_points == 100


# --- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"amount_fen": -100}, "amount_fen", "positive"),
        ({"amount_fen": 0}, "amount_fen", "positive"),
        ({"purchased_at": NOW + timedelta(days=1)}, "purchased_at", "future"),
        ({"store_id": "S9"}, "store_id", "no store 'S9'"),
        ({"receipt_no": " - "}, "receipt_no", "visible"),
        ({"image_ref": "a photo.jpg"}, "image_ref", "no spaces"),
    ],
)
def test_bad_input_names_the_field_and_the_rule(
    brand_store: Store, encoder: IdentifierEncoder, change: dict, field: str, rule: str
) -> None:
    store = brand_store
    save_rule(store.engine, store.group_id)
    m = member(store.engine, encoder, store.group_id, "u1")
    given = receipt(m).__dict__ | change
    with pytest.raises(ValidationError) as caught:
        _up(store, ReceiptIn(**given), "k1")
    assert caught.value.field == field and rule in caught.value.rule
    assert store.count("receipts") == 0


def test_an_unknown_rule_or_member_is_not_found(
    brand_store: Store, encoder: IdentifierEncoder
) -> None:
    store = brand_store
    m = member(store.engine, encoder, store.group_id, "u1")
    with pytest.raises(NotFoundError, match="rule"):
        _up(store, receipt(m), "k1")
    save_rule(store.engine, store.group_id)
    with pytest.raises(NotFoundError, match="member_id"):
        _up(store, receipt(m + 999), "k2")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tiers": []}, "tiers"),
        ({"tiers": [{"min_paid_fen": 100}]}, "tiers.0"),
        ({"tiers": [{"min_paid_fen": 0, "points": 1}]}, "tiers.0.min_paid_fen"),
        ({"auto_accept": {"max_amount_fen": -1}}, "auto_accept.max_amount_fen"),
        ({"limits": {"per_day": 0}}, "limits.per_day"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_rule_names_its_field(change: dict, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        rules.parse_rule(rule_doc(**change))
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("tiers", "rule"),
    [
        (
            [{"min_paid_fen": 200, "points": 2}, {"min_paid_fen": 200, "points": 3}],
            "min_paid_fen",
        ),
        ([{"min_paid_fen": 100, "points": 5}, {"min_paid_fen": 200, "points": 3}], "fewer"),
        ([{"min_paid_fen": 100, "points": 5}, {"min_paid_fen": 200, "points": 5}], "more"),
    ],
)
def test_tiers_must_rise(tiers: list, rule: str) -> None:
    with pytest.raises(ValidationError, match=f"tiers must rise.*{rule}"):
        rules.parse_rule(rule_doc(tiers=tiers))


def test_a_rule_naming_an_unknown_coupon_is_refused_when_saved(brand_store: Store) -> None:
    store = brand_store
    tiers = [
        {"min_paid_fen": 100, "points": 1},
        {"min_paid_fen": 200, "points": 2, "coupon": "NOPE"},
    ]
    with pytest.raises(ValidationError) as caught:
        save_rule(store.engine, store.group_id, tiers=tiers)
    assert caught.value.field == "tiers.1.coupon"


@pytest.mark.parametrize(
    ("change", "given", "where"),
    [
        ({"scope": {"stores": ["S2"]}}, {}, "scope.stores"),
        ({"scope": {"brands": ["B2"]}}, {}, "scope.brands"),
        ({"ends_at": "2026-03-01T00:00:00Z"}, {}, "window"),
        ({"upload_within_days": 1}, {"purchased_at": BOUGHT - timedelta(days=2)}, "within 1"),
    ],
)
def test_a_receipt_outside_the_rule_is_not_eligible(
    brand_store: Store, encoder: IdentifierEncoder, change: dict, given: dict, where: str
) -> None:
    store = brand_store
    save_rule(store.engine, store.group_id, **change)
    m = member(store.engine, encoder, store.group_id, "u1")
    with pytest.raises(ReceiptNotEligible, match=where):
        _up(store, ReceiptIn(**(receipt(m).__dict__ | given)), "k1")


# --- duplicates --------------------------------------------------------------------------


def test_the_same_store_and_number_is_held_once_and_a_rejection_lets_it_go(
    brand_store: Store, encoder: IdentifierEncoder
) -> None:
    store = brand_store
    save_rule(store.engine, store.group_id, auto_accept=None)
    a = member(store.engine, encoder, store.group_id, "ua")
    b = member(store.engine, encoder, store.group_id, "ub")
    first = _up(store, receipt(a, number="A-0001"), "ka")
    # typed again by someone else, with other spacing and case: the same receipt
    again = _up(store, receipt(b, number="a 0001"), "kb")
    assert again.status == "duplicate"
    assert again.reasons[0]["code"] == "duplicate"
    assert str(first.receipt_id) in again.reasons[0]["detail"]
    # at another store, the same number is another receipt
    assert _up(store, receipt(b, number="A-0001", store_id="S2"), "kc").status == "pending"
    decide(store.engine, store.group_id, first.receipt_id, "rejected", "key:1", "blurry photo")
    # the rejected receipt let its number go: a readable photo may be uploaded again
    retry = _up(store, receipt(a, number="A0001"), "kd")
    assert retry.status == "pending"
    # a duplicate is never decided
    with pytest.raises(ReceiptDecided, match="duplicate"):
        decide(store.engine, store.group_id, again.receipt_id, "accepted", "key:1")


def test_members_racing_with_one_receipt_earn_once(
    brand_store: Store, encoder: IdentifierEncoder
) -> None:
    store = brand_store
    save_rule(
        store.engine,
        store.group_id,
        auto_accept={"max_amount_fen": 50000, "home_store_only": False},
    )
    members = [member(store.engine, encoder, store.group_id, f"r{i}") for i in range(8)]
    barrier = threading.Barrier(len(members))

    def race(m: int) -> str:
        barrier.wait()
        return _up(store, receipt(m, number="HOT-1"), f"k{m}").status

    with ThreadPoolExecutor(len(members)) as pool:
        statuses = sorted(pool.map(race, members))
    assert statuses == ["accepted"] + ["duplicate"] * 7
    assert rewards_given(store.engine, store.group_id) == {"postings": 1, "coupons": 0}
    assert store.count("receipt_numbers") == 1


def test_a_near_duplicate_is_sent_to_review_whatever_the_auto_rule(
    brand_store: Store, encoder: IdentifierEncoder
) -> None:
    store = brand_store
    save_rule(store.engine, store.group_id)
    m = member(store.engine, encoder, store.group_id, "u1")
    first = _up(store, receipt(m, number="N-1"), "k1")
    assert first.status == "accepted"
    near = _up(store, receipt(m, number="N-2", at=BOUGHT + timedelta(seconds=50)), "k2")
    assert near.status == "pending"
    assert near.reasons[0]["code"] == "near_duplicate"
    assert str(first.receipt_id) in near.reasons[0]["detail"]
    # more than a minute from both, or another amount: no flag
    later = _up(store, receipt(m, number="N-3", at=BOUGHT + timedelta(seconds=111)), "k3")
    other = _up(store, receipt(m, number="N-4", amount_fen=12001), "k4")
    assert (later.status, other.status) == ("accepted", "accepted")


# --- limits ------------------------------------------------------------------------------


def test_per_day_and_per_period_limits_count_uploads_and_rejections_give_back(
    brand_store: Store, encoder: IdentifierEncoder
) -> None:
    store = brand_store
    save_rule(
        store.engine, store.group_id, auto_accept=None, limits={"per_day": 2, "per_period": 3}
    )
    m = member(store.engine, encoder, store.group_id, "u1")
    one = _up(store, receipt(m, number="L1"), "k1")
    _up(store, receipt(m, number="L2", amount_fen=13000), "k2")
    # 23:00 UTC on 1 March is 07:00 on 2 March in China (+8): the same day
    with pytest.raises(ReceiptLimitReached, match=r"limits\.per_day: 2"):
        _up(store, receipt(m, number="L3", at=BOUGHT - timedelta(hours=11)), "k3")
    assert store.count("receipts") == 2  # the refused upload left nothing
    # a duplicate takes no place
    other = member(store.engine, encoder, store.group_id, "u2")
    assert _up(store, receipt(other, number="L1"), "k-dup").status == "duplicate"
    # 15:00 UTC on 1 March is 23:00 on 1 March in China: another day
    day_before = BOUGHT - timedelta(hours=19)
    _up(store, receipt(m, number="L4", at=day_before), "k4")
    with pytest.raises(ReceiptLimitReached, match=r"limits\.per_period: 3"):
        _up(store, receipt(m, number="L5", at=day_before - timedelta(hours=1)), "k5")
    # a rejection gives its places back
    decide(store.engine, store.group_id, one.receipt_id, "rejected", "key:1", "not ours")
    assert _up(store, receipt(m, number="L6", amount_fen=15000), "k6").status == "pending"


def test_concurrent_uploads_never_pass_the_daily_limit(
    brand_store: Store, encoder: IdentifierEncoder
) -> None:
    store = brand_store
    save_rule(store.engine, store.group_id, auto_accept=None, limits={"per_day": 3})
    m = member(store.engine, encoder, store.group_id, "u1")
    barrier = threading.Barrier(8)

    def race(i: int) -> str:
        barrier.wait()
        try:
            return _up(store, receipt(m, number=f"C{i}", amount_fen=10000 + i), f"k{i}").status
        except ReceiptLimitReached:
            return "refused"

    with ThreadPoolExecutor(8) as pool:
        outcomes = sorted(pool.map(race, range(8)))
    assert outcomes == ["pending"] * 3 + ["refused"] * 5


# --- auto-accept or review ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("auto", "amount", "store_id", "status", "why"),
    [
        ({"max_amount_fen": 20000}, 20000, "S1", "accepted", "by the rule"),
        ({"max_amount_fen": 20000}, 20001, "S1", "pending", "max_amount_fen 20000"),
        ({"max_amount_fen": 20000}, 12000, "S2", "pending", "home store (S1)"),
        ({"max_amount_fen": 20000, "home_store_only": False}, 12000, "S2", "accepted", "rule"),
        (None, 12000, "S1", "pending", "reviews every receipt"),
    ],
)
def test_auto_accept_by_rule_or_review(
    brand_store: Store,
    encoder: IdentifierEncoder,
    auto: dict | None,
    amount: int,
    store_id: str,
    status: str,
    why: str,
) -> None:
    store = brand_store
    save_rule(store.engine, store.group_id, auto_accept=auto)
    m = member(store.engine, encoder, store.group_id, "u1")
    done = _up(store, receipt(m, amount_fen=amount, store_id=store_id), "k1")
    assert done.status == status
    assert why in done.reasons[-1]["detail"]
    assert (done.rewarded_at is not None) == (status == "accepted")


def test_a_store_reviews_only_its_own_stores_receipts_and_a_rejection_needs_a_reason(
    brand_store: Store, encoder: IdentifierEncoder
) -> None:
    store = brand_store
    save_rule(store.engine, store.group_id, auto_accept=None)
    m = member(store.engine, encoder, store.group_id, "u1")
    pending = _up(store, receipt(m), "k1")
    with pytest.raises(ForbiddenError, match="S1"):
        decide(store.engine, store.group_id, pending.receipt_id, "accepted", "k", stores=("S2",))
    with pytest.raises(ValidationError) as caught:
        decide(store.engine, store.group_id, pending.receipt_id, "rejected", "k", "  ")
    assert caught.value.field == "reason"
    done = decide(
        store.engine, store.group_id, pending.receipt_id, "accepted", "key:7", stores=("S1",)
    )
    assert (done.status, done.reviewer, done.reward_points) == ("accepted", "key:7", 100)


# --- the reward, once --------------------------------------------------------------------


def test_a_retried_upload_answers_the_first_and_a_reused_key_is_refused(
    brand_store: Store, encoder: IdentifierEncoder
) -> None:
    store = brand_store
    save_rule(store.engine, store.group_id)
    m = member(store.engine, encoder, store.group_id, "u1")
    first = _up(store, receipt(m, amount_fen=30000), "k1")
    again = _up(store, receipt(m, amount_fen=30000), "k1")
    assert again.replayed and again.receipt_id == first.receipt_id
    assert again.posting_id == first.posting_id and again.coupon_id == first.coupon_id
    assert rewards_given(store.engine, store.group_id) == {"postings": 1, "coupons": 1}
    with pytest.raises(IdempotencyConflict):
        _up(store, receipt(m, amount_fen=30001), "k1")


def test_deciding_again_gives_nothing_more_and_the_other_decision_is_refused(
    brand_store: Store, encoder: IdentifierEncoder
) -> None:
    store = brand_store
    save_rule(store.engine, store.group_id, auto_accept=None)
    m = member(store.engine, encoder, store.group_id, "u1")
    pending = _up(store, receipt(m, amount_fen=30000), "k1")
    assert rewards_given(store.engine, store.group_id) == {"postings": 0, "coupons": 0}
    first = decide(store.engine, store.group_id, pending.receipt_id, "accepted", "key:1")
    again = decide(store.engine, store.group_id, pending.receipt_id, "accepted", "key:2")
    assert again.replayed and again.reviewer == "key:1"
    assert (again.posting_id, again.coupon_id) == (first.posting_id, first.coupon_id)
    assert rewards_given(store.engine, store.group_id) == {"postings": 1, "coupons": 1}
    assert _points(store, m) == 400
    with pytest.raises(ReceiptDecided, match="accepted"):
        decide(store.engine, store.group_id, pending.receipt_id, "rejected", "key:1", "oops")


def test_two_reviewers_accepting_at_once_reward_once(
    brand_store: Store, encoder: IdentifierEncoder
) -> None:
    store = brand_store
    save_rule(store.engine, store.group_id, auto_accept=None)
    m = member(store.engine, encoder, store.group_id, "u1")
    pending = _up(store, receipt(m, amount_fen=30000), "k1")
    barrier = threading.Barrier(4)

    def accept(i: int) -> bool:
        barrier.wait()
        done = decide(store.engine, store.group_id, pending.receipt_id, "accepted", f"key:{i}")
        return done.replayed

    with ThreadPoolExecutor(4) as pool:
        replays = sorted(pool.map(accept, range(4)))
    assert replays == [False, True, True, True]
    assert rewards_given(store.engine, store.group_id) == {"postings": 1, "coupons": 1}
    assert _points(store, m) == 400


def test_a_reward_cut_short_is_given_by_settle_once(
    brand_store: Store, encoder: IdentifierEncoder
) -> None:
    store = brand_store
    save_rule(store.engine, store.group_id, auto_accept=None)
    m = member(store.engine, encoder, store.group_id, "u1")
    # (a) accepted, then the process stopped before any reward: the acceptance as it
    # committed, written the way decide's transaction writes it
    a = _up(store, receipt(m, number="X1", amount_fen=30000), "k1")
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE receipts SET status = 'accepted', reviewer = 'key:1' WHERE receipt_id = :r"
            ),
            {"r": a.receipt_id},
        )
    # (b) rewarded, then the process stopped before the receipt recorded it
    b = _up(store, receipt(m, number="X2", amount_fen=31000), "k2")
    given = decide(store.engine, store.group_id, b.receipt_id, "accepted", "key:1")
    with store.engine.begin() as conn:
        conn.execute(
            text("""UPDATE receipts SET rewarded_at = NULL, posting_id = NULL,
                      coupon_id = NULL, reward_points = NULL WHERE receipt_id = :r"""),
            {"r": b.receipt_id},
        )
    assert rewards_given(store.engine, store.group_id) == {"postings": 1, "coupons": 1}
    settled = {r.receipt_id: r for r in settle(store.engine, store.group_id)}
    assert set(settled) == {a.receipt_id, b.receipt_id}
    # b's reward was already given: the same posting and coupon, not new ones
    assert (settled[b.receipt_id].posting_id, settled[b.receipt_id].coupon_id) == (
        given.posting_id,
        given.coupon_id,
    )
    assert rewards_given(store.engine, store.group_id) == {"postings": 2, "coupons": 2}
    assert _points(store, m) == 800
    assert settle(store.engine, store.group_id) == []


def test_receipts_follow_a_merge_to_the_survivor(
    brand_store: Store, encoder: IdentifierEncoder
) -> None:
    from siyu.identity.service import merge_members, unmerge

    store = brand_store
    save_rule(store.engine, store.group_id)
    a = member(store.engine, encoder, store.group_id, "u1")
    b = new_member(store.engine, encoder, store.group_id, "o-b", "openid")
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE members SET home_store_id = 'S1' WHERE group_id = :g AND member_id = :m"),
            {"g": store.group_id, "m": b},
        )
    _up(store, receipt(b, "B-1"), "kb")
    merge_id, survivor = merge_members(store.engine, store.group_id, a, b, "same person")
    with store.engine.connect() as conn:
        held = (
            conn.execute(
                text("SELECT DISTINCT member_id FROM receipts WHERE group_id = :g"),
                {"g": store.group_id},
            )
            .scalars()
            .all()
        )
    assert held == [survivor] == [a]
    # an unmerge leaves the fact with the survivor (identity.fact_follow)
    unmerge(store.engine, store.group_id, merge_id, "two people")
    with store.engine.connect() as conn:
        after = (
            conn.execute(
                text("SELECT DISTINCT member_id FROM receipts WHERE group_id = :g"),
                {"g": store.group_id},
            )
            .scalars()
            .all()
        )
    assert after == [a]
