"""Consent on SQLite and PostgreSQL: events kept as said, the state the last word per
channel with '*' for all, a tie withdraws, bad input named, and the state following OneID
merges (chains too) and unmerges; sends refuse what makes no sense."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pydantic
import pytest
from sqlalchemy import text
from tests.conftest import Store
from tests.experiments.helpers import make_plan as make_experiment
from tests.experiments.helpers import save_send
from tests.messaging.msg_helpers import (
    T,
    at_stage,
    bulk_members,
    grant_all,
    person,
    send,
    statuses,
)

from siyu.errors import NotFoundError, ValidationError
from siyu.experiments import plan as experiment_plans
from siyu.experiments.assign import start
from siyu.identity.ingest import IdentifierEncoder
from siyu.identity.service import merge_members
from siyu.messaging import consent, sends
from siyu.messaging.errors import SendExists
from siyu.messaging.plan import plan


def _granted(store: Store, member: int, channel: str) -> bool:
    with store.engine.connect() as conn:
        return consent.state(conn, store.group_id, member, channel).granted


def test_the_last_word_per_channel_wins_and_star_means_every_channel(
    store: Store, encoder: IdentifierEncoder
) -> None:
    g, e = store.group_id, store.engine
    m = person(e, encoder, g, "o-1")
    assert not _granted(store, m, "sms")  # never asked: no consent
    consent.record(e, g, m, "grant", source="mini_program", at=T)
    assert _granted(store, m, "sms") and _granted(store, m, "wechat_subscribe")
    # an SMS opt-out leaves the other channels
    consent.record(e, g, m, "withdraw", channel="sms", source="sms_reply", at=T + timedelta(1))
    assert not _granted(store, m, "sms") and _granted(store, m, "wechat_subscribe")
    # a grant arriving late (said before the opt-out) does not undo it
    consent.record(e, g, m, "grant", channel="sms", source="till", at=T + timedelta(hours=1))
    assert not _granted(store, m, "sms")
    # a grant said later does
    consent.record(e, g, m, "grant", channel="sms", source="till", at=T + timedelta(2))
    assert _granted(store, m, "sms")
    # a withdrawal from everything at the same second as a grant withdraws
    consent.record(e, g, m, "withdraw", source="console", at=T + timedelta(3))
    consent.record(e, g, m, "grant", channel="sms", source="till", at=T + timedelta(3))
    assert not _granted(store, m, "sms") and not _granted(store, m, "wechat_template")
    # and every event is kept as it was said
    assert store.count("consent_events") == 6


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"action": "maybe"}, "action"),
        ({"purpose": "gossip"}, "purpose"),
        ({"channel": "fax"}, "channel"),
        ({"source": ""}, "source"),
    ],
)
def test_a_bad_consent_names_the_field_and_writes_nothing(
    store: Store, encoder: IdentifierEncoder, args: dict[str, Any], field: str
) -> None:
    m = person(store.engine, encoder, store.group_id, "o-1")
    given: dict[str, Any] = {"action": "grant", "source": "till", **args}
    action = given.pop("action")
    with pytest.raises(ValidationError) as caught:
        consent.record(store.engine, store.group_id, m, action, **given)
    assert caught.value.field == field
    assert store.count("consent_events") == 0


def test_consent_follows_a_chain_of_merges(store: Store, encoder: IdentifierEncoder) -> None:
    g, e = store.group_id, store.engine
    a, b, c = (person(e, encoder, g, f"o-{x}") for x in "abc")
    consent.record(e, g, a, "grant", source="mini_program", at=T)
    consent.record(e, g, b, "grant", source="mini_program", at=T + timedelta(1))
    # given b merged into a, then a into c: c is the person
    _, first = merge_members(e, g, a, b, "same person")
    _, person_id = merge_members(e, g, first, c, "same person")
    assert _granted(store, person_id, "sms")
    # when a withdrawal arrives through the oldest member id
    gone = a if person_id != a else b
    consent.record(e, g, gone, "withdraw", source="sms_reply", at=T + timedelta(2))
    # then the person is withdrawn, and a send to the stage skips them
    assert not _granted(store, person_id, "sms")
    at_stage(e, g, [person_id])
    send(e, g, "S")
    assert plan(e, g, "S", now=T).counts == {"opted_out": 1}


def test_sends_refuse_what_makes_no_sense(store: Store) -> None:
    base: dict[str, Any] = {
        "code": "S",
        "channel": "sms",
        "content": {"template": "T1"},
        "target": {"stage": "at_risk"},
        "scheduled_at": "2030-01-07T10:00:00+08:00",
    }
    for change, message in [
        ({"channel": "fax"}, "unknown messaging channel 'fax'; known: wecom_group_send"),
        ({"target": {"stage": "x", "segment": "y"}}, "exactly one of segment"),
        ({"target": {"experiment": "E1"}}, "names its variant"),
        ({"target": {"stage": "sleepy"}}, "stage: one of"),
        ({"purpose": "spam"}, "purpose"),
    ]:
        with pytest.raises(pydantic.ValidationError, match=message):
            sends.Send.model_validate({**base, **change})
    saved = sends.save(store.engine, store.group_id, sends.Send.model_validate(base))
    # saving the same document again is a no-op; another under the code is refused
    assert sends.save(store.engine, store.group_id, sends.Send.model_validate(base)) == saved
    with pytest.raises(SendExists, match="another body"):
        other = {**base, "content": {"template": "T2"}}
        sends.save(store.engine, store.group_id, sends.Send.model_validate(other))


def test_a_send_to_an_experiment_variant_reaches_its_members_only(store: Store) -> None:
    """An experiment arm as a target: its members still assigned, the other variants and
    members outside the experiment not; an unknown experiment or variant is refused by
    name and the send stays a draft."""
    g, e = store.group_id, store.engine
    ids = bulk_members(e, g, 200)
    at_stage(e, g, ids, "new_1")
    grant_all(e, g, ids)
    outsider = bulk_members(e, g, 1)
    grant_all(e, g, outsider)
    save_send(e, g)  # what the experiment's `note` variant names
    experiment_plans.save(
        e,
        g,
        make_experiment(starts_at=T.isoformat(), ends_at=(T + timedelta(days=60)).isoformat()),
        None,
    )
    start(e, g, "KNEE2", at=T)
    with e.connect() as conn:
        noted = dict(
            conn.execute(
                text("SELECT member_id, variant FROM experiment_members WHERE group_id = :g"),
                {"g": g},
            ).all()
        )
    send(e, g, "X", target={"experiment": "KNEE2", "variant": "note"})
    plan(e, g, "X", now=T)
    reached = {m for m, (status, _) in statuses(e, g, "X").items() if status == "planned"}
    assert reached == {m for m, v in noted.items() if v == "note"}
    assert 30 < len(reached) < 100  # about 30% of 200, by the hash
    send(e, g, "Y", target={"experiment": "KNEE2", "variant": "nope"})
    with pytest.raises(ValidationError, match=r"target\.variant: one of the experiment's"):
        plan(e, g, "Y", now=T)
    send(e, g, "Z", target={"experiment": "NOPE", "variant": "note"})
    with pytest.raises(NotFoundError, match=r"target\.experiment: no experiment 'NOPE'"):
        plan(e, g, "Z", now=T)
    with e.connect() as conn:
        assert sends.load(conn, g, "Y").status == "draft"
        assert sends.load(conn, g, "Z").status == "draft"
