"""The platform transports against a local WeCom / WeChat / SMS server that checks every
request body against the published schema: valid payloads pass it and a hand-broken one
does not, tokens are fetched once and refreshed on expiry, errcodes map to permanent or
retry, the subscription value rules hold at their edges, and the SMS signer reproduces
Tencent Cloud's published worked example."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import pytest
from tests.messaging.platform_server import Platform, serving, validator

from siyu.errors import ValidationError
from siyu.messaging.transports import sms, wechat_subscribe, wecom
from siyu.messaging.transports.base import Message
from siyu.messaging.transports.registry import registry
from siyu.messaging.transports.tokens import MARGIN, TokenCache

SUBSCRIBE = "/cgi-bin/message/subscribe/send"
TEMPLATE = "/cgi-bin/message/template/send"
ADD = "/cgi-bin/externalcontact/add_msg_template"


@pytest.fixture
def platform() -> Iterator[tuple[Platform, str]]:
    found = Platform()
    with serving(found) as url:
        yield found, url


def msg(
    member: int, address: str, params: dict[str, str], *, send_id: int = 1, **kw: Any
) -> Message:
    return Message(
        group_id="G",
        send_id=send_id,
        send_code="S",
        member_id=member,
        channel=kw.pop("channel", "wechat_subscribe"),
        address=address,
        idempotency_key=f"G:{send_id}:{member}",
        content={"template": kw.pop("template", "TPL-1"), "params": params},
        **kw,
    )


def wechat(p: Platform, url: str, code: str, **settings: Any) -> Any:
    return registry.transport(
        code, {"appid": p.appid, "secret": p.secret, "base_url": url, **settings}
    )


# --- mini-program subscription messages ----------------------------------------------


def test_subscription_messages_match_the_schema_and_the_token_is_fetched_once(
    platform: tuple[Platform, str],
) -> None:
    p, url = platform
    transport = wechat(p, url, "wechat_subscribe", page="pages/index")
    params = {"thing1": "春季上新", "amount2": "¥99.50元", "date3": "2030年1月7日", "page": "p/x"}
    outcomes = transport.deliver([msg(1, "o-1", params), msg(2, "o-2", {"thing1": "到店有礼"})])
    assert [o.ok for o in outcomes] == [True, True]
    assert all(o.provider_ref for o in outcomes)
    assert p.schema_errors == []
    assert p.token_fetches == 1
    first, second = (r.body for r in p.posts(SUBSCRIBE))
    assert first == {
        "touser": "o-1",
        "template_id": "TPL-1",
        "page": "p/x",
        "miniprogram_state": "formal",
        "lang": "zh_CN",
        "data": {
            "thing1": {"value": "春季上新"},
            "amount2": {"value": "¥99.50元"},
            "date3": {"value": "2030年1月7日"},
        },
    }
    assert second["page"] == "pages/index"  # the transport's default


def test_the_schema_rejects_a_hand_broken_payload() -> None:
    subscribe = validator("wechat_subscribe_send")
    good = {"touser": "o-1", "template_id": "T", "data": {"thing1": {"value": "x" * 20}}}
    assert list(subscribe.iter_errors(good)) == []
    for broken in (
        {**good, "data": {"thing1": {"value": "x" * 21}}},
        {**good, "data": {"thing1": "not an object"}},
        {**good, "miniprogram_state": "production"},
        {**good, "data": {"colour1": {"value": "red"}}},
        {k: v for k, v in good.items() if k != "touser"},
    ):
        assert list(subscribe.iter_errors(broken)), broken
    sms_schema = validator("tencentcloud_sms_send")
    body = {"PhoneNumberSet": ["13800000000"], "SmsSdkAppId": "1400", "TemplateId": "1"}
    assert list(sms_schema.iter_errors(body))  # not E.164
    wecom_schema = validator("wecom_add_msg_template")
    task = {"chat_type": "single", "external_userid": ["wm-1"], "sender": "g1"}
    assert list(wecom_schema.iter_errors(task))  # neither text nor attachments
    assert list(wecom_schema.iter_errors({**task, "text": {"content": "hi"}})) == []


def test_the_local_server_notices_a_payload_the_schema_refuses(
    platform: tuple[Platform, str],
) -> None:
    # given a transport that skipped its own checks, the server still refuses and records it
    p, url = platform
    transport = wechat(p, url, "wechat_subscribe")
    body = {"touser": "o-1", "template_id": "T", "data": {"thing1": {"value": "x" * 21}}}
    assert transport.api.call(SUBSCRIBE, body)["errcode"] == 47001
    assert len(p.schema_errors) == 1 and "thing1" in p.schema_errors[0]


@pytest.mark.parametrize(
    ("key", "value", "ok"),
    [
        ("thing1", "字" * 20, True),
        ("thing1", "字" * 21, False),
        ("thing1", "😀" * 20, True),  # an emoji is one character
        ("thing1", "😀" * 21, False),
        ("thing1", "a" * 20, True),
        ("thing1", "", False),
        ("number2", "1" * 32, True),
        ("number2", "1" * 33, False),
        ("number2", "12.5", True),
        ("number2", "12a", False),
        ("letter3", "a" * 32, True),
        ("letter3", "abc1", False),
        ("symbol4", "+-*/%", True),
        ("symbol4", "+-*/%!", False),
        ("symbol4", "a+", False),
        ("character_string5", "A1-" + "x" * 29, True),
        ("character_string5", "x" * 33, False),
        ("character_string5", "中文", False),
        ("time6", "15:01", True),
        ("time6", "2019年10月1日 15:01", True),
        ("time6", "3pm", False),
        ("date7", "2019年10月1日", True),
        ("date7", "2019-10-01 15:01", True),
        ("date7", "yesterday", False),
        ("amount8", "¥1999.00元", True),
        ("amount8", "99", True),
        ("amount8", "¥$99", False),
        ("amount8", "12345678901", False),
        ("phone_number9", "+86-138-0000-0000", True),  # 17
        ("phone_number9", "+86-138-0000-00000", False),  # 18
        ("car_number10", "粤A12345", True),
        ("car_number10", "粤A1234567", False),
        ("name11", "欧阳" * 5, True),
        ("name11", "欧阳" * 5 + "娜", False),
        ("name11", "A" * 20, True),
        ("name11", "A" * 21, False),
        ("phrase12", "五个中文字", True),
        ("phrase12", "六个中文字啊", False),
        ("phrase12", "ok", False),
    ],
)
def test_subscription_values_at_their_edges(key: str, value: str, ok: bool) -> None:
    subscribe = validator("wechat_subscribe_send")
    doc = {"touser": "o", "template_id": "T", "data": {key: {"value": value}}}
    assert (list(subscribe.iter_errors(doc)) == []) is ok  # the schema says the same
    if ok:
        wechat_subscribe.check_value(key, value)
        return
    with pytest.raises(ValidationError) as raised:
        wechat_subscribe.check_value(key, value)
    assert raised.value.field == f"data.{key}"


def test_an_unknown_key_type_and_a_bad_value_fail_before_sending(
    platform: tuple[Platform, str],
) -> None:
    p, url = platform
    transport = wechat(p, url, "wechat_subscribe")
    bad = transport.deliver(
        [msg(1, "o-1", {"colour1": "red"}), msg(2, "o-2", {"thing1": "字" * 21})]
    )
    assert [o.permanent for o in bad] == [True, True]
    assert bad[0].error.startswith("data.colour1: unknown key type")
    assert bad[1].error == "data.thing1: thing: at most 20 characters"
    assert p.posts(SUBSCRIBE) == []


@pytest.mark.parametrize(
    ("code", "permanent"),
    [(43101, True), (47003, True), (40003, True), (45009, False), (-1, False)],
)
def test_subscription_errors_are_permanent_or_retried(
    platform: tuple[Platform, str], code: int, permanent: bool
) -> None:
    p, url = platform
    p.fail[SUBSCRIBE] = [code]
    (failed,) = wechat(p, url, "wechat_subscribe").deliver([msg(1, "o-1", {"thing1": "x"})])
    assert (failed.ok, failed.permanent) == (False, permanent)
    assert str(code) in (failed.error or "")


def test_a_user_who_refused_is_a_permanent_failure_with_the_reason(
    platform: tuple[Platform, str],
) -> None:
    p, url = platform
    p.refused.add("o-2")
    ok, refused = wechat(p, url, "wechat_subscribe").deliver(
        [msg(1, "o-1", {"thing1": "x"}), msg(2, "o-2", {"thing1": "x"})]
    )
    assert ok.ok and refused.permanent
    assert refused.error is not None and refused.error.startswith("user_refused")


def test_an_expired_token_is_refreshed_once_and_the_call_retried(
    platform: tuple[Platform, str],
) -> None:
    p, url = platform
    transport = wechat(p, url, "wechat_subscribe")
    assert transport.deliver([msg(1, "o-1", {"thing1": "x"})])[0].ok
    # when the platform expires every token (42001), the next call refreshes and goes
    p.expire_tokens()
    assert transport.deliver([msg(2, "o-2", {"thing1": "x"})])[0].ok
    assert p.token_fetches == 2
    tokens = [r.query["access_token"] for r in p.posts(SUBSCRIBE)]
    assert len(tokens) == 3 and tokens[1] == tokens[0] != tokens[2]
    # and an invalid token (40014) is refreshed the same way, but only once per call
    p.fail[SUBSCRIBE] = [40014, 40014]
    (again,) = transport.deliver([msg(3, "o-3", {"thing1": "x"})])
    assert not again.ok and "40014" in (again.error or "")
    assert p.token_fetches == 3


def test_a_wrong_secret_is_retried_and_never_repeated(platform: tuple[Platform, str]) -> None:
    p, url = platform
    transport = wechat(p, url, "wechat_subscribe", secret="wrong-secret")
    (failed,) = transport.deliver([msg(1, "o-1", {"thing1": "x"})])
    assert not failed.ok and not failed.permanent
    assert "wrong-secret" not in (failed.error or "") and "40001" in (failed.error or "")


# --- official-account template messages ----------------------------------------------


def test_template_messages_dedupe_on_the_idempotency_key(platform: tuple[Platform, str]) -> None:
    p, url = platform
    transport = wechat(
        p, url, "wechat_template", miniprogram_appid="wx-mini", miniprogram_pagepath="p/i"
    )
    m = msg(
        1,
        "o-1",
        {"thing1": "到店有礼", "url": "https://brand.example/x"},
        channel="wechat_template",
    )
    first, again = transport.deliver([m]), transport.deliver([m])
    assert first[0].ok and again[0].ok and first[0].provider_ref == again[0].provider_ref
    assert p.delivered == {"G:1:1": 1}
    assert p.schema_errors == []
    assert p.posts(TEMPLATE)[0].body == {
        "touser": "o-1",
        "template_id": "TPL-1",
        "client_msg_id": "G:1:1",
        "url": "https://brand.example/x",
        "miniprogram": {"appid": "wx-mini", "pagepath": "p/i"},
        "data": {"thing1": {"value": "到店有礼"}},
    }


@pytest.mark.parametrize(
    ("code", "permanent"), [(43004, True), (40037, True), (45047, False), (-1, False)]
)
def test_template_errors_are_permanent_or_retried(
    platform: tuple[Platform, str], code: int, permanent: bool
) -> None:
    p, url = platform
    p.fail[TEMPLATE] = [code]
    (failed,) = wechat(p, url, "wechat_template").deliver(
        [msg(1, "o-1", {"thing1": "x"}, channel="wechat_template")]
    )
    assert (failed.ok, failed.permanent) == (False, permanent)


# --- WeCom group-send tasks ----------------------------------------------------------


def group_send(p: Platform, url: str) -> wecom.WecomGroupSendTransport:
    found = registry.transport(
        "wecom_group_send", {"corpid": p.corpid, "corpsecret": p.corpsecret, "base_url": url}
    )
    assert isinstance(found, wecom.WecomGroupSendTransport)
    return found


def test_one_task_per_guide_and_send_and_the_fail_list_fails_its_customers(
    platform: tuple[Platform, str],
) -> None:
    p, url = platform
    p.not_friends.add("wm-3")
    params = {
        "text": "春季上新，到店有礼",
        "link_title": "新品",
        "link_url": "https://b.example/n",
        "miniprogram_title": "小程序",
        "miniprogram_pic_media_id": "MEDIA",
        "miniprogram_appid": "wx-mini",
        "miniprogram_page": "pages/i",
    }
    messages = [
        msg(1, "wm-1", params, sender="guide-1", channel="wecom_group_send"),
        msg(2, "wm-2", params, sender="guide-2", channel="wecom_group_send"),
        msg(3, "wm-3", params, sender="guide-1", channel="wecom_group_send"),
        msg(4, "wm-4", params, sender=None, channel="wecom_group_send"),
    ]
    outcomes = group_send(p, url).deliver(messages)
    assert [o.ok for o in outcomes] == [True, True, False, False]
    assert outcomes[2].permanent and "fail_list" in (outcomes[2].error or "")
    assert outcomes[3].permanent and (outcomes[3].error or "").startswith("sender")
    assert p.schema_errors == []
    tasks = [r.body for r in p.posts(ADD)]
    assert [(t["sender"], t["external_userid"]) for t in tasks] == [
        ("guide-1", ["wm-1", "wm-3"]),
        ("guide-2", ["wm-2"]),
    ]
    assert tasks[0]["chat_type"] == "single"
    assert tasks[0]["text"] == {"content": "春季上新，到店有礼"}
    assert [a["msgtype"] for a in tasks[0]["attachments"]] == ["link", "miniprogram"]
    assert outcomes[0].provider_ref != outcomes[1].provider_ref  # one msgid per task


def test_a_group_send_with_a_bad_attachment_fails_naming_the_param(
    platform: tuple[Platform, str],
) -> None:
    p, url = platform
    outcomes = group_send(p, url).deliver(
        [
            msg(
                1,
                "wm-1",
                {"text": "hi", "link_title": "no url"},
                sender="g",
                channel="wecom_group_send",
            )
        ]
    )
    assert (
        outcomes[0].permanent and outcomes[0].error == "params.link_url: a link attachment needs it"
    )
    assert p.posts(ADD) == []


@pytest.mark.parametrize(("code", "permanent"), [(41048, True), (45009, False), (-1, False)])
def test_group_send_errors_are_permanent_or_retried(
    platform: tuple[Platform, str], code: int, permanent: bool
) -> None:
    p, url = platform
    p.fail[ADD] = [code]
    outcomes = group_send(p, url).deliver(
        [msg(m, f"wm-{m}", {"text": "hi"}, sender="g", channel="wecom_group_send") for m in (1, 2)]
    )
    assert [(o.ok, o.permanent) for o in outcomes] == [(False, permanent)] * 2


# --- SMS -----------------------------------------------------------------------------

# Tencent Cloud's published worked example for signature v3 (签名方法 v3: CVM
# DescribeInstances, 2019-02-25); the doc's SecretKey is masked and its signature was made
# with the masked text as it stands
EXAMPLE_PAYLOAD = (
    '{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
)
EXAMPLE_KEY = "Gu5t9xGARNpq86cd98joQYCN3*******"
EXAMPLE_ID = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******"


def test_the_signer_reproduces_the_published_worked_example() -> None:
    headers = {"Content-Type": "application/json; charset=utf-8", "Host": "cvm.tencentcloudapi.com"}
    canonical, signed = sms.canonical_request(EXAMPLE_PAYLOAD, headers)
    assert signed == "content-type;host"
    assert canonical == (
        "POST\n/\n\ncontent-type:application/json; charset=utf-8\n"
        "host:cvm.tencentcloudapi.com\n\ncontent-type;host\n"
        "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    )
    assert sms.string_to_sign(canonical, 1551113065, "cvm") == (
        "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
        "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
    )
    assert sms.tc3_authorization(
        EXAMPLE_ID, EXAMPLE_KEY, "cvm", 1551113065, EXAMPLE_PAYLOAD, headers
    ) == (
        f"TC3-HMAC-SHA256 Credential={EXAMPLE_ID}/2019-02-25/cvm/tc3_request, "
        "SignedHeaders=content-type;host, "
        "Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
    )


def test_the_signer_reproduces_the_current_example_with_the_action_header() -> None:
    # the doc's current version signs x-tc-action too, publishing the derived signing key
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Host": "cvm.tencentcloudapi.com",
        "X-TC-Action": "DescribeInstances",
    }
    canonical, signed = sms.canonical_request(EXAMPLE_PAYLOAD, headers)
    assert signed == "content-type;host;x-tc-action"
    assert "\nx-tc-action:describeinstances\n" in canonical
    to_sign = sms.string_to_sign(canonical, 1551113065, "cvm")
    assert to_sign.endswith("7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84")
    published_key = bytes.fromhex(
        "b596b923aad85185e2d1f6659d2a062e0a86731226e021e61bfe06f7ed05f5af"
    )
    assert hmac.new(published_key, to_sign.encode(), hashlib.sha256).hexdigest() == (
        "10b1a37a7301a02ca19a647ad722d5e43b4b3cff309d421d85b46093f6ab6c4f"
    )


def sms_transport(p: Platform, url: str, **settings: Any) -> sms.SmsTransport:
    found = registry.transport(
        "sms",
        {
            "secret_id": p.sms_secret_id,
            "secret_key": p.sms_secret_key,
            "sdk_app_id": "1400006666",
            "sign_name": "思域",
            "endpoint": url,
            **settings,
        },
    )
    assert isinstance(found, sms.SmsTransport)
    return found


def test_sms_batches_of_200_signed_and_per_number_codes(platform: tuple[Platform, str]) -> None:
    p, url = platform
    p.sms_codes["+8613800000007"] = "LimitExceeded.PhoneNumberDailyLimit"
    p.sms_codes["+8613800000008"] = "FailedOperation.PhoneNumberInBlacklist"
    messages = [
        msg(i, f"+86138{i:08d}", {"2": "5月1日", "1": "99"}, channel="sms", template="1110")
        for i in range(1, 451)
    ]
    outcomes = sms_transport(p, url).deliver(messages)
    requests = p.posts("/")
    assert [len(r.body["PhoneNumberSet"]) for r in requests] == [200, 200, 50]
    assert p.schema_errors == []
    assert requests[0].body["TemplateParamSet"] == ["99", "5月1日"]  # in key order
    assert requests[0].body["SessionContext"] == "G:1:1+199"
    assert requests[0].headers["x-tc-action"] == "SendSms"
    assert sum(o.ok for o in outcomes) == 448
    assert (outcomes[6].ok, outcomes[6].permanent) == (False, False)
    assert (outcomes[7].ok, outcomes[7].permanent) == (False, True)
    assert outcomes[0].provider_ref and outcomes[0].provider_ref.startswith("sn-")


def test_a_wrong_signature_is_refused_by_the_server(platform: tuple[Platform, str]) -> None:
    p, url = platform
    (failed,) = sms_transport(p, url, secret_key="not-the-key").deliver(
        [msg(1, "13800000001", {}, channel="sms", template="1")]
    )
    assert failed.error == "SendSms: AuthFailure.SignatureFailure" and not failed.permanent
    assert p.posts("/")[0].body["PhoneNumberSet"] == ["+8613800000001"]  # made E.164


def test_a_token_is_kept_until_five_minutes_before_it_expires() -> None:
    now = [0.0]
    fetched: list[str] = []

    def fetch() -> tuple[str, int]:
        fetched.append(f"t{len(fetched)}")
        return fetched[-1], 7200

    cache = TokenCache(fetch, clock=lambda: now[0])
    assert cache.get() == "t0"
    now[0] = 7200 - MARGIN - 1
    assert cache.get() == "t0"
    now[0] = 7200 - MARGIN
    assert cache.get() == "t1"
    # another thread's renewal is not undone by a late invalidation of the old token
    cache.invalidate("t0")
    assert cache.get() == "t1"
    cache.invalidate("t1")
    assert cache.get() == "t2"
