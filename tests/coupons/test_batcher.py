"""The redemption batcher on PostgreSQL: a crowd of concurrent redemptions, with
duplicates and retried keys, redeems each coupon once; a retry is answered as one; the
counters and liability agree with the coupons; groups are never mixed in a batch."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import Engine, text

from siyu.coupons import catalog, limits
from siyu.coupons.batcher import RedemptionBatcher
from siyu.coupons.errors import CouponNotRedeemable, LimitReached
from siyu.coupons.issue import issue
from siyu.coupons.liability import liability
from siyu.coupons.redeem import Redeemed, Redemption
from siyu.coupons.templates import Basket, BasketLine, CouponTemplate
from siyu.errors import ValidationError
from siyu.importer.service import ensure_group
from siyu.store.times import stored_now

BASKET = Basket("pos", (BasketLine("SKU1", 1, 20_000),), "S1")


def _members(engine: Engine, group_id: str, n: int) -> list[int]:
    """`n` active members, as OneID creates them (no identities: coupons need none)."""
    now = stored_now()
    with engine.begin() as conn:
        rows = conn.execute(
            text("""INSERT INTO members (group_id, status, registered_at, created_at, updated_at)
                    SELECT :g, 'active', :now, :now, :now FROM generate_series(1, :n)
                    RETURNING member_id"""),
            {"g": group_id, "now": now, "n": n},
        )
        return sorted(int(r[0]) for r in rows)


def _campaign(engine: Engine, coupons: int, **limit: int) -> tuple[str, list[str]]:
    """A fresh group with one fixed ¥10-off template and `coupons` coupons issued."""
    group = f"g-{uuid.uuid4().hex[:8]}"
    ensure_group(engine, group)
    doc: dict[str, Any] = {
        "code": "HOT",
        "name_zh": "满200减10",
        "name_en": "10 off 200",
        "kind": "fixed",
        "off_fen": 1_000,
        "min_paid_fen": 20_000,
        "validity": {"days_from_issue": 30},
        "face_value_fen": 1_000,
        "cost_fen": 1_000,
        "limits": limit,
    }
    catalog.save(engine, group, CouponTemplate.model_validate(doc), None)
    report = issue(engine, group, "HOT", _members(engine, group, coupons), "launch")
    assert report.counts == {"issued": coupons, "replayed": 0, "refused": 0}
    return group, [c.code for c in report.issued]


def _run(engine: Engine, asks: Sequence[tuple[str, Redemption]]) -> list[Any]:
    async def crowd() -> list[Any]:
        batcher = RedemptionBatcher(engine, window_ms=2.0, max_batch=50)
        try:
            return await asyncio.gather(
                *(batcher.redeem(group, ask) for group, ask in asks), return_exceptions=True
            )
        finally:
            await batcher.close()

    return asyncio.run(crowd())


def _used(engine: Engine, group: str, what: str) -> int:
    with engine.connect() as conn:
        return limits.used(conn, group, limits.counter("HOT", what))


@pytest.mark.postgres
def test_a_crowd_with_duplicates_and_retries_redeems_each_coupon_once(pg_engine: Engine) -> None:
    group, codes = _campaign(pg_engine, 120)
    wanted = codes[:100]  # 20 coupons are never asked for: they stay outstanding
    rng = random.Random(14)
    firsts = [Redemption(code, f"O-{i}", BASKET, f"k-{i}") for i, code in enumerate(wanted)]
    asks = list(firsts)
    for n in range(200):
        first = rng.choice(firsts)
        if n % 2:  # the till retries the same request (same key)
            asks.append(first)
        else:  # another till, another order, the same coupon
            asks.append(Redemption(first.code, f"X-{n}", BASKET, f"x-{n}"))
    rng.shuffle(asks)
    outcomes = _run(pg_engine, [(group, a) for a in asks])

    fresh = [o for o in outcomes if isinstance(o, Redeemed) and not o.replayed]
    assert len(fresh) == 100
    assert sorted(o.code for o in fresh) == sorted(wanted)
    won = {(o.code, o.order_id): o for o in fresh}
    for ask, outcome in zip(asks, outcomes, strict=True):
        winner = won.get((ask.code, ask.order_id))
        if isinstance(outcome, Redeemed) and outcome.replayed:
            # a replay answers its own key's first redemption
            assert winner is not None and outcome.coupon_id == winner.coupon_id
        elif not isinstance(outcome, Redeemed):
            # refused: another request took the coupon first
            assert isinstance(outcome, CouponNotRedeemable), outcome
            assert winner is None
    replays_expected = sum(
        n - 1
        for (code, order), n in Counter((a.code, a.order_id) for a in asks).items()
        if (code, order) in won
    )
    assert sum(isinstance(o, Redeemed) and o.replayed for o in outcomes) == replays_expected

    with pg_engine.connect() as conn:
        statuses = dict(
            conn.execute(
                text("SELECT status, COUNT(*) FROM coupons WHERE group_id = :g GROUP BY status"),
                {"g": group},
            ).all()
        )
        per_coupon = conn.execute(
            text("""SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM coupon_events
                    WHERE group_id = :g AND kind = 'redeemed' GROUP BY coupon_id) x"""),
            {"g": group},
        ).scalar_one()
    assert statuses == {"redeemed": 100, "issued": 20}
    assert per_coupon == 1
    assert _used(pg_engine, group, "redemptions") == 100
    assert _used(pg_engine, group, "budget_fen") == 100 * 1_000
    (hot,) = liability(pg_engine, group)
    assert (hot.issued, hot.redeemed, hot.outstanding) == (120, 100, 120 - 100)


@pytest.mark.postgres
def test_the_redemption_cap_is_never_overrun_in_a_batch(pg_engine: Engine) -> None:
    group, codes = _campaign(pg_engine, 100, redemptions=80)
    asks = [(group, Redemption(c, f"O-{i}", BASKET, f"k-{i}")) for i, c in enumerate(codes)]
    outcomes = _run(pg_engine, asks)
    assert sum(isinstance(o, Redeemed) for o in outcomes) == 80
    refused = [o for o in outcomes if not isinstance(o, Redeemed)]
    assert len(refused) == 20 and all(isinstance(o, LimitReached) for o in refused)
    assert _used(pg_engine, group, "redemptions") == 80
    with pg_engine.connect() as conn:
        redeemed = conn.execute(
            text("SELECT COUNT(*) FROM coupons WHERE group_id = :g AND status = 'redeemed'"),
            {"g": group},
        ).scalar_one()
    assert redeemed == 80  # a refused redemption left its coupon as it was


@pytest.mark.postgres
def test_two_groups_at_once_are_never_mixed_and_a_bad_ask_fails_alone(pg_engine: Engine) -> None:
    one, one_codes = _campaign(pg_engine, 40)
    two, two_codes = _campaign(pg_engine, 40)
    asks = [(one, Redemption(c, f"A-{i}", BASKET, f"a-{i}")) for i, c in enumerate(one_codes)]
    asks += [(two, Redemption(c, f"B-{i}", BASKET, f"b-{i}")) for i, c in enumerate(two_codes)]
    asks.insert(37, (one, Redemption(one_codes[0], "Z", BASKET, "")))  # no Idempotency-Key
    random.Random(2).shuffle(asks)
    outcomes = _run(pg_engine, asks)
    bad = [o for o in outcomes if isinstance(o, ValidationError)]
    assert len(bad) == 1 and bad[0].field == "Idempotency-Key"
    assert sum(isinstance(o, Redeemed) for o in outcomes) == 80
    assert _used(pg_engine, one, "redemptions") == 40 == _used(pg_engine, two, "redemptions")
