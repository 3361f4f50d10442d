"""Sends at once, on SQLite and PostgreSQL: two plannings over the same 2,000 members
with a cap of one never give a member two touches; two workers draining one outbox
never claim a message twice; withdrawals said while two workers deliver are honoured for
every message not yet claimed; two workers in the quiet hours deliver the service messages
only, and at 09:00 the marketing ones, each once."""

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
    statuses,
)

from siyu.messaging import consent, outbox, policy
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


def _drain(store: Store, transports: dict[str, Any], worker: str, limit: int, now: Any) -> int:
    """Deliver batches of `limit` until a claim finds nothing; how many were sent."""
    sent = 0
    while True:
        done = outbox.deliver(
            store.engine, store.group_id, transports, worker=worker, limit=limit, now=now
        )
        if not done.claimed:
            return sent
        sent += done.sent


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

        one, two = _at_once(
            lambda: _drain(store, transports, "w1", 25, T),
            lambda: _drain(store, transports, "w2", 25, T),
        )
    assert one + two == 300
    assert len(receiver.requests) == 300  # no message went out twice
    assert sorted(set(receiver.delivered.values())) == [1]


class WithdrawingReceiver(Receiver):
    """Every 10th request, while the workers wait on it, five members the platform has not
    been sent yet withdraw their consent; then the receiver notes which of them were not
    claimed when the withdrawal committed (their messages were waiting): those must never
    be sent."""

    def __init__(self, engine: Any, group_id: str, members: list[int]) -> None:
        super().__init__()
        self.engine, self.group_id = engine, group_id
        self.pending = list(members)
        self.withdrawn: list[int] = []
        self.unclaimed: set[int] = set()
        self.said = threading.Lock()

    def handle(self, key: str, body: dict[str, Any]) -> int:
        code = super().handle(key, body)
        with self.lock:
            n, sent = len(self.requests), {int(r["member_id"]) for r in self.requests}
        if n % 10 == 0:
            with self.said:
                now = [m for m in self.pending if m not in sent][:5]
                self.pending = [m for m in self.pending if m not in now]
                for m in now:
                    consent.record(self.engine, self.group_id, m, "withdraw", source="sms_reply")
                    self.withdrawn.append(m)
                    with self.engine.connect() as conn:
                        claimed = conn.execute(
                            text("""SELECT claimed_by FROM send_recipients
                                    WHERE group_id = :g AND member_id = :m"""),
                            {"g": self.group_id, "m": m},
                        ).scalar()
                    if claimed is None:
                        self.unclaimed.add(m)
        return code


def test_withdrawals_while_two_workers_deliver_are_honoured_for_every_unclaimed_message(
    store: Store,
) -> None:
    g, e = store.group_id, store.engine
    # given 300 members planned, and members withdrawing while two workers deliver
    ids = bulk_members(e, g, 300)
    at_stage(e, g, ids)
    grant_all(e, g, ids)
    send(e, g, "S", at=T)
    plan(e, g, "S", now=T - timedelta(hours=1))
    receiver = WithdrawingReceiver(e, g, ids[::-1])
    with receiving(receiver) as url:
        transports = {"wechat_subscribe": registry.transport("http", {"url": url})}

        one, two = _at_once(
            lambda: _drain(store, transports, "w1", 10, T),
            lambda: _drain(store, transports, "w2", 10, T),
        )
    requested = [int(r["member_id"]) for r in receiver.requests]
    # then members withdrew, most of them before their message was claimed
    assert len(receiver.withdrawn) >= 50 and len(receiver.unclaimed) >= 25
    # and not one of those was sent: they are skipped as opted out
    assert receiver.unclaimed.isdisjoint(requested)
    final = statuses(e, g, "S")
    assert all(final[m] == ("skipped", "opted_out") for m in receiver.unclaimed)
    # and a withdrawn member was sent only if claimed before (never twice); every other
    # member was sent once, and every message ended sent or skipped
    assert len(requested) == len(set(requested)) == one + two
    assert set(requested) | receiver.unclaimed == set(ids)
    assert {s for s, _ in final.values()} <= {"sent", "skipped"}


def test_two_workers_in_the_quiet_hours_deliver_service_messages_only(store: Store) -> None:
    g, e = store.group_id, store.engine
    # given 200 members with a marketing send and a service message each, due at 20:00
    # in Shanghai
    ids = bulk_members(e, g, 200)
    at_stage(e, g, ids)
    grant_all(e, g, ids)
    due = T.replace(hour=12)
    send(e, g, "M", at=due)
    send(e, g, "SV", at=due, purpose="service")
    for code in ("M", "SV"):
        plan(e, g, code, now=due - timedelta(hours=1))
    receiver = Receiver()
    with receiving(receiver) as url:
        transports = {"wechat_subscribe": registry.transport("http", {"url": url})}

        def drain(worker: str, now: Any) -> int:
            return _drain(store, transports, worker, 15, now)

        # when two workers drain at 22:00 (quiet hours)
        night = _at_once(
            lambda: drain("w1", T.replace(hour=14)), lambda: drain("w2", T.replace(hour=14))
        )
        # then only the service messages went, each once; marketing waits
        assert sum(night) == 200
        assert {r["send_code"] for r in receiver.requests} == {"SV"}
        assert {s for s, _ in statuses(e, g, "M").values()} == {"planned"}
        # and at 09:00 two workers send the marketing messages, each once
        morning_at = T.replace(day=T.day + 1, hour=1)
        morning = _at_once(lambda: drain("w1", morning_at), lambda: drain("w2", morning_at))
    assert sum(morning) == 200
    assert len(receiver.requests) == 400 and sorted(set(receiver.delivered.values())) == [1]
    assert {s for s, _ in statuses(e, g, "M").values()} == {"sent"}
