"""A send held for review on SQLite and PostgreSQL: `held` is a status of its own (the
database refuses any other), the outbox delivers nothing of it until it is released, and
cancelling it frees the cap slots its members held for another send."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
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
)

from siyu.identity.ingest import IdentifierEncoder
from siyu.messaging import lifecycle, outbox, policy
from siyu.messaging.errors import SendState
from siyu.messaging.plan import plan
from siyu.messaging.transports.registry import registry

BEFORE = T - timedelta(hours=1)


def _status(store: Store, code: str) -> str:
    with store.engine.connect() as conn:
        return str(
            conn.execute(
                text("SELECT status FROM sends WHERE group_id = :g AND code = :c"),
                {"g": store.group_id, "c": code},
            ).scalar_one()
        )


def test_a_held_send_is_never_delivered_until_released(
    store: Store, encoder: IdentifierEncoder
) -> None:
    g, e = store.group_id, store.engine
    ids = [person(e, encoder, g, f"o-{i}") for i in range(3)]
    at_stage(e, g, ids)
    grant_all(e, g, ids)
    # given a send planned held for review
    send(e, g, "H", at=T)
    plan(e, g, "H", now=BEFORE, hold=True)
    assert _status(store, "H") == "held"
    with e.connect() as conn:
        assert lifecycle.one(conn, g, "H").state == "held"
    assert {s for s, _ in statuses(e, g, "H").values()} == {"planned"}
    receiver = Receiver()
    with receiving(receiver) as url:
        transports = {"wechat_subscribe": registry.transport("http", {"url": url})}
        # when the outbox runs at its time, and long after
        for later in (T, T + timedelta(days=1), T + timedelta(days=30)):
            assert outbox.deliver(e, g, transports, now=later).claimed == 0
        # then nothing went; once released, everything goes
        assert receiver.requests == []
        released = lifecycle.release(e, g, "H", now=BEFORE)
        assert released.state == "planned" and released.due_at == T
        assert _status(store, "H") == "planned"
        assert outbox.deliver(e, g, transports, now=T).sent == 3
    assert sorted(receiver.delivered.values()) == [1, 1, 1]


def test_the_states_a_send_moves_through(store: Store, encoder: IdentifierEncoder) -> None:
    g, e = store.group_id, store.engine
    m = person(e, encoder, g, "o-1")
    at_stage(e, g, [m])
    grant_all(e, g, [m])
    send(e, g, "H", at=T)
    # a draft is not released, and is planned once: held, then planned
    with pytest.raises(SendState, match="H is draft; only a held plan is sent"):
        lifecycle.release(e, g, "H", now=BEFORE)
    plan(e, g, "H", now=BEFORE, hold=True)
    with pytest.raises(SendState, match="H is held; it is planned once"):
        plan(e, g, "H", now=BEFORE, hold=True)
    lifecycle.release(e, g, "H", now=BEFORE)
    with pytest.raises(SendState, match="H is planned; only a held plan is sent"):
        lifecycle.release(e, g, "H", now=BEFORE)
    # a send planned at once is never held; a cancelled one stays cancelled
    send(e, g, "P", at=T + timedelta(days=8))
    plan(e, g, "P", now=BEFORE)
    assert _status(store, "P") == "planned"
    lifecycle.cancel(e, g, "P", now=BEFORE)
    for act in (lifecycle.release, lifecycle.cancel):
        with pytest.raises(SendState, match="P is cancelled"):
            act(e, g, "P", now=BEFORE)
    # and the database takes no status outside the four
    with pytest.raises(IntegrityError), e.begin() as conn:
        conn.execute(
            text("UPDATE sends SET status = 'paused' WHERE group_id = :g AND code = 'H'"),
            {"g": g},
        )


def test_cancelling_a_held_send_frees_its_cap_slots(
    store: Store, encoder: IdentifierEncoder
) -> None:
    g, e = store.group_id, store.engine
    policy.save(e, g, policy.Policy(per_week=1))
    ids = [person(e, encoder, g, f"o-{i}") for i in range(2)]
    at_stage(e, g, ids)
    grant_all(e, g, ids)
    # given a held send: its members hold their one slot of the week
    send(e, g, "A", at=T)
    plan(e, g, "A", now=BEFORE, hold=True)
    send(e, g, "B", at=T + timedelta(hours=1))
    plan(e, g, "B", now=BEFORE)
    assert {statuses(e, g, "B")[m] for m in ids} == {("skipped", "capped_week")}
    # when it is cancelled
    row, skipped = lifecycle.cancel(e, g, "A", now=BEFORE)
    assert (row.state, skipped) == ("cancelled", 2)
    assert {statuses(e, g, "A")[m] for m in ids} == {("skipped", "send_cancelled")}
    # then a send planned after takes the slots
    send(e, g, "C", at=T + timedelta(hours=2))
    plan(e, g, "C", now=BEFORE)
    assert {statuses(e, g, "C")[m] for m in ids} == {("planned", None)}
    # and the cancelled send is never delivered
    receiver = Receiver()
    with receiving(receiver) as url:
        transports = {"wechat_subscribe": registry.transport("http", {"url": url})}
        done = outbox.deliver(e, g, transports, now=T + timedelta(days=1))
    assert done.sent == 2
    assert {int(body["member_id"]) for body in receiver.requests} == set(ids)
    assert {body["send_id"] for body in receiver.requests} == {_send_id(store, "C")}


def _send_id(store: Store, code: str) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT send_id FROM sends WHERE group_id = :g AND code = :c"),
                {"g": store.group_id, "c": code},
            ).scalar_one()
        )
