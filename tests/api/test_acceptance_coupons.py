"""Issue #17's acceptance over real HTTP (two uvicorn workers, PostgreSQL): 300 concurrent
redemptions of 100 coupons from a store, a channel and HQ: exactly 100 redeemed.

Each coupon is asked three times, in one of three ways: a till and its retry (same
Idempotency-Key) against another client's new key; three clients with three keys; or one
request sent three times. Whichever key reaches a coupon first wins it: every ask with
that key answers 200 with the same redemption (the first `replayed: false`, the rest
`replayed: true`), every other key 409 `coupon_not_redeemable`. The two workers each run
their own group commit, so a retry may race its first request from the other worker."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine, text
from tests.api.live import call, live_server
from tests.coupons.helpers import check_liability, new_member

from siyu.auth.keys import create_key
from siyu.identity.ingest import IdentifierEncoder
from siyu.importer.service import ensure_group
from siyu.privacy import Vault

pytestmark = pytest.mark.postgres
SECRET = bytes(range(32))
ASKED, UNASKED = 100, 10  # the unasked coupons stay outstanding
TEMPLATE: dict[str, Any] = {
    "code": "HOT17",
    "name_zh": "满100减20",
    "name_en": "20 off 100",
    "kind": "threshold",
    "tiers": [{"min_paid_fen": 10000, "off_fen": 2000}],
    "validity": {"days_from_issue": 30},
    "face_value_fen": 2000,
    "cost_fen": 1500,
}
RESULT = ("code", "template", "member_id", "order_id", "off_fen", "redeemed_at")


def _body(role: str, order_id: str, holder: int) -> dict[str, Any]:
    """What each client sends: a till at its store, a channel on its own channel, HQ
    naming the holder (checked against the coupon)."""
    lines = [{"sku": "A", "qty": 1, "amount_fen": 12000}]
    if role == "store":
        basket = {"channel": "pos", "store_id": "S1", "lines": lines}
        return {"order_id": order_id, "basket": basket}
    if role == "channel":
        return {"order_id": order_id, "basket": {"channel": "tmall", "lines": lines}}
    basket = {"channel": "pos", "store_id": "S2", "lines": lines}
    return {"order_id": order_id, "basket": basket, "member_id": holder}


def _asks(coupons: list[dict[str, Any]], rng: random.Random) -> list[tuple[str, str, str, Any]]:
    """(role, code, Idempotency-Key, body) three times per coupon, shuffled."""
    roles = ["store", "channel", "admin"]
    asks = []
    for i, coupon in enumerate(coupons):
        code, holder = coupon["code"], coupon["member_id"]
        rng.shuffle(roles)
        first, second, third = (
            (r, f"{r}-{code}-{n}", _body(r, f"O-{r}-{i}", holder)) for n, r in enumerate(roles)
        )
        if i % 3 == 0:  # a till and its retry, against another client
            chosen = [first, first, second]
        elif i % 3 == 1:  # three clients, three keys
            chosen = [first, second, third]
        else:  # one request sent three times
            chosen = [first, first, first]
        asks += [(role, code, key, body) for role, key, body in chosen]
    rng.shuffle(asks)
    return asks


def test_three_hundred_redemptions_of_a_hundred_coupons_over_http(
    pg_engine: Engine, encoder: IdentifierEncoder
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    ensure_group(pg_engine, group)
    members = [new_member(pg_engine, encoder, group, f"u-{i}") for i in range(ASKED + UNASKED)]
    vault = Vault(SECRET)
    keys = {
        "admin": create_key(pg_engine, vault, group, "admin").secret,
        "store": create_key(pg_engine, vault, group, "store", stores=("S1",)).secret,
        "channel": create_key(pg_engine, vault, group, "channel", channel="tmall").secret,
    }
    with live_server(pg_engine, group, SECRET) as base:
        put = call(base, keys["admin"], "/v1/coupon-templates/HOT17", TEMPLATE, method="PUT")
        assert put[0] == 200, put
        status, issued = call(
            base,
            keys["admin"],
            "/v1/coupon-templates/HOT17:issue",
            {"member_ids": members},
            "launch",
        )
        assert status == 200 and issued["issued"] == ASKED + UNASKED, issued
        asked = issued["coupons"][:ASKED]
        asks = _asks(asked, random.Random(17))
        assert len(asks) == 300

        def redeem(ask: tuple[str, str, str, Any]) -> tuple[int, Any]:
            role, code, key, body = ask
            return call(base, keys[role], f"/v1/coupons/{code}:redeem", body, key)

        with ThreadPoolExecutor(60) as pool:
            answers = list(pool.map(redeem, asks))
        status, report = call(base, keys["admin"], "/v1/coupons/liability", None, method="GET")
        assert status == 200, report

    assert not [a for a in answers if a[0] >= 500], "a 5xx answer"
    assert {s for s, _ in answers} <= {200, 409}, answers
    assert all(a["code"] == "coupon_not_redeemable" for s, a in answers if s == 409)
    # per coupon: one key wins; its asks answer the same redemption, once fresh
    by_code: dict[str, list[tuple[str, int, Any]]] = defaultdict(list)
    for (_, code, key, _), (status, answer) in zip(asks, answers, strict=True):
        by_code[code].append((key, status, answer))
    winners: dict[str, str] = {}
    for code, seen in by_code.items():
        won = {key for key, status, _ in seen if status == 200}
        assert len(won) == 1, (code, seen)
        (winners[code],) = won
        wins = [answer for key, _, answer in seen if key == winners[code]]
        assert all(status == 200 for key, status, _ in seen if key == winners[code]), seen
        assert sorted(a["replayed"] for a in wins) == [False] + [True] * (len(wins) - 1)
        assert len({tuple(a[f] for f in RESULT) for a in wins}) == 1, wins
        assert wins[0]["code"] == code
    assert len(winners) == ASKED

    with pg_engine.connect() as conn:
        redeemed = dict(
            conn.execute(
                text("""SELECT code, order_id FROM coupons
                        WHERE group_id = :g AND status = 'redeemed'"""),
                {"g": group},
            ).all()
        )
        events = conn.execute(
            text("""SELECT c.code, e.idempotency_key FROM coupon_events e
                    JOIN coupons c ON c.coupon_id = e.coupon_id
                    WHERE e.group_id = :g AND e.kind = 'redeemed'"""),
            {"g": group},
        ).all()
        counted = conn.execute(
            text("""SELECT used FROM coupon_counters WHERE group_id = :g
                    AND counter = 'HOT17:redemptions' AND member_id = 0"""),
            {"g": group},
        ).scalar_one()
    assert sorted(redeemed) == sorted(winners)  # exactly the 100 asked, each once
    assert sorted(events) == sorted((c, f"redeem:{k}") for c, k in winners.items())
    assert counted == ASKED
    for status, answer in answers:
        if status == 200:
            assert redeemed[answer["code"]] == answer["order_id"]
    (row,) = report["templates"]
    assert (row["issued"], row["redeemed"], row["outstanding"]) == (110, 100, 110 - 100)
    check_liability(pg_engine, group)
