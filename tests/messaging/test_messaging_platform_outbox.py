"""End to end: sends planned in the store, delivered by the outbox through the platform
transports to the local WeCom / WeChat / SMS server, and a WeCom task's per-customer
results read back as message events."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import text
from tests.conftest import Store
from tests.messaging.msg_helpers import T, at_stage, grant_all, person, send, statuses
from tests.messaging.platform_server import Platform, serving

from siyu.identity.ingest import IdentifierEncoder
from siyu.messaging import outbox
from siyu.messaging.attribution import send_result
from siyu.messaging.plan import plan
from siyu.messaging.transports import wecom
from siyu.messaging.transports.registry import registry
from siyu.privacy import Vault


@pytest.fixture
def platform() -> Iterator[tuple[Platform, str]]:
    found = Platform()
    with serving(found) as url:
        yield found, url


def _contacts(store: Store, encoder: IdentifierEncoder, n: int) -> list[int]:
    """`n` members who are WeCom contacts of the brand (external_userid wm-<i>)."""
    g, e = store.group_id, store.engine
    ids = [person(e, encoder, g, f"o-{i}") for i in range(n)]
    with e.begin() as conn:
        conn.execute(
            text("""INSERT INTO identities (group_id, type, value_key, value, value_masked,
                      scope, verified, source_channel, first_seen, last_seen, member_id)
                    VALUES (:g, 'external_userid', :k, :v, :v, '', true, 'wecom', :t, :t, :m)"""),
            [
                {"g": g, "k": f"{g}-ext-{i}", "v": f"wm-{i}", "t": T, "m": m}
                for i, m in enumerate(ids)
            ],
        )
    at_stage(e, g, ids)
    grant_all(e, g, ids)
    return ids


def test_a_wecom_group_send_becomes_a_task_and_its_results_become_events(
    store: Store, encoder: IdentifierEncoder, platform: tuple[Platform, str]
) -> None:
    g, e = store.group_id, store.engine
    p, url = platform
    ids = _contacts(store, encoder, 4)
    p.not_friends.add("wm-3")
    send(
        e,
        g,
        "W",
        channel="wecom_group_send",
        sender="guide-1",
        content={"template": "text", "params": {"text": "春季上新，到店有礼"}},
    )
    plan(e, g, "W", now=T - timedelta(hours=1))
    transport = registry.transport(
        "wecom_group_send", {"corpid": p.corpid, "corpsecret": p.corpsecret, "base_url": url}
    )
    assert isinstance(transport, wecom.WecomGroupSendTransport)
    # when the outbox delivers: one task for the guide, awaiting the guide's confirmation
    done = outbox.deliver(e, g, {"wecom_group_send": transport}, now=T)
    assert (done.claimed, done.sent, done.failed) == (4, 3, 1)
    assert p.schema_errors == []
    (task,) = p.posts("/cgi-bin/externalcontact/add_msg_template")
    assert task.body["sender"] == "guide-1"
    assert sorted(task.body["external_userid"]) == ["wm-0", "wm-1", "wm-2", "wm-3"]
    with e.connect() as conn:
        refs = conn.execute(
            text("SELECT member_id, status, provider_ref FROM send_recipients WHERE group_id = :g"),
            {"g": g},
        ).all()
    msgids = {r.provider_ref for r in refs if r.status == "sent"}
    assert len(msgids) == 1
    (msgid,) = msgids
    assert statuses(e, g, "W")[ids[3]] == ("failed", None)
    # when the guide has sent to one, one was not a friend, one had had its broadcast
    p.results[msgid].update({"wm-0": 1, "wm-1": 2, "wm-2": 0})
    first = wecom.task_status(e, g, transport, msgid)
    assert first == wecom.TaskStatus(waiting=1, delivered=1, failed=1, recorded=2)
    p.results[msgid]["wm-2"] = 3
    again = wecom.task_status(e, g, transport, msgid)
    assert again == wecom.TaskStatus(waiting=0, delivered=1, failed=2, recorded=1)
    with e.connect() as conn:
        events = conn.execute(
            text("""SELECT member_id, kind, detail FROM message_events WHERE group_id = :g
                    ORDER BY member_id"""),
            {"g": g},
        ).all()
    assert [(int(m), k) for m, k, _ in events] == [
        (ids[0], "delivered"),
        (ids[1], "failed"),
        (ids[2], "failed"),
    ]
    assert "already received" in events[2].detail
    result = send_result(e, g, "W")
    assert (result.sent, result.delivered) == (3, 1)


def test_subscription_messages_retry_refusals_fail_and_sends_go_once(
    store: Store, encoder: IdentifierEncoder, platform: tuple[Platform, str]
) -> None:
    g, e = store.group_id, store.engine
    p, url = platform
    ids = [person(e, encoder, g, f"o-{i}") for i in range(3)]
    at_stage(e, g, ids)
    grant_all(e, g, ids)
    send(e, g, "S")
    plan(e, g, "S", now=T - timedelta(hours=1))
    p.refused.add("o-2")
    p.fail["/cgi-bin/message/subscribe/send"] = [45009]  # the first call: rate limited
    transport = registry.transport(
        "wechat_subscribe", {"appid": p.appid, "secret": p.secret, "base_url": url}
    )
    transports = {"wechat_subscribe": transport}
    first = outbox.deliver(e, g, transports, now=T)
    assert (first.sent, first.retry, first.failed) == (1, 1, 1)
    second = outbox.deliver(e, g, transports, now=T + outbox.backoff(1))
    assert (second.claimed, second.sent) == (1, 1)
    assert p.schema_errors == []
    assert {s for m, (s, _) in statuses(e, g, "S").items() if m != ids[2]} == {"sent"}
    with e.connect() as conn:
        error = conn.execute(
            text("SELECT last_error FROM send_recipients WHERE group_id = :g AND member_id = :m"),
            {"g": g, "m": ids[2]},
        ).scalar_one()
    assert statuses(e, g, "S")[ids[2]] == ("failed", None)
    assert error.startswith("user_refused")


def test_an_sms_send_goes_signed_to_the_decrypted_phone(
    store: Store, encoder: IdentifierEncoder, vault: Vault, platform: tuple[Platform, str]
) -> None:
    g, e = store.group_id, store.engine
    p, url = platform
    ids = [person(e, encoder, g, f"o-{i}", f"1380000{i:04d}") for i in range(3)]
    at_stage(e, g, ids)
    grant_all(e, g, ids)
    send(e, g, "M", channel="sms", content={"template": "1110", "params": {"1": "99"}})
    plan(e, g, "M", now=T - timedelta(hours=1))
    transport = registry.transport(
        "sms",
        {
            "secret_id": p.sms_secret_id,
            "secret_key": p.sms_secret_key,
            "sdk_app_id": "1400006666",
            "sign_name": "思域",
            "endpoint": url,
        },
    )
    done = outbox.deliver(e, g, {"sms": transport}, now=T, vault=vault)
    assert (done.claimed, done.sent) == (3, 3)
    assert p.schema_errors == []
    (request,) = p.posts("/")
    assert sorted(request.body["PhoneNumberSet"]) == [f"+86138000000{i:02d}" for i in range(3)]
    assert request.body["TemplateParamSet"] == ["99"]
