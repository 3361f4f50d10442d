"""The platforms' delivery callbacks on the real app, on SQLite and PostgreSQL: messages
delivered by the outbox through the local WeChat / SMS server, then the platforms' own
signed, encrypted pushes and status reports recorded once per report against them; a
report that comes before its message is settled kept and recorded at the settle; the URL
checks answered; forged, replayed and misdirected requests refused before anything is
recorded; no openid, mobile number or secret in the logs."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from tests.conftest import Store
from tests.messaging.msg_helpers import T, at_stage, grant_all, person, send
from tests.messaging.platform_server import Platform, serving

from siyu.app import create_app
from siyu.config import Settings
from siyu.errors import ConfigError
from siyu.identity.ingest import IdentifierEncoder
from siyu.messaging import outbox
from siyu.messaging.attribution import send_result
from siyu.messaging.plan import plan
from siyu.messaging.transports.base import Message, Outcome
from siyu.messaging.transports.registry import registry
from siyu.messaging.transports.wxcrypt import WxCrypt, signature
from siyu.privacy import Vault

TOKEN, AES_KEY = "cb-token-not-for-logs", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
WECOM_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
SMS_SECRET = "sms-callback-secret-0123456789abcdefXYZ"
PHONES = [f"1390000{i:04d}" for i in range(3)]


@dataclass
class Wired:
    client: TestClient
    store: Store
    platform: Platform
    url: str  # the platform server
    crypt: WxCrypt  # what WeChat encrypts with (the mini-program's / account's appid)
    wecom: WxCrypt
    members: list[int]

    def push(self, channel: str, plain: str, at: int | None = None, **query: str) -> Any:
        now = int(time.time()) if at is None else at
        sealed = self.crypt.encrypt(plain.encode())
        signed = {
            "timestamp": str(now),
            "nonce": "1234",
            "msg_signature": self.crypt.signature(str(now), "1234", sealed),
            "encrypt_type": "aes",
            **query,
        }
        body = f"<xml><ToUserName>gh_1</ToUserName><Encrypt>{sealed}</Encrypt></xml>"
        return self.client.post(f"/callbacks/{channel}", params=signed, content=body)

    def events(self) -> list[tuple[int, str, str, str | None]]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                text("""SELECT member_id, kind, external_id, detail FROM message_events
                        WHERE group_id = :g ORDER BY external_id"""),
                {"g": self.store.group_id},
            ).all()
        return [(int(m), k, x, d) for m, k, x, d in rows]

    def refs(self, code: str) -> dict[int, str]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(
                text("""SELECT r.member_id, r.provider_ref FROM send_recipients r
                        JOIN sends s ON s.send_id = r.send_id
                        WHERE r.group_id = :g AND s.code = :c AND r.status = 'sent'"""),
                {"g": self.store.group_id, "c": code},
            ).all()
        return {int(m): str(r) for m, r in rows}

    def deliver(self, code: str, channel: str, vault: Vault | None = None, **settings: Any) -> None:
        e, g = self.store.engine, self.store.group_id
        send(e, g, code, channel=channel, **settings)
        plan(e, g, code, now=T - timedelta(hours=1))
        p = self.platform
        conf = {
            "wechat_subscribe": {"appid": p.appid, "secret": p.secret, "base_url": self.url},
            "wechat_template": {"appid": p.appid, "secret": p.secret, "base_url": self.url},
            "sms": {
                "secret_id": p.sms_secret_id,
                "secret_key": p.sms_secret_key,
                "sdk_app_id": "1400006666",
                "sign_name": "思域",
                "endpoint": self.url,
            },
        }[channel]
        transport = registry.transport(channel, conf)
        done = outbox.deliver(e, g, {channel: transport}, now=T, vault=vault)
        assert done.sent == len(self.members), done


def _messaging_file(tmp_path: Path, p: Platform) -> Path:
    path = tmp_path / "messaging.toml"
    path.write_text(
        f"""
[wechat_subscribe]
appid = "{p.appid}"
secret_env = "WX_SECRET"
callback_token_env = "WX_CB_TOKEN"
encoding_aes_key_env = "WX_CB_KEY"

[wechat_template]
appid = "{p.appid}"
secret_env = "WX_SECRET"
callback_token_env = "WX_CB_TOKEN"
encoding_aes_key_env = "WX_CB_KEY"

[wecom_group_send]
corpid = "{p.corpid}"
corpsecret_env = "WECOM_SECRET"
callback_token_env = "WX_CB_TOKEN"
encoding_aes_key_env = "WECOM_CB_KEY"

[sms]
secret_id_env = "SMS_ID"
secret_key_env = "SMS_KEY"
sdk_app_id = "1400006666"
sign_name = "思域"
callback_secret_env = "SMS_CB_SECRET"
"""
    )
    return path


@pytest.fixture
def wired(
    store: Store,
    encoder: IdentifierEncoder,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Wired]:
    # the API process holds only the callbacks' secrets, not the sending ones
    monkeypatch.setenv("WX_CB_TOKEN", TOKEN)
    monkeypatch.setenv("WX_CB_KEY", AES_KEY)
    monkeypatch.setenv("WECOM_CB_KEY", WECOM_KEY)
    monkeypatch.setenv("SMS_CB_SECRET", SMS_SECRET)
    e, g = store.engine, store.group_id
    ids = [person(e, encoder, g, f"o-cb-{i}", PHONES[i]) for i in range(3)]
    at_stage(e, g, ids)
    grant_all(e, g, ids)
    p = Platform()
    with serving(p) as url:
        settings = Settings(
            database_url=store.engine.url.render_as_string(hide_password=False),
            secret_key=bytes(range(32)),
            group_id=g,
            warehouse=str(tmp_path / "w.duckdb"),
            messaging_file=str(_messaging_file(tmp_path, p)),
        )
        app = create_app(settings, rate_per_second=0)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Wired(
                client,
                store,
                p,
                url,
                WxCrypt(TOKEN, AES_KEY, p.appid),
                WxCrypt(TOKEN, WECOM_KEY, p.corpid),
                ids,
            )
        app.state.services.engine.dispose()


def _sent_event(*items: tuple[str, int, str]) -> str:
    listed = "".join(
        f"<List><TemplateId>TPL-1</TemplateId><MsgID>{ref}</MsgID><ErrorCode>{code}"
        f"</ErrorCode><ErrorStatus>{status}</ErrorStatus></List>"
        for ref, code, status in items
    )
    return (
        f"<xml><ToUserName>gh_1</ToUserName><FromUserName>o-cb-0</FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType>event</MsgType>"
        f"<Event>subscribe_msg_sent_event</Event>"
        f"<SubscribeMsgSentEvent>{listed}</SubscribeMsgSentEvent></xml>"
    )


def test_subscription_results_pushed_by_wechat_are_recorded_once(wired: Wired) -> None:
    # given a subscription send delivered through the platform: each message has its msgid
    wired.deliver("SUB", "wechat_subscribe")
    refs = wired.refs("SUB")
    m0, m1, m2 = wired.members
    # when the mini-program pushes the results of two of them (safe mode)
    answer = wired.push(
        "wechat_subscribe",
        _sent_event((refs[m0], 0, "success"), (refs[m1], 20004, "system failed")),
    )
    # then it is answered as WeChat expects, and each result is one event of its message
    assert (answer.status_code, answer.text) == (200, "success")
    assert wired.events() == sorted(
        [
            (m0, "delivered", f"wechat_subscribe:{refs[m0]}", None),
            (m1, "failed", f"wechat_subscribe:{refs[m1]}", "system failed (20004)"),
        ],
        key=lambda e: e[2],
    )
    # and the same push again (the platform retries when unsure) records nothing more
    again = wired.push("wechat_subscribe", _sent_event((refs[m0], 0, "success")))
    assert again.text == "success" and len(wired.events()) == 2
    assert send_result(wired.store.engine, wired.store.group_id, "SUB").delivered == 1
    del m2


def test_template_job_finish_is_recorded_with_its_status(wired: Wired) -> None:
    wired.deliver(
        "TPL",
        "wechat_template",
        content={"template": "TPL-9", "params": {"first": "您好"}},
    )
    refs = wired.refs("TPL")
    m0, m1, _ = wired.members
    for member, status in ((m0, "success"), (m1, "failed:user block")):
        answer = wired.push(
            "wechat_template",
            f"<xml><ToUserName>gh_1</ToUserName><FromUserName>o-cb</FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType>event</MsgType>"
            f"<Event>TEMPLATESENDJOBFINISH</Event><MsgID>{refs[member]}</MsgID>"
            f"<Status>{status}</Status></xml>",
        )
        assert answer.text == "success"
    assert [(m, k, d) for m, k, _, d in wired.events()] == sorted(
        [(m0, "delivered", None), (m1, "failed", "failed:user block")],
        key=lambda e: f"wechat_template:{refs[e[0]]}",
    )


def test_a_result_pushed_before_its_message_is_settled_is_recorded_at_the_settle(
    wired: Wired,
) -> None:
    e, g = wired.store.engine, wired.store.group_id
    m0 = wired.members[0]
    # given a result for msgid 9001, which no message has yet (its batch is unsettled)
    pushed = wired.push("wechat_subscribe", _sent_event(("9001", 0, "success")))
    assert pushed.text == "success"
    assert wired.events() == [] and wired.store.count("parked_receipts") == 1

    class Answering:
        code = "wechat_subscribe"

        def deliver(self, messages: list[Message]) -> list[Outcome]:
            return [
                Outcome(True, provider_ref="9001" if m.member_id == m0 else f"x{m.member_id}")
                for m in messages
            ]

    # when the worker settles the batch that sent it
    send(e, g, "EARLY")
    plan(e, g, "EARLY", now=T - timedelta(hours=1))
    outbox.deliver(e, g, {"wechat_subscribe": Answering()}, now=T)
    # then the parked result is the message's event, and no longer parked
    assert wired.events() == [(m0, "delivered", "wechat_subscribe:9001", None)]
    assert wired.store.count("parked_receipts") == 0


def test_sms_status_reports_are_recorded_by_sid_and_answered_as_tencent_expects(
    wired: Wired, vault: Vault, caplog: pytest.LogCaptureFixture
) -> None:
    wired.deliver("SMS", "sms", vault, content={"template": "1110", "params": {"1": "99"}})
    refs = wired.refs("SMS")
    m0, m1, m2 = wired.members
    reports = [
        {
            "user_receive_time": "2030-01-07 10:00:05",
            "nationcode": "86",
            "mobile": PHONES[0],
            "report_status": "SUCCESS",
            "errmsg": "DELIVRD",
            "description": "用户短信送达成功",
            "sid": refs[m0],
        },
        {
            "user_receive_time": "2030-01-07 10:00:09",
            "nationcode": "86",
            "mobile": PHONES[1],
            "report_status": "FAIL",
            "errmsg": "MK:0001",
            "description": "空号",
            "sid": refs[m1],
        },
        {"mobile": PHONES[2], "report_status": "MAYBE", "sid": refs[m2]},
    ]
    caplog.set_level(logging.DEBUG)
    answer = wired.client.post(f"/callbacks/sms/{SMS_SECRET}", json=reports)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "result": 0,
        "errmsg": "OK",
        "recorded": 2,
        "duplicate": 0,
        "parked": 0,
        "unreadable": 1,
    }
    assert [(m, k, d) for m, k, _, d in wired.events()] == sorted(
        [(m0, "delivered", None), (m1, "failed", "MK:0001: 空号")],
        key=lambda e: f"sms:{refs[e[0]]}",
    )
    with wired.store.engine.connect() as conn:
        at = conn.execute(
            text("SELECT at FROM message_events WHERE group_id = :g AND member_id = :m"),
            {"g": wired.store.group_id, "m": m0},
        ).scalar_one()
    assert str(at).startswith("2030-01-07 02:00:05")  # Beijing time, stored in UTC
    # the same reports again: duplicates
    again = wired.client.post(f"/callbacks/sms/{SMS_SECRET}", json=reports[:2])
    assert (again.json()["recorded"], again.json()["duplicate"]) == (0, 2)
    # and neither a mobile number nor the URL's secret reached a log
    # (the test client's own log, httpx, is not the server's)
    server = [r for r in caplog.records if not r.name.startswith("httpx")]
    logged = "".join(f"{r.getMessage()} {r.__dict__}" for r in server)
    assert any(r.name == "siyu.access" for r in server)  # the requests were logged
    for secret in (*PHONES, SMS_SECRET, TOKEN):
        assert secret not in logged


def test_the_url_checks_answer_what_each_platform_expects(wired: Wired) -> None:
    now = str(int(time.time()))
    # WeChat: the plain signature over (token, timestamp, nonce); echostr back as it came
    query = {"timestamp": now, "nonce": "77", "echostr": "e-123"}
    query["signature"] = signature(TOKEN, now, "77")
    answer = wired.client.get("/callbacks/wechat_subscribe", params=query)
    assert (answer.status_code, answer.text) == (200, "e-123")
    # WeCom: the encrypted echostr, signed with msg_signature; its plaintext back
    sealed = wired.wecom.encrypt(b"echo-4242")
    signed = {
        "msg_signature": wired.wecom.signature(now, "88", sealed),
        "timestamp": now,
        "nonce": "88",
        "echostr": sealed,
    }
    answer = wired.client.get("/callbacks/wecom_group_send", params=signed)
    assert (answer.status_code, answer.text) == (200, "echo-4242")
    # and a WeCom push is acknowledged (it carries no delivery result siyu reads)
    body = wired.wecom.encrypt(b"<xml><Event>change_external_contact</Event></xml>")
    push = {"msg_signature": wired.wecom.signature(now, "9", body), "timestamp": now, "nonce": "9"}
    answer = wired.client.post(
        "/callbacks/wecom_group_send", params=push, content=f"<xml><Encrypt>{body}</Encrypt></xml>"
    )
    assert (answer.status_code, answer.text) == (200, "success")


def _refused(answer: Any, reason: str) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.json()["code"] == "callback_refused"
    assert reason in answer.json()["detail"]


def test_forged_replayed_and_misdirected_pushes_are_refused_and_record_nothing(
    wired: Wired,
) -> None:
    wired.deliver("SUB", "wechat_subscribe")
    ref = wired.refs("SUB")[wired.members[0]]
    event = _sent_event((ref, 0, "success"))
    # a tampered signature
    _refused(wired.push("wechat_subscribe", event, msg_signature="0" * 40), "msg_signature")
    # a push captured and replayed six minutes later
    _refused(wired.push("wechat_subscribe", event, at=int(time.time()) - 360), "timestamp")
    # a push for another appid, signed with the same token and key
    wired.crypt = WxCrypt(TOKEN, AES_KEY, "wx-another-account")
    _refused(wired.push("wechat_subscribe", event), "receiveid")
    # a URL check with a wrong signature
    check = {"timestamp": str(int(time.time())), "nonce": "1", "echostr": "e", "signature": "x"}
    _refused(wired.client.get("/callbacks/wechat_subscribe", params=check), "signature")
    # an SMS report with a wrong secret, or none at all
    report = [{"sid": ref, "report_status": "SUCCESS", "mobile": PHONES[0]}]
    _refused(wired.client.post("/callbacks/sms/not-the-secret", json=report), "secret")
    assert wired.client.post("/callbacks/sms", json=report).status_code == 404
    assert wired.events() == [] and wired.store.count("parked_receipts") == 0
    # a channel with no callback configured, or of another kind, is not found
    assert wired.client.post(f"/callbacks/wechat_subscribe/{SMS_SECRET}", json=[]).status_code == (
        404
    )
    assert wired.client.get("/callbacks/sms", params=check).status_code == 404
    # and an API key opens no callback: they are authenticated by the platform's proof only
    assert (
        wired.client.post(
            "/callbacks/wechat_subscribe",
            content="<xml><Encrypt>x</Encrypt></xml>",
            headers={"Authorization": "Bearer sy_anything"},
        ).status_code
        == 401
    )


def test_a_too_short_sms_secret_or_a_missing_key_stops_the_start(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.toml"
    path.write_text('[sms]\ncallback_secret_env = "SHORT"\n')
    monkeypatch.setenv("SHORT", "guessable")
    settings = Settings(
        database_url=store.engine.url.render_as_string(hide_password=False),
        secret_key=bytes(range(32)),
        group_id=store.group_id,
        messaging_file=str(path),
    )
    with pytest.raises(ConfigError, match="callback_secret_env: the secret has 9 characters"):
        create_app(settings, rate_per_second=0)
    path.write_text('[wechat_subscribe]\nappid = "wx1"\ncallback_token_env = "SHORT"\n')
    with pytest.raises(ConfigError, match="needs encoding_aes_key"):
        create_app(settings, rate_per_second=0)
    path.write_text('[sms]\ncallback_secret = "in-the-clear"\n')
    with pytest.raises(ConfigError, match="give callback_secret_env"):
        create_app(settings, rate_per_second=0)


def test_the_reports_body_is_bounded_and_must_be_an_array(wired: Wired) -> None:
    answer = wired.client.post(f"/callbacks/sms/{SMS_SECRET}", json={"sid": "1"})
    assert answer.status_code == 400 and answer.json()["result"] != 0
    big = json.dumps([{"sid": "x" * 100}] * 20_000)
    assert wired.client.post(f"/callbacks/sms/{SMS_SECRET}", content=big).status_code == 413
