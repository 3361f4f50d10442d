"""kill -9 in the middle of a stream of redemptions (issue #17): a child process redeems
through the worker's group commit (`RedemptionBatcher`, batches of `redeem_many`) on
PostgreSQL and prints each redemption once its batch has committed; it is killed at a
random moment. Afterwards every acknowledged redemption is there, no coupon is half
redeemed, and the same asks sent again answer the acknowledged ones as replays and
redeem the rest exactly once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from tests.coupons.helpers import check_liability

from siyu.coupons import catalog
from siyu.coupons.errors import CouponNotRedeemable
from siyu.coupons.issue import issue
from siyu.coupons.redeem import Redeemed, Redemption, redeem_many
from siyu.coupons.templates import Basket, BasketLine, CouponTemplate
from siyu.importer.service import ensure_group
from siyu.store.times import stored_now

pytestmark = pytest.mark.postgres
COUPONS = 1500
MAX_BATCH = 50  # the child's batcher: at most one batch is committed but unprinted
BASKET = Basket("pos", (BasketLine("SKU1", 1, 20_000),), "S1")

WORKER = textwrap.dedent(
    """
    import asyncio, json, sys
    from siyu.coupons.batcher import RedemptionBatcher
    from siyu.coupons.redeem import Redemption
    from siyu.coupons.templates import Basket, BasketLine
    from siyu.errors import SiyuError
    from siyu.store.engine import make_engine

    url, group, plan, max_batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    basket = Basket("pos", (BasketLine("SKU1", 1, 20_000),), "S1")
    asks = [Redemption(c, o, basket, k) for c, o, k in json.load(open(plan))]

    async def main():
        batcher = RedemptionBatcher(make_engine(url), window_ms=2.0, max_batch=max_batch)
        queue = iter(asks)

        async def till():
            for ask in queue:
                try:
                    done = await batcher.redeem(group, ask)
                except SiyuError:
                    continue  # refused: nothing acknowledged
                # acknowledged: the batch holding it has committed (one write a line:
                # print's separate writes could be cut by the kill)
                sys.stdout.write(f"{ask.code} {ask.key} {int(done.replayed)}\\n")

        await asyncio.gather(*(till() for _ in range(40)))

    asyncio.run(main())
    """
)


def _campaign(engine: Engine) -> tuple[str, list[str]]:
    """A fresh group with a ¥10-off template and `COUPONS` coupons, one per member."""
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
        "cost_fen": 800,
    }
    catalog.save(engine, group, CouponTemplate.model_validate(doc), None)
    now = stored_now()
    with engine.begin() as conn:
        members = conn.execute(
            text("""INSERT INTO members (group_id, status, registered_at, created_at, updated_at)
                    SELECT :g, 'active', :now, :now, :now FROM generate_series(1, :n)
                    RETURNING member_id"""),
            {"g": group, "now": now, "n": COUPONS},
        )
        ids = sorted(int(r[0]) for r in members)
    report = issue(engine, group, "HOT", ids, "launch")
    return group, [c.code for c in report.issued]


def _plan(codes: list[str]) -> list[tuple[str, str, str]]:
    """(code, order_id, key): each coupon under its own key; every fourth also by another
    till under a new key (one of the two is refused), every fifth retried (same key)."""
    asks = [(code, f"O-{code}", f"p-{code}") for code in codes]
    asks += [(code, f"X-{code}", f"x-{code}") for code in codes[::4]]
    asks += [(code, f"O-{code}", f"p-{code}") for code in codes[::5]]
    random.Random(9).shuffle(asks)
    return asks


def _stored(engine: Engine, group: str) -> tuple[dict[str, str], dict[str, int], set[str]]:
    """The redemption events (key -> code), redeemed events per code, redeemed coupons."""
    with engine.connect() as conn:
        keyed = conn.execute(
            text("""SELECT e.idempotency_key, c.code FROM coupon_events e
                    JOIN coupons c ON c.coupon_id = e.coupon_id
                    WHERE e.group_id = :g AND e.kind = 'redeemed'"""),
            {"g": group},
        ).all()
        redeemed = conn.execute(
            text("SELECT code FROM coupons WHERE group_id = :g AND status = 'redeemed'"),
            {"g": group},
        ).scalars()
        used = set(redeemed)
    per_code: dict[str, int] = {}
    for _, code in keyed:
        per_code[code] = per_code.get(code, 0) + 1
    return {str(k): str(c) for k, c in keyed}, per_code, used


def _whole(engine: Engine, group: str) -> dict[str, str]:
    """No coupon half redeemed: redeemed ⇔ one redeemed event, and the counters agree."""
    events, per_code, used = _stored(engine, group)
    assert set(per_code) == used
    assert set(per_code.values()) <= {1}
    with engine.connect() as conn:
        counted = dict(
            conn.execute(
                text("""SELECT counter, used FROM coupon_counters
                        WHERE group_id = :g AND member_id = 0"""),
                {"g": group},
            ).all()
        )
    assert counted.get("HOT:redemptions", 0) == len(used)
    assert counted.get("HOT:budget_fen", 0) == 800 * len(used)
    check_liability(engine, group)
    return events


def test_acknowledged_redemptions_survive_a_kill(pg_engine: Engine, tmp_path: Path) -> None:
    group, codes = _campaign(pg_engine)
    plan = _plan(codes)
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    kill_after = random.randrange(100, 600)  # acknowledgements read before the kill
    url = pg_engine.url.render_as_string(hide_password=False)
    with (tmp_path / "stderr").open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, url, group, str(tmp_path / "plan.json"), str(MAX_BATCH)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if len(lines) == kill_after:
                proc.send_signal(signal.SIGKILL)  # most likely inside the next batch
                break
        proc.wait()
        lines += proc.stdout.readlines()  # printed before the kill, not read yet
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, (tmp_path / "stderr").read_text()
    # a line the kill cut short was never acknowledged
    acknowledged = {key: code for code, key, _ in (x.split() for x in lines if x.endswith("\n"))}

    # every acknowledged redemption is stored, whole; at most one batch is unacknowledged
    events = _whole(pg_engine, group)
    assert {k: events.get(k) for k in acknowledged} == acknowledged, kill_after
    assert len(set(events) - set(acknowledged)) <= MAX_BATCH, kill_after

    # the tills send everything again: the acknowledged replay, the rest apply once
    asks = [Redemption(code, order, BASKET, key) for code, order, key in plan]
    answers = []
    for start in range(0, len(asks), MAX_BATCH):
        answers += redeem_many(pg_engine, group, asks[start : start + MAX_BATCH])
    for ask, answer in zip(asks, answers, strict=True):
        if ask.key in events:  # stored before the kill, acknowledged or not
            assert isinstance(answer, Redeemed) and answer.replayed, (ask, answer)
            assert answer.code == events[ask.key]
        elif not isinstance(answer, Redeemed):
            assert isinstance(answer, CouponNotRedeemable), (ask, answer)
    after = _whole(pg_engine, group)
    assert sorted(after.values()) == sorted(codes)  # every coupon redeemed, once
    assert events.items() <= after.items()
    fresh = [a for a in answers if isinstance(a, Redeemed) and not a.replayed]
    assert len(fresh) == COUPONS - len(events)
    # a key answers its own redemption, or is refused because another key holds it
    for ask, answer in zip(asks, answers, strict=True):
        assert isinstance(answer, Redeemed) == (after.get(ask.key) == ask.code), (ask, answer)
