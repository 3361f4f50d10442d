"""Prize pools on SQLite and PostgreSQL: a fair, reproducible draw, limits, entries,
prizes never over-awarded, claims once at the store that holds the prize."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from scipy.stats import chisquare
from sqlalchemy import text
from tests.conftest import Store
from tests.coupons.helpers import new_member
from tests.inventory.helpers import check_invariants
from tests.lotteries.helpers import DURING, SEED, define_pool, stock_prizes

from siyu.errors import SiyuError
from siyu.identity.ingest import IdentifierEncoder
from siyu.inventory.stock import level
from siyu.ledger import points
from siyu.ledger.errors import IdempotencyConflict, InsufficientBalance
from siyu.ledger.posting import Request
from siyu.lotteries import fairness, pools
from siyu.lotteries.audit import verify
from siyu.lotteries.claim import claim
from siyu.lotteries.draw import DrawAsk, Drawn, draw, draw_many
from siyu.lotteries.errors import (
    DrawLimitReached,
    EntryNotAccepted,
    PoolAlreadyDefined,
    PoolClosed,
    PoolExhausted,
    PoolStillOpen,
    PrizeNotClaimable,
)


def test_a_draw_is_reproducible_from_the_seed_and_verify_recomputes_the_log(
    store: Store, encoder: IdentifierEncoder
) -> None:
    # given a pool committed to a known seed, and a member
    stock_prizes(store.engine, store.group_id, {"BAG": 10, "SAMPLE": 50})
    pool = define_pool(store.engine, store.group_id)
    assert pool.seed_sha256 == fairness.commitment(SEED)
    m = new_member(store.engine, encoder, store.group_id, "u1")
    # when the member draws three times
    drawn = [
        draw(store.engine, store.group_id, "SPRING", DrawAsk(m, f"k{i}"), DURING) for i in range(3)
    ]
    # then each number is HMAC(seed, pool|member|key) and its prize follows from the odds
    for i, d in enumerate(drawn):
        assert d.random_hex == fairness.random_hex(SEED, "SPRING", m, f"k{i}")
        assert d.prize_code == fairness.pick(fairness.roll_of(d.random_hex), pool.prizes)
    # and verify recomputes every logged draw and finds nothing wrong
    report = verify(store.engine, store.group_id, "SPRING")
    assert report.ok, report.problems
    assert report.draws == 3
    # and a tampered log is caught
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE prize_draws SET roll = roll + 1 WHERE draw_id = :d"),
            {"d": drawn[0].draw_id},
        )
    assert not verify(store.engine, store.group_id, "SPRING").ok


def test_the_seed_is_revealed_only_after_the_pool_ends(store: Store) -> None:
    stock_prizes(store.engine, store.group_id, {"BAG": 1})
    define_pool(store.engine, store.group_id)
    with pytest.raises(PoolStillOpen):
        pools.reveal(store.engine, store.group_id, "SPRING", DURING)
    revealed = pools.reveal(store.engine, store.group_id, "SPRING", datetime(2026, 4, 1))
    assert revealed.revealed_at is not None


def test_a_pool_is_defined_once(store: Store) -> None:
    stock_prizes(store.engine, store.group_id, {"BAG": 1})
    first = define_pool(store.engine, store.group_id)
    # the same definition again is a replay; another under the same code is refused
    assert define_pool(store.engine, store.group_id).seed_sha256 == first.seed_sha256
    with pytest.raises(PoolAlreadyDefined):
        define_pool(store.engine, store.group_id, per_member=5)


def test_per_member_limit_and_replays(store: Store, encoder: IdentifierEncoder) -> None:
    stock_prizes(store.engine, store.group_id, {"BAG": 10, "SAMPLE": 50})
    define_pool(store.engine, store.group_id, per_member=2)
    m = new_member(store.engine, encoder, store.group_id, "u1")
    first = draw(store.engine, store.group_id, "SPRING", DrawAsk(m, "a"), DURING)
    draw(store.engine, store.group_id, "SPRING", DrawAsk(m, "b"), DURING)
    # a retry answers the first draw and counts nothing
    again = draw(store.engine, store.group_id, "SPRING", DrawAsk(m, "a"), DURING)
    assert again.replayed and again.draw_id == first.draw_id
    # a third draw passes the limit: refused
    with pytest.raises(DrawLimitReached):
        draw(store.engine, store.group_id, "SPRING", DrawAsk(m, "c"), DURING)
    # the key of another draw, for another member, is refused
    other = new_member(store.engine, encoder, store.group_id, "u2")
    with pytest.raises(IdempotencyConflict):
        draw(store.engine, store.group_id, "SPRING", DrawAsk(other, "a"), DURING)
    assert store.count("prize_draws") == 2


def test_outside_the_window_a_draw_is_refused(store: Store, encoder: IdentifierEncoder) -> None:
    stock_prizes(store.engine, store.group_id, {"BAG": 10, "SAMPLE": 50})
    define_pool(store.engine, store.group_id)
    m = new_member(store.engine, encoder, store.group_id, "u1")
    with pytest.raises(PoolClosed):
        draw(store.engine, store.group_id, "SPRING", DrawAsk(m, "a"), datetime(2026, 4, 1))


def test_a_prize_is_never_awarded_past_its_units_or_its_shelf(
    store: Store, encoder: IdentifierEncoder
) -> None:
    # given a pool that always wins, 5 units allotted but only 3 on the shelf
    stock_prizes(store.engine, store.group_id, {"BAG": 3})
    prize = {
        "code": "A-BAG",
        "name_zh": "袋",
        "name_en": "Bag",
        "sku": "BAG",
        "location_id": "S1",
        "odds_ppm": 1_000_000,
        "units": 5,
    }
    define_pool(store.engine, store.group_id, prizes=[prize], per_member=100)
    m = new_member(store.engine, encoder, store.group_id, "u1")
    # when 5 draws come in one batch
    outcomes = draw_many(
        store.engine, store.group_id, "SPRING", [DrawAsk(m, f"k{i}") for i in range(5)], DURING
    )
    # then 3 win, and the pool says it is exhausted to the rest (they spend nothing)
    assert [o.outcome for o in outcomes if isinstance(o, Drawn)] == ["won"] * 3
    assert [type(o) for o in outcomes[3:]] == [PoolExhausted, PoolExhausted]
    with store.engine.connect() as conn:
        assert level(conn, store.group_id, "BAG", "S1").on_hand == 0
    check_invariants(store.engine, store.group_id)
    assert verify(store.engine, store.group_id, "SPRING").ok


def test_points_are_spent_only_by_a_draw_that_is_made(
    store: Store, encoder: IdentifierEncoder
) -> None:
    stock_prizes(store.engine, store.group_id, {"BAG": 10, "SAMPLE": 50})
    define_pool(store.engine, store.group_id, entry="points", points=100, per_member=1)
    m = new_member(store.engine, encoder, store.group_id, "u1")
    # a member with 150 points draws: 100 spent, through the ledger, with the draw's key
    with pytest.raises(InsufficientBalance):
        draw(store.engine, store.group_id, "SPRING", DrawAsk(m, "k0"), DURING)
    points.earn(store.engine, Request(store.group_id, m, "earn", "e1", {}), 150, None)
    made = draw(store.engine, store.group_id, "SPRING", DrawAsk(m, "k1"), DURING)
    assert made.posting_id is not None
    # a refused draw (the limit) spends nothing
    with pytest.raises(DrawLimitReached):
        draw(store.engine, store.group_id, "SPRING", DrawAsk(m, "k2"), DURING)
    with store.engine.connect() as conn:
        balance = conn.execute(
            text("""SELECT balance FROM ledger_accounts WHERE group_id = :g
                    AND member_id = :m AND asset = 'points' AND owner = 'member'"""),
            {"g": store.group_id, "m": m},
        ).scalar_one()
    assert balance == 50
    assert store.count("prize_draws") == 1


def test_scan_and_purchase_entries(store: Store, encoder: IdentifierEncoder) -> None:
    stock_prizes(store.engine, store.group_id, {"BAG": 10, "SAMPLE": 50})
    define_pool(store.engine, store.group_id, entry="scan", scenes=["poster-1"])
    m = new_member(store.engine, encoder, store.group_id, "u1")
    with pytest.raises(EntryNotAccepted):
        draw(store.engine, store.group_id, "SPRING", DrawAsk(m, "a", scene="other"), DURING)
    draw(store.engine, store.group_id, "SPRING", DrawAsk(m, "b", scene="poster-1"), DURING)
    define_pool(store.engine, store.group_id, code="BUY", entry="purchase", min_paid_fen=5000)
    with store.engine.begin() as conn:
        for order_id, paid in (("O1", 8000), ("O2", 1000)):
            conn.execute(
                text("""INSERT INTO orders (group_id, order_id, brand_id, channel,
                          buyer_identity_id, member_id, status, ordered_at, total_fen,
                          discount_fen, paid_fen)
                        VALUES (:g, :o, 'B1', 'pos', 1, :m, 'paid', :t, :p, 0, :p)"""),
                {"g": store.group_id, "o": order_id, "m": m, "t": datetime(2026, 3, 2), "p": paid},
            )
    draw(store.engine, store.group_id, "BUY", DrawAsk(m, "o1", order_id="O1"), DURING)
    for key, order in (("o1b", "O1"), ("o2", "O2"), ("o3", "O3")):
        # an order enters once; too small an order or an unknown one never
        with pytest.raises(EntryNotAccepted):
            draw(store.engine, store.group_id, "BUY", DrawAsk(m, key, order_id=order), DURING)


def test_a_prize_is_claimed_once_at_the_store_that_holds_it(
    store: Store, encoder: IdentifierEncoder
) -> None:
    stock_prizes(store.engine, store.group_id, {"BAG": 3})
    prize = {
        "code": "A-BAG",
        "name_zh": "袋",
        "name_en": "Bag",
        "sku": "BAG",
        "location_id": "S1",
        "odds_ppm": 1_000_000,
        "units": 3,
    }
    define_pool(store.engine, store.group_id, prizes=[prize])
    m = new_member(store.engine, encoder, store.group_id, "u1")
    won = draw(store.engine, store.group_id, "SPRING", DrawAsk(m, "a"), DURING)
    assert won.claim_code is not None
    with pytest.raises(PrizeNotClaimable):
        claim(store.engine, store.group_id, won.claim_code, "S2", "c0", DURING)
    done = claim(store.engine, store.group_id, won.claim_code, "S1", "c1", DURING)
    assert not done.replayed
    assert claim(store.engine, store.group_id, won.claim_code, "S1", "c1", DURING).replayed
    with pytest.raises(PrizeNotClaimable):
        claim(store.engine, store.group_id, won.claim_code, "S1", "c2", DURING)


def test_odds_are_respected_over_many_draws(store: Store, encoder: IdentifierEncoder) -> None:
    # given plenty of every prize, so no draw is sold out
    stock_prizes(store.engine, store.group_id, {"BAG": 10_000, "SAMPLE": 10_000})
    pool = define_pool(
        store.engine,
        store.group_id,
        per_member=10_000,
        prizes=[
            {
                "code": "A-BAG",
                "name_zh": "袋",
                "name_en": "Bag",
                "sku": "BAG",
                "location_id": "S1",
                "odds_ppm": 100_000,
                "units": 10_000,
            },
            {
                "code": "B-SAMPLE",
                "name_zh": "样",
                "name_en": "Sample",
                "sku": "SAMPLE",
                "location_id": "S1",
                "odds_ppm": 400_000,
                "units": 10_000,
            },
        ],
    )
    m = new_member(store.engine, encoder, store.group_id, "u1")
    n = 3000
    outcomes: list[Drawn | SiyuError] = []
    for start in range(0, n, 1000):
        asks = [DrawAsk(m, f"k{i}") for i in range(start, start + 1000)]
        outcomes += draw_many(store.engine, store.group_id, "SPRING", asks, DURING)
    drawn = [o for o in outcomes if isinstance(o, Drawn)]
    assert len(drawn) == n
    # then the counts fit the stated odds (chi-square; the seed is fixed, so this is exact)
    seen = [sum(d.prize_code == c for d in drawn) for c in ("A-BAG", "B-SAMPLE", None)]
    expected = [n * p.odds_ppm / 1_000_000 for p in pool.prizes]
    expected.append(n - sum(expected))
    assert chisquare(seen, expected).pvalue > 0.01, (seen, expected)
    assert verify(store.engine, store.group_id, "SPRING").ok


@pytest.mark.postgres
def test_concurrent_draws_never_over_award(pg_engine, encoder: IdentifierEncoder) -> None:  # type: ignore[no-untyped-def]
    from siyu.importer.service import ensure_group

    group = f"g-lot-{datetime.now(UTC).timestamp():.0f}"
    ensure_group(pg_engine, group)
    stock_prizes(pg_engine, group, {"BAG": 20})
    prize = {
        "code": "A-BAG",
        "name_zh": "袋",
        "name_en": "Bag",
        "sku": "BAG",
        "location_id": "S1",
        "odds_ppm": 500_000,
        "units": 20,
    }
    define_pool(pg_engine, group, prizes=[prize], per_member=1000)
    members = [new_member(pg_engine, encoder, group, f"u{i}") for i in range(6)]
    results: list[Drawn | SiyuError] = []
    lock = threading.Lock()

    def client(w: int) -> None:
        for b in range(10):
            asks = [DrawAsk(members[w], f"w{w}-{b}-{i}") for i in range(1 + b % 3)]
            got = draw_many(pg_engine, group, "SPRING", asks, DURING)
            with lock:
                results.extend(got)

    threads = [threading.Thread(target=client, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = sum(isinstance(r, Drawn) and r.outcome == "won" for r in results)
    assert won == 20
    assert verify(pg_engine, group, "SPRING").ok
    check_invariants(pg_engine, group)
