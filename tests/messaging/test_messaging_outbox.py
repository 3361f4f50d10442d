"""The outbox on SQLite and PostgreSQL against a real HTTP receiver: retries with backoff,
at least once yet once for the receiver (the idempotency key), a dead worker's lease
reclaimed, consent withdrawn before delivery honoured, status callbacks and clicks kept
once, and orders attributed to the last send within the window."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import text
from tests.conftest import Store
from tests.messaging.msg_helpers import (
    Receiver,
    T,
    at_stage,
    grant_all,
    person,
    receiving,
    send,
    statuses,
    till_order,
)

from siyu.identity.ingest import IdentifierEncoder
from siyu.identity.service import merge_members, unmerge
from siyu.messaging import consent, outbox, policy
from siyu.messaging.attribution import send_result
from siyu.messaging.plan import plan
from siyu.messaging.transports.registry import registry
from siyu.privacy import Vault
from siyu.store.times import stored_now, stored_time

PAST = datetime(2026, 1, 5, 2, 0)  # 10:00 in Shanghai, due by now


def _planned(
    store: Store, encoder: IdentifierEncoder, n: int, at: datetime = T, **fields: object
) -> list[int]:
    g, e = store.group_id, store.engine
    ids = [person(e, encoder, g, f"o-{i}", f"1380000{i:04d}") for i in range(n)]
    at_stage(e, g, ids)
    grant_all(e, g, ids)
    send(e, g, "S", at=at, **fields)
    plan(e, g, "S", now=at - timedelta(hours=1))
    return ids


def test_failures_are_retried_with_backoff_and_delivered_once(
    store: Store, encoder: IdentifierEncoder
) -> None:
    g, e = store.group_id, store.engine
    ids = _planned(store, encoder, 3)
    receiver = Receiver(fail_first=2)
    with receiving(receiver) as url:
        transports = {"wechat_subscribe": registry.transport("http", {"url": url})}
        # when the first two requests fail
        first = outbox.deliver(e, g, transports, now=T)
        assert (first.claimed, first.sent, first.retry, first.failed) == (3, 1, 2, 0)
        # then they wait out the backoff (1 minute), and go after it
        assert outbox.deliver(e, g, transports, now=T + timedelta(seconds=59)).claimed == 0
        second = outbox.deliver(e, g, transports, now=T + timedelta(seconds=60))
        assert (second.claimed, second.sent) == (2, 2)
    assert {s for s, _ in statuses(e, g, "S").values()} == {"sent"}
    assert sorted(receiver.delivered.values()) == [1, 1, 1]
    body = receiver.requests[-1]
    assert body["idempotency_key"] == f"{g}:{body['send_id']}:{body['member_id']}"
    assert body["address"].startswith("o-")  # the openid on the mini-program
    assert body["content"] == {"template": "TPL-1", "params": {"thing1": "春季上新"}}
    with e.connect() as conn:
        attempts = conn.execute(
            text("SELECT member_id, attempts FROM send_recipients WHERE group_id = :g"), {"g": g}
        ).all()
    assert sorted(a for _, a in attempts) == [1, 2, 2]
    assert set(ids) == {m for m, _ in attempts}


def test_a_message_that_keeps_failing_gives_up(store: Store, encoder: IdentifierEncoder) -> None:
    g, e = store.group_id, store.engine
    _planned(store, encoder, 1)
    receiver = Receiver(fail_first=100)
    with receiving(receiver) as url:
        transports = {"wechat_subscribe": registry.transport("http", {"url": url})}
        now = T
        for attempt in range(1, outbox.MAX_ATTEMPTS + 1):
            done = outbox.deliver(e, g, transports, now=now)
            assert done.claimed == 1
            now += outbox.backoff(attempt)
        assert (done.retry, done.failed) == (0, 1)
        assert outbox.deliver(e, g, transports, now=now + timedelta(days=1)).claimed == 0
    assert len(receiver.requests) == outbox.MAX_ATTEMPTS
    assert list(statuses(e, g, "S").values()) == [("failed", None)]


def test_a_claim_takes_the_earliest_due_first_across_sends_and_states(
    store: Store, encoder: IdentifierEncoder
) -> None:
    g, e = store.group_id, store.engine
    ids = [person(e, encoder, g, f"o-{i}") for i in range(2)]
    at_stage(e, g, ids)
    grant_all(e, g, ids)
    # given a send due later planned first (the lower send id), then one due earlier
    for code, at in (("LATE", T + timedelta(minutes=10)), ("EARLY", T)):
        send(e, g, code, at=at)
        plan(e, g, code, now=T - timedelta(hours=1))
    receiver = Receiver(fail_first=1)
    now = T + timedelta(minutes=20)
    with receiving(receiver) as url:
        transports = {"wechat_subscribe": registry.transport("http", {"url": url})}
        # when a batch of two is claimed, it is the earlier send's, one of them failing
        first = outbox.deliver(e, g, transports, limit=2, now=now)
        assert (first.claimed, first.sent, first.retry) == (2, 1, 1)
        assert {r["send_code"] for r in receiver.requests} == {"EARLY"}
        # then its retry, due since T, goes before the later send's planned rows
        again = outbox.deliver(e, g, transports, limit=1, now=now + outbox.backoff(1))
        assert (again.claimed, again.sent) == (1, 1)
        assert receiver.requests[-1]["send_code"] == "EARLY"
        # and a batch larger than what is left takes the rest, across the two states
        rest = outbox.deliver(e, g, transports, limit=5, now=now + outbox.backoff(1))
        assert (rest.claimed, rest.sent) == (2, 2)
    assert [r["send_code"] for r in receiver.requests[-2:]] == ["LATE", "LATE"]
    assert sorted(receiver.delivered.values()) == [1, 1, 1, 1]
    for code in ("EARLY", "LATE"):
        assert {s for s, _ in statuses(e, g, code).values()} == {"sent"}


def test_a_dead_workers_lease_runs_out_and_the_receiver_sees_each_key_once(
    store: Store, encoder: IdentifierEncoder
) -> None:
    g, e = store.group_id, store.engine
    _planned(store, encoder, 4)
    receiver = Receiver()
    with receiving(receiver) as url:
        http = registry.transport("http", {"url": url})
        # given a worker that claimed the batch and delivered it, then died before settling
        messages, _ = outbox.claim(e, g, "dead", now=T)
        assert len(messages) == 4
        http.deliver(messages)
        transports = {"wechat_subscribe": http}
        # then no one else takes the rows while the lease holds
        assert (
            outbox.deliver(e, g, transports, worker="w2", now=T + timedelta(minutes=4)).claimed == 0
        )
        # and after it they are delivered again, under the same keys
        again = outbox.deliver(e, g, transports, worker="w2", now=T + outbox.LEASE)
        assert (again.claimed, again.sent) == (4, 4)
    assert len(receiver.requests) == 8
    assert sorted(receiver.delivered.values()) == [1, 1, 1, 1]
    # and the dead worker's late answer changes nothing
    sent, retry, failed = outbox.settle(
        e, g, "dead", [(m, outbox.Outcome(False, error="late")) for m in messages]
    )
    assert (sent, retry, failed) == (0, 0, 0)
    assert {s for s, _ in statuses(e, g, "S").values()} == {"sent"}


def test_consent_withdrawn_a_second_before_delivery_is_honoured(
    store: Store, encoder: IdentifierEncoder
) -> None:
    g, e = store.group_id, store.engine
    ids = _planned(store, encoder, 2, at=PAST)
    # when one member withdraws a second before the worker runs
    cancelled = consent.record(
        e, g, ids[0], "withdraw", source="mini_program", at=stored_now() - timedelta(seconds=1)
    )
    assert cancelled == 1
    receiver = Receiver()
    with receiving(receiver) as url:
        transports = {"wechat_subscribe": registry.transport("http", {"url": url})}
        # (out of the quiet hours, whatever the hour the test runs at)
        done = outbox.deliver(e, g, transports, now=policy.Policy().out_of_quiet(stored_now()))
    # then only the other is delivered
    assert (done.claimed, done.sent) == (1, 1)
    assert [r["member_id"] for r in receiver.requests] == [ids[1]]
    assert statuses(e, g, "S")[ids[0]] == ("skipped", "opted_out")


def test_the_claim_rechecks_consent_that_changed_by_a_merge(
    store: Store, encoder: IdentifierEncoder
) -> None:
    g, e = store.group_id, store.engine
    # given a planned message to a member who granted consent
    a = person(e, encoder, g, "o-a")
    at_stage(e, g, [a])
    consent.record(e, g, a, "grant", source="mini_program", at=T - timedelta(days=3))
    send(e, g, "S")
    plan(e, g, "S", now=T - timedelta(hours=1))
    # when another member of the same person, who withdrew later, is merged into it
    b = person(e, encoder, g, "o-b")
    consent.record(e, g, b, "withdraw", source="sms_reply", at=T - timedelta(days=1))
    merge_id, survivor = merge_members(e, g, a, b, "same person")
    assert survivor == a
    with e.connect() as conn:
        assert not consent.state(conn, g, a, "wechat_subscribe").granted
    # then the worker skips it in the claim: the withdrawal after the last grant wins
    receiver = Receiver()
    with receiving(receiver) as url:
        transports = {"wechat_subscribe": registry.transport("http", {"url": url})}
        done = outbox.deliver(e, g, transports, now=T)
    assert (done.claimed, done.revoked) == (0, 1)
    assert receiver.requests == []
    assert statuses(e, g, "S")[a] == ("skipped", "opted_out")
    # and undoing the merge gives the survivor back its own consent
    unmerge(e, g, merge_id, "two people")
    with e.connect() as conn:
        assert consent.state(conn, g, a, "wechat_subscribe").granted
        assert not consent.state(conn, g, b, "wechat_subscribe").granted


def test_an_sms_goes_to_the_decrypted_phone(
    store: Store, encoder: IdentifierEncoder, vault: Vault
) -> None:
    g, e = store.group_id, store.engine
    _planned(store, encoder, 1, channel="sms")
    receiver = Receiver()
    with receiving(receiver) as url:
        transports = {"sms": registry.transport("http", {"url": url})}
        outbox.deliver(e, g, transports, now=T, vault=vault)
    assert [r["address"] for r in receiver.requests] == ["+8613800000000"]


def test_events_are_kept_once_and_orders_go_to_the_last_send(
    store: Store, encoder: IdentifierEncoder
) -> None:
    g, e = store.group_id, store.engine
    ids = _planned(store, encoder, 3)
    send(e, g, "LATER", at=T + timedelta(days=8))
    plan(e, g, "LATER", now=T)
    receiver = Receiver()
    with receiving(receiver) as url:
        transports = {"wechat_subscribe": registry.transport("http", {"url": url})}
        outbox.deliver(e, g, transports, now=T)
        outbox.deliver(e, g, transports, now=T + timedelta(days=8))
    with e.connect() as conn:
        send_id = conn.execute(
            text("SELECT send_id FROM sends WHERE code = 'S' AND group_id = :g"), {"g": g}
        ).scalar_one()
    # status callbacks and clicks, a repeated callback kept once
    assert outbox.record_event(e, g, send_id, ids[0], "delivered", "cb-1")
    assert not outbox.record_event(e, g, send_id, ids[0], "delivered", "cb-1")
    assert outbox.record_event(e, g, send_id, ids[1], "delivered", "cb-2")
    assert outbox.record_event(e, g, send_id, ids[0], "clicked", "cb-3")
    # orders: ids[0] buys 2 days after S; ids[1] buys 10 days after S (after LATER);
    # ids[2] buys 8 days after S but before LATER was sent: outside S's 7-day window
    till_order(e, g, "O1", ids[0], 5000, T + timedelta(days=2))
    till_order(e, g, "O2", ids[1], 7000, T + timedelta(days=10))
    till_order(e, g, "O3", ids[2], 9000, T + timedelta(days=7, hours=23))
    first = send_result(e, g, "S")
    assert (first.recipients, first.sent, first.delivered, first.clicked) == (3, 3, 2, 1)
    assert (first.buyers, first.orders, first.revenue_fen) == (1, 1, 5000)
    later = send_result(e, g, "LATER")
    assert (later.buyers, later.orders, later.revenue_fen) == (1, 1, 7000)
    assert send_result(e, g, "S", window_days=8).revenue_fen == 5000 + 9000


def test_quiet_hours_hold_a_sends_rest_and_its_retries_but_not_a_service_message(
    store: Store, encoder: IdentifierEncoder
) -> None:
    g, e = store.group_id, store.engine
    # given a marketing send of three due at 20:59:30 in Shanghai (outside quiet hours,
    # so planned, not deferred), and a service message to them due at the same time
    due = T.replace(hour=12, minute=59, second=30)
    _planned(store, encoder, 3, at=due)
    send(e, g, "SERVICE", at=due, purpose="service")
    plan(e, g, "SERVICE", now=due - timedelta(hours=1))
    quiet_ends = T.replace(day=T.day + 1, hour=1)  # 09:00 the next morning
    receiver = Receiver(fail_first=1)
    with receiving(receiver) as url:
        transports = {"wechat_subscribe": registry.transport("http", {"url": url})}
        # when a worker takes one marketing message at 20:59:30 (it fails: a retry)
        first = outbox.deliver(e, g, transports, limit=1, now=due)
        assert (first.claimed, first.retry) == (1, 1)
        # then at 21:00 the rest of the send, its retry and all, waits; the service goes
        night = outbox.deliver(e, g, transports, now=T.replace(hour=13))
        assert (night.claimed, night.sent) == (3, 3)
        assert {r["send_code"] for r in receiver.requests[1:]} == {"SERVICE"}
        assert outbox.deliver(e, g, transports, now=quiet_ends - timedelta(seconds=1)).claimed == 0
        # and the retry's backoff (a minute) was moved to the end of the quiet hours
        with e.connect() as conn:
            retry_at = conn.execute(
                text("""SELECT next_attempt_at FROM send_recipients
                        WHERE group_id = :g AND status = 'retry'"""),
                {"g": g},
            ).scalar_one()
        assert stored_time(retry_at) == quiet_ends
        # and at 09:00 all of it goes
        morning = outbox.deliver(e, g, transports, now=quiet_ends)
        assert (morning.claimed, morning.sent) == (3, 3)
    assert {s for s, _ in statuses(e, g, "S").values()} == {"sent"}
    assert sorted(receiver.delivered.values()) == [1] * 6
