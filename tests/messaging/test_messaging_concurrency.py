"""Sends at once, on SQLite and PostgreSQL: two plannings over the same 2,000 members
with a cap of one never give a member two touches; two workers draining one outbox
never claim a message twice."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from tests.conftest import Store
from tests.messaging.msg_helpers import (
    Receiver,
    T,
    at_stage,
    bulk_members,
    grant_all,
    receiving,
    send,
)

from siyu.messaging import outbox, policy
from siyu.messaging.plan import plan
from siyu.messaging.transports.registry import registry

N = 2000


def _at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released together; re-raise the first failure."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[i] = call()
        except BaseException as exc:  # handed back to the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if errors:
        raise errors[0]
    return results


# each cap of one at a time: the policy, when the second send goes, its sender
CAPS = {
    "capped_week": (policy.Policy(per_week=1), timedelta(days=1), None),
    "capped_channel_month": (
        policy.Policy(per_week=10, per_channel_month={"wechat_subscribe": 1}),
        timedelta(days=8),  # another week, the same month (T is 7 January)
        None,
    ),
    "capped_guide_day": (policy.Policy(per_week=10), timedelta(hours=2), "guide-1"),
}


@pytest.mark.parametrize("reason", list(CAPS))
def test_two_plannings_at_once_never_take_a_members_last_slot_twice(
    store: Store, reason: str
) -> None:
    g, e = store.group_id, store.engine
    rules, later, sender = CAPS[reason]
    # given 2,000 members with consent and a cap of one touch (a week, a month on the
    # channel, or a day from one guide)
    policy.save(e, g, rules)
    ids = bulk_members(e, g, N)
    at_stage(e, g, ids)
    grant_all(e, g, ids)
    send(e, g, "A", at=T, sender=sender)
    send(e, g, "B", at=T + later, sender=sender)
    # when both are planned at the same moment
    a, b = _at_once(lambda: plan(e, g, "A", now=T), lambda: plan(e, g, "B", now=T))
    # then each member is touched once: one send has them all, the other skips them all
    with e.connect() as conn:
        touched = conn.execute(
            text("""SELECT person_id, COUNT(*) FROM send_recipients
                    WHERE group_id = :g AND status = 'planned' GROUP BY person_id"""),
            {"g": g},
        ).all()
    assert len(touched) == N
    assert max(n for _, n in touched) == 1
    counts = sorted([a.counts, b.counts], key=lambda c: c.get("planned", 0))
    assert counts == [{reason: N}, {"planned": N}]


def test_two_workers_share_the_outbox_without_claiming_twice(store: Store) -> None:
    g, e = store.group_id, store.engine
    ids = bulk_members(e, g, 300)
    at_stage(e, g, ids)
    grant_all(e, g, ids)
    send(e, g, "S", at=T)
    plan(e, g, "S", now=T - timedelta(hours=1))
    receiver = Receiver()
    with receiving(receiver) as url:
        transports = {"wechat_subscribe": registry.transport("http", {"url": url})}

        def drain(worker: str) -> int:
            sent = 0
            while True:
                done = outbox.deliver(e, g, transports, worker=worker, limit=25, now=T)
                if not done.claimed:
                    return sent
                sent += done.sent

        one, two = _at_once(lambda: drain("w1"), lambda: drain("w2"))
    assert one + two == 300
    assert len(receiver.requests) == 300  # no message went out twice
    assert sorted(set(receiver.delivered.values())) == [1]
