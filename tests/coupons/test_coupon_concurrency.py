"""Many tills redeeming at once on PostgreSQL: the database settles every race. A coupon
is redeemed once, a redemption cap and a budget are never overrun, and retries change
nothing."""

from __future__ import annotations

import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text
from tests.coupons.helpers import T0, basket, check_liability, new_member, save_template

from siyu.coupons.errors import CouponNotRedeemable, LimitReached
from siyu.coupons.issue import issue
from siyu.coupons.redeem import Redeemed, Redemption, redeem, redeem_many
from siyu.errors import SiyuError
from siyu.identity.ingest import IdentifierEncoder
from siyu.importer.service import ensure_group

pytestmark = pytest.mark.postgres
AT = T0 + timedelta(days=1)


def _group(
    engine: Engine, encoder: IdentifierEncoder, members: int, **limits: int
) -> tuple[str, list[str]]:
    group = f"g-{uuid.uuid4().hex[:8]}"
    ensure_group(engine, group)
    ids = [new_member(engine, encoder, group, f"u-{i}") for i in range(members)]
    save_template(engine, group, limits=limits)
    held = issue(engine, group, "SPRING20", ids, "wave", at=T0).issued
    return group, [c.code for c in held]


def _try(engine: Engine, group: str, ask: Redemption, barrier: threading.Barrier) -> str:
    barrier.wait()
    try:
        return "replayed" if redeem(engine, group, ask, AT).replayed else "redeemed"
    except (CouponNotRedeemable, LimitReached) as refused:
        return refused.code


def test_thirty_tills_one_coupon(pg_engine: Engine, encoder: IdentifierEncoder) -> None:
    group, (code,) = _group(pg_engine, encoder, 1)
    asks = [Redemption(code, f"O-{i}", basket(), f"k-{i}") for i in range(30)]
    barrier = threading.Barrier(30)
    with ThreadPoolExecutor(30) as pool:
        outcomes = list(pool.map(lambda a: _try(pg_engine, group, a, barrier), asks))
    assert outcomes.count("redeemed") == 1
    assert outcomes.count("coupon_not_redeemable") == 29
    check_liability(pg_engine, group)


def test_a_cap_is_never_overrun_and_retries_apply_nothing(
    pg_engine: Engine, encoder: IdentifierEncoder
) -> None:
    group, codes = _group(pg_engine, encoder, 40, redemptions=25)
    rng = random.Random(7)
    # every coupon asked twice under its own key (a till retrying), plus strays
    asks = [Redemption(c, f"O-{c}", basket(), f"k-{c}") for c in codes] * 2
    asks += [Redemption(rng.choice(codes), f"X-{i}", basket(), f"x-{i}") for i in range(20)]
    rng.shuffle(asks)
    barrier = threading.Barrier(len(asks))
    with ThreadPoolExecutor(len(asks)) as pool:
        outcomes = list(pool.map(lambda a: _try(pg_engine, group, a, barrier), asks))
    with pg_engine.connect() as conn:
        redeemed = conn.execute(
            text("SELECT COUNT(*) FROM coupons WHERE group_id = :g AND status = 'redeemed'"),
            {"g": group},
        ).scalar_one()
        events = conn.execute(
            text("""SELECT COUNT(*), COUNT(DISTINCT coupon_id) FROM coupon_events
                    WHERE group_id = :g AND kind = 'redeemed'"""),
            {"g": group},
        ).one()
    assert redeemed == 25 == outcomes.count("redeemed")
    assert tuple(events) == (25, 25)  # one redemption event per coupon, never two
    assert "coupon_limit_reached" in outcomes
    check_liability(pg_engine, group)


def test_batches_from_two_processes_never_redeem_twice(
    pg_engine: Engine, encoder: IdentifierEncoder
) -> None:
    group, codes = _group(pg_engine, encoder, 60, budget_fen=1500 * 50)
    asks = [Redemption(c, f"O-{c}", basket(), f"k-{c}") for c in codes]
    halves = [asks[::2] + asks[1::2][:10], asks[1::2] + asks[::2][:10]]  # overlaps

    def run(batch: list[Redemption]) -> list[object]:
        out: list[object] = []
        for start in range(0, len(batch), 7):
            out += redeem_many(pg_engine, group, batch[start : start + 7], AT)
        return out

    with ThreadPoolExecutor(2) as pool:
        answers = [x for part in pool.map(run, halves) for x in part]
    fresh = [a for a in answers if not isinstance(a, SiyuError) and not a.replayed]  # type: ignore[union-attr]
    assert len(fresh) == 50  # the budget: 50 redemptions of 1,500
    check_liability(pg_engine, group)


def _wait_for_lock_waiters(engine: Engine, n: int) -> None:
    """Until `n` sessions of this database wait for a lock (the requests queued behind
    the gate). A bound keeps a broken test from hanging; it asserts nothing about time.
    Each look is its own transaction: pg_stat_activity is a snapshot per transaction."""
    for _ in range(3000):
        with engine.connect() as conn:
            waiting = conn.execute(
                text("""SELECT COUNT(*) FROM pg_stat_activity
                        WHERE datname = current_database() AND wait_event_type = 'Lock'""")
            ).scalar_one()
        if waiting >= n:
            return
        time.sleep(0.01)
    raise AssertionError(f"{n} requests never queued on the counters' lock")


def test_a_retry_racing_its_first_request_is_answered_as_a_replay(
    pg_engine: Engine, encoder: IdentifierEncoder
) -> None:
    # two workers' batches hold the same request (a till retried on the other worker):
    # both look for the key before the first commits, then queue on the counters
    group, (code, other) = _group(pg_engine, encoder, 2)
    redeem(pg_engine, group, Redemption(other, "O-0", basket(), "k-0"), AT)  # the counters exist
    ask = Redemption(code, "O-1", basket(), "k-1")
    pool = ThreadPoolExecutor(2)
    with pg_engine.connect() as gate:
        with gate.begin():
            gate.execute(
                text("SELECT used FROM coupon_counters WHERE group_id = :g FOR UPDATE"),
                {"g": group},
            )
            first = pool.submit(redeem_many, pg_engine, group, [ask], AT)
            _wait_for_lock_waiters(pg_engine, 1)
            retry = pool.submit(redeem_many, pg_engine, group, [ask], AT)
            _wait_for_lock_waiters(pg_engine, 2)
        # the gate opens: one redeems, the other must answer it as its retry, not as
        # "already redeemed" (the till would tell the shopper the coupon is used)
        answers = [first.result()[0], retry.result()[0]]
    pool.shutdown()
    assert all(isinstance(a, Redeemed) for a in answers), answers
    assert sorted(a.replayed for a in answers) == [False, True]  # type: ignore[union-attr]
    check_liability(pg_engine, group)
