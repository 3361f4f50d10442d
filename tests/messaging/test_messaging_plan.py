"""Planning a send on SQLite and PostgreSQL: every targeted member recorded, planned or
skipped with the reason; caps at their edges across sends; quiet hours; one message per
person after a OneID merge."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from tests.conftest import Store
from tests.messaging.msg_helpers import (
    T,
    at_stage,
    bulk_members,
    grant_all,
    person,
    send,
    statuses,
)

from siyu.campaigns import global_holdout
from siyu.identity.ingest import IdentifierEncoder
from siyu.identity.service import merge_members
from siyu.messaging import consent, outbox, policy
from siyu.messaging.errors import SendState
from siyu.messaging.plan import plan


def test_each_member_is_planned_or_skipped_with_the_reason(
    store: Store, encoder: IdentifierEncoder
) -> None:
    g, e = store.group_id, store.engine
    # given five members at risk: consent, none, withdrawn, no phone, and consent for SMS
    ok = person(e, encoder, g, "o-ok", "13800000001")
    never = person(e, encoder, g, "o-never", "13800000002")
    gone = person(e, encoder, g, "o-gone", "13800000003")
    no_phone = person(e, encoder, g, "o-nophone")
    at_stage(e, g, [ok, never, gone, no_phone])
    consent.record(e, g, ok, "grant", source="mini_program")
    consent.record(e, g, gone, "grant", source="mini_program", at=T - timedelta(days=2))
    consent.record(
        e, g, gone, "withdraw", channel="sms", source="sms_reply", at=T - timedelta(days=1)
    )
    consent.record(e, g, no_phone, "grant", source="mini_program")
    send(e, g, "SMS-1", channel="sms")
    # when the SMS send is planned
    planned = plan(e, g, "SMS-1", now=T - timedelta(hours=1))
    # then every member has a row, with the reason it is skipped
    assert statuses(e, g, "SMS-1") == {
        ok: ("planned", None),
        never: ("skipped", "no_consent"),
        gone: ("skipped", "opted_out"),
        no_phone: ("skipped", "no_identity_for_channel"),
    }
    assert planned.counts == {
        "planned": 1,
        "no_consent": 1,
        "opted_out": 1,
        "no_identity_for_channel": 1,
    }
    # and a withdrawal from SMS only leaves the mini-program open
    send(e, g, "MP-1", at=T + timedelta(days=8))
    plan(e, g, "MP-1", now=T)
    assert statuses(e, g, "MP-1")[gone] == ("planned", None)
    # and a send is planned once
    with pytest.raises(SendState, match="planned once"):
        plan(e, g, "SMS-1")


def test_a_service_message_needs_no_marketing_consent_and_no_cap(
    store: Store, encoder: IdentifierEncoder
) -> None:
    g, e = store.group_id, store.engine
    m = person(e, encoder, g, "o-1")
    at_stage(e, g, [m])
    send(e, g, "ORDER-SHIPPED", purpose="service", at=T.replace(hour=15))  # 23:00 local
    planned = plan(e, g, "ORDER-SHIPPED", now=T)
    assert statuses(e, g, "ORDER-SHIPPED") == {m: ("planned", None)}
    assert not planned.deferred  # quiet hours are for marketing


def test_the_week_cap_counts_other_sends_and_ends_exactly_7_days_later(
    store: Store, encoder: IdentifierEncoder
) -> None:
    g, e = store.group_id, store.engine
    policy.save(e, g, policy.Policy(per_week=1))
    m = person(e, encoder, g, "o-1")
    at_stage(e, g, [m])
    grant_all(e, g, [m])
    # given one touch at T
    send(e, g, "A", at=T)
    plan(e, g, "A", now=T - timedelta(days=1))
    # when a second is planned one second short of 7 days later, and one exactly 7 days later
    send(e, g, "B", at=T + timedelta(days=7) - timedelta(seconds=1))
    send(e, g, "C", at=T + timedelta(days=7))
    send(e, g, "D", at=T - timedelta(days=7) + timedelta(seconds=1))  # before A, too close
    for code in "BCD":
        plan(e, g, code, now=T - timedelta(days=1))
    # then only the one a full 7 days away is planned
    assert statuses(e, g, "B")[m] == ("skipped", "capped_week")
    assert statuses(e, g, "C")[m] == ("planned", None)
    assert statuses(e, g, "D")[m] == ("skipped", "capped_week")


def test_the_channel_month_is_the_groups_local_month(
    store: Store, encoder: IdentifierEncoder
) -> None:
    g, e = store.group_id, store.engine
    policy.save(
        e,
        g,
        policy.parse(
            {
                "per_week": 100,
                "per_channel_month": {"wecom_group_send": 1},
                "per_guide_day": 1,
                "quiet_start": "00:00",
                "quiet_end": "00:00",
            }
        ),
    )
    m = person(e, encoder, g, "o-1")
    with e.begin() as conn:  # a WeCom contact of the brand's company
        conn.execute(
            text("""INSERT INTO identities (group_id, type, value_key, value, value_masked, scope,
                      verified, source_channel, first_seen, last_seen, member_id)
                    VALUES (:g, 'external_userid', 'k-ext', 'wm-1', 'wm-1', '', true, 'wecom',
                      :t, :t, :m)"""),
            {"g": g, "t": T, "m": m},
        )
    at_stage(e, g, [m])
    grant_all(e, g, [m])
    jan31 = T.replace(day=31, hour=15, minute=30)  # 23:30 on 31 January in Shanghai
    feb1 = jan31 + timedelta(hours=1)  # 00:30 on 1 February in Shanghai, still 31 Jan UTC
    send(e, g, "W1", at=jan31, channel="wecom_group_send", sender="guide-1")
    send(e, g, "W2", at=feb1, channel="wecom_group_send", sender="guide-2")
    send(e, g, "W3", at=jan31 - timedelta(days=3), channel="wecom_group_send")
    send(e, g, "W4", at=feb1 + timedelta(hours=2), channel="wecom_group_send", sender="guide-2")
    for code in ("W1", "W2", "W3"):
        plan(e, g, code, now=T)
    assert statuses(e, g, "W1")[m] == ("planned", None)
    assert statuses(e, g, "W2")[m] == ("planned", None)  # another local month
    assert statuses(e, g, "W3")[m] == ("skipped", "capped_channel_month")
    # a second message from guide-2 on 1 February: the month's one slot went to W2 first
    plan(e, g, "W4", now=T)
    assert statuses(e, g, "W4")[m] == ("skipped", "capped_channel_month")


def test_the_guide_day_cap(store: Store, encoder: IdentifierEncoder) -> None:
    g, e = store.group_id, store.engine
    policy.save(e, g, policy.Policy(per_week=100, per_channel_month={}))
    m = person(e, encoder, g, "o-1")
    at_stage(e, g, [m])
    grant_all(e, g, [m])
    send(e, g, "G1", sender="guide-1")
    send(e, g, "G1-again", at=T + timedelta(hours=8), sender="guide-1")  # 18:00 same day
    send(e, g, "G2", at=T + timedelta(hours=8), sender="guide-2")
    send(e, g, "G1-tomorrow", at=T + timedelta(days=1), sender="guide-1")
    for code in ("G1", "G1-again", "G2", "G1-tomorrow"):
        plan(e, g, code, now=T - timedelta(days=1))
    assert statuses(e, g, "G1-again")[m] == ("skipped", "capped_guide_day")
    assert statuses(e, g, "G2")[m] == ("planned", None)
    assert statuses(e, g, "G1-tomorrow")[m] == ("planned", None)


def test_a_send_in_quiet_hours_is_deferred_to_their_end(
    store: Store, encoder: IdentifierEncoder
) -> None:
    g, e = store.group_id, store.engine
    m = person(e, encoder, g, "o-1")
    at_stage(e, g, [m])
    grant_all(e, g, [m])
    send(e, g, "LATE", at=T.replace(hour=14, minute=30))  # 22:30 in Shanghai
    planned = plan(e, g, "LATE", now=T)
    assert planned.deferred
    assert planned.due_at == T.replace(day=8, hour=1)  # 09:00 the next morning
    assert statuses(e, g, "LATE") == {m: ("deferred", "quiet_hours")}
    # and the outbox holds it until the quiet hours end
    assert outbox.claim(e, g, "w", now=planned.due_at - timedelta(seconds=1))[0] == []
    assert len(outbox.claim(e, g, "w", now=planned.due_at)[0]) == 1


def test_two_identities_of_one_person_get_one_message(
    store: Store, encoder: IdentifierEncoder
) -> None:
    g, e = store.group_id, store.engine
    # given two members the stage was computed for, later found to be one person
    a = person(e, encoder, g, "o-a")
    b = person(e, encoder, g, "o-b")
    at_stage(e, g, [a, b])
    consent.record(e, g, b, "grant", source="mini_program")
    _, survivor = merge_members(e, g, a, b, "same person")
    merged = b if survivor == a else a
    # when a send to the stage is planned
    send(e, g, "ONE")
    plan(e, g, "ONE", now=T - timedelta(hours=1))
    # then the person gets one message (under the survivor) and the other row says why not
    assert statuses(e, g, "ONE") == {
        survivor: ("planned", None),
        merged: ("skipped", "duplicate_after_oneid"),
    }


def test_the_global_holdout_gets_no_marketing_message_but_its_service_messages(
    store: Store, encoder: IdentifierEncoder
) -> None:
    g, e = store.group_id, store.engine
    # given 300 reachable members at risk, one pair of them merged, and a third of the
    # group's members held out of every treatment
    ids = bulk_members(e, g, 300)
    at_stage(e, g, ids)
    grant_all(e, g, ids)
    _, survivor = merge_members(e, g, ids[0], ids[1], "same person")
    absorbed = ids[1] if survivor == ids[0] else ids[0]
    holdout = global_holdout.set_share(e, g, 3_333)
    held = {m for m in ids if m != absorbed and holdout.holds(m)}
    assert 60 < len(held) < 140  # a third, give or take (the salt is drawn at random)
    # one of them never consented: unreachable anyway, that is its reason (the holdout
    # counts those the send would have reached)
    unreachable = min(held)
    held.remove(unreachable)
    with e.begin() as conn:
        conn.execute(
            text("DELETE FROM member_consents WHERE group_id = :g AND member_id = :m"),
            {"g": g, "m": unreachable},
        )
    # when a marketing send and a service send to the stage are planned
    send(e, g, "PROMO")
    send(e, g, "NOTICE", purpose="service")
    promo = plan(e, g, "PROMO", now=T - timedelta(hours=1))
    plan(e, g, "NOTICE", now=T - timedelta(hours=1))
    # then each held-out person is skipped by the marketing send for that reason (the
    # holdout decided by the person, as Python's bucket decides it), and only those
    found = statuses(e, g, "PROMO")
    assert {m for m, (_, r) in found.items() if r == "global_holdout"} == held
    assert found[absorbed] == ("skipped", "duplicate_after_oneid")
    assert found[unreachable] == ("skipped", "no_consent")
    assert promo.counts == {
        "planned": len(ids) - 2 - len(held),
        "global_holdout": len(held),
        "duplicate_after_oneid": 1,
        "no_consent": 1,
    }
    # and the service message goes to every person, held out or not
    assert {m for m, (s, _) in statuses(e, g, "NOTICE").items() if s == "planned"} == (
        set(ids) - {absorbed}
    )
