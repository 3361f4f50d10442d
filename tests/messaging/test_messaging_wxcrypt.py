"""The WeCom / WeChat push crypto against the platforms' published worked examples (the
WeCom callback document's example and the official-account WXBizMsgCrypt sample), round
trips through our own encryptor, and every way a forged push is refused: a tampered
signature or ciphertext, another account's receiveid, a replayed old timestamp, XML with
entities."""

from __future__ import annotations

import json
import time

import pytest

from siyu.errors import ConfigError
from siyu.messaging.transports import wechat_subscribe, wechat_template
from siyu.messaging.transports.wxcrypt import MAX_SKEW, Refused, WxCrypt, signature
from siyu.messaging.transports.wxpush import echo, open_push, parse

# WeCom's callback document (加解密方案说明): corpid, token, EncodingAESKey, and a push
WECOM = WxCrypt("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7")
WECOM_PUSH = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3Q"
    "czcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJ"
    "s8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4"
    "zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMN"
    "S0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDA"
    "Ve0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)
WECOM_SIGNATURE, WECOM_TIMESTAMP, WECOM_NONCE = (
    "477715d11cdb4164915debcba66cb864d751f3e6",
    "1409659813",
    "1372623149",
)
# and its URL check (VerifyURL): the encrypted echostr and what it decrypts to
WECOM_ECHO = (
    "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
)
# the official-account sample (WXBizMsgCrypt for 公众号): appid, token, EncodingAESKey
MP = WxCrypt("spamtest", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx2c2769f8efd9abc2")
MP_PUSH = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4"
    "x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon"
    "8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZ"
    "ciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0C"
    "R8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
)


def test_the_wecom_worked_example_verifies_and_decrypts() -> None:
    # the published signature over the published push
    assert WECOM.signature(WECOM_TIMESTAMP, WECOM_NONCE, WECOM_PUSH) == WECOM_SIGNATURE
    # opened at the time it was made, it is the published message
    plain = WECOM.open(
        WECOM_SIGNATURE, WECOM_TIMESTAMP, WECOM_NONCE, WECOM_PUSH, int(WECOM_TIMESTAMP) + 1
    )
    message = parse(plain)
    assert message["FromUserName"] == "mycreate"
    assert (message["Content"], message["MsgId"], message["AgentID"]) == (
        "hello",
        "4561255354251345929",
        "218",
    )


def test_the_wecom_url_check_answers_the_decrypted_echostr() -> None:
    query = {
        "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
        "timestamp": "1409659589",
        "nonce": "263014780",
        "echostr": WECOM_ECHO,
    }
    assert echo(WECOM, query, 1409659589) == "1616140317555161061"


def test_the_official_account_sample_verifies_and_decrypts() -> None:
    assert MP.signature("1409735669", "1320562132", MP_PUSH) == (
        "5d197aaffba7e9b25a30732f161a50dee96bd5fa"
    )
    message = parse(MP.decrypt(MP_PUSH))
    assert (message["ToUserName"], message["Content"]) == ("gh_10f6c3c3ac5a", "abcdteT")


def test_the_wechat_url_check_answers_echostr_as_it_came() -> None:
    now = int(time.time())
    query = {"timestamp": str(now), "nonce": "42", "echostr": "abc123"}
    query["signature"] = signature("spamtest", query["timestamp"], "42")
    assert echo(MP, query, now) == "abc123"
    with pytest.raises(Refused, match="signature"):
        echo(MP, {**query, "signature": "0" * 40}, now)


@pytest.mark.parametrize("message", ["<xml><A>1</A></xml>", "中文" * 500, "x"])
def test_our_encryption_round_trips_through_the_decryption(message: str) -> None:
    sealed = MP.encrypt(message.encode())
    assert MP.decrypt(sealed) == message.encode()
    # a fixed random prefix gives the same ciphertext: the format is fully determined
    assert MP.encrypt(b"x", b"0" * 16) == MP.encrypt(b"x", b"0" * 16)


def _push(crypt: WxCrypt, plain: str, at: int) -> tuple[dict[str, str], bytes]:
    sealed = crypt.encrypt(plain.encode())
    query = {"timestamp": str(at), "nonce": "n1", "msg_signature": ""}
    query["msg_signature"] = crypt.signature(query["timestamp"], "n1", sealed)
    return query, f"<xml><ToUserName>gh</ToUserName><Encrypt>{sealed}</Encrypt></xml>".encode()


SENT = """<xml><ToUserName>gh_1</ToUserName><FromUserName>o-1</FromUserName>
<CreateTime>{at}</CreateTime><MsgType>event</MsgType><Event>subscribe_msg_sent_event</Event>
<SubscribeMsgSentEvent><List><TemplateId>T</TemplateId><MsgID>111</MsgID>
<ErrorCode>0</ErrorCode><ErrorStatus>success</ErrorStatus></List>
<List><TemplateId>T</TemplateId><MsgID>222</MsgID><ErrorCode>20004</ErrorCode>
<ErrorStatus>system failed</ErrorStatus></List></SubscribeMsgSentEvent></xml>"""


def test_a_signed_push_opens_and_its_results_are_read() -> None:
    now = int(time.time())
    query, body = _push(MP, SENT.format(at=now), now)
    found = wechat_subscribe.receipts(open_push(MP, query, body, now))
    assert [(r.provider_ref, r.kind, r.event_id) for r in found] == [
        ("111", "delivered", "wechat_subscribe:111"),
        ("222", "failed", "wechat_subscribe:222"),
    ]
    assert found[1].detail == "system failed (20004)"
    assert found[0].at is not None and int(found[0].at.timestamp()) == now


def test_a_json_push_reads_the_same() -> None:
    now = int(time.time())
    plain = json.dumps(
        {
            "ToUserName": "gh_1",
            "FromUserName": "o-1",
            "CreateTime": str(now),
            "MsgType": "event",
            "Event": "subscribe_msg_sent_event",
            "List": {"TemplateId": "T", "MsgID": "333", "ErrorCode": "0", "ErrorStatus": "ok"},
        }
    )
    sealed = MP.encrypt(plain.encode())
    query = {
        "timestamp": str(now),
        "nonce": "n",
        "msg_signature": MP.signature(str(now), "n", sealed),
    }
    body = json.dumps({"ToUserName": "gh_1", "Encrypt": sealed}).encode()
    found = wechat_subscribe.receipts(open_push(MP, query, body, now))
    assert [(r.provider_ref, r.kind) for r in found] == [("333", "delivered")]


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        ("success", "delivered"),
        ("failed:user block", "failed"),
        ("failed: system failed", "failed"),
    ],
)
def test_template_job_finish_maps_its_status(status: str, kind: str) -> None:
    push = parse(
        f"<xml><Event>TEMPLATESENDJOBFINISH</Event><MsgID>200163836</MsgID>"
        f"<Status>{status}</Status><CreateTime>1395658920</CreateTime></xml>".encode()
    )
    (receipt,) = wechat_template.receipts(push)
    assert (receipt.provider_ref, receipt.kind) == ("200163836", kind)
    assert receipt.detail == (None if kind == "delivered" else status)
    assert wechat_subscribe.receipts(push) == []  # another channel's event: nothing


def test_a_tampered_signature_or_ciphertext_is_refused() -> None:
    now = int(time.time())
    query, body = _push(MP, SENT.format(at=now), now)
    with pytest.raises(Refused, match="msg_signature"):
        open_push(MP, {**query, "msg_signature": "f" * 40}, body, now)
    flipped = body.replace(b"<Encrypt>", b"<Encrypt>A", 1)
    with pytest.raises(Refused, match="msg_signature"):
        open_push(MP, query, flipped, now)
    # the ciphertext signed but not MP's key: it does not open
    other = WxCrypt("spamtest", "B" * 43, "wx2c2769f8efd9abc2")
    q2, b2 = _push(other, "<xml/>", now)
    with pytest.raises(Refused, match=r"padding|receiveid|length|too short"):
        open_push(MP, q2, b2, now)


def test_a_push_for_another_account_is_refused() -> None:
    now = int(time.time())
    # the same token and key, another appid (a leaked token used for another account)
    other = WxCrypt("spamtest", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx-another")
    query, body = _push(other, SENT.format(at=now), now)
    with pytest.raises(Refused, match="receiveid"):
        open_push(MP, query, body, now)


@pytest.mark.parametrize("age", [MAX_SKEW + 1, -(MAX_SKEW + 1), 86_400])
def test_a_replayed_old_or_future_push_is_refused(age: int) -> None:
    now = int(time.time())
    query, body = _push(MP, SENT.format(at=now - age), now - age)
    with pytest.raises(Refused, match="timestamp"):
        open_push(MP, query, body, now)
    # within the window it opens
    query, body = _push(MP, SENT.format(at=now - MAX_SKEW), now - MAX_SKEW)
    assert open_push(MP, query, body, now)["Event"] == "subscribe_msg_sent_event"


def test_the_published_example_is_refused_today_as_a_replay() -> None:
    with pytest.raises(Refused, match="timestamp"):
        WECOM.open(WECOM_SIGNATURE, WECOM_TIMESTAMP, WECOM_NONCE, WECOM_PUSH, time.time())


def test_xml_with_entities_and_plain_mode_pushes_are_refused() -> None:
    now = int(time.time())
    bomb = b'<!DOCTYPE x [<!ENTITY a "aaaa">]><xml><Encrypt>&a;</Encrypt></xml>'
    with pytest.raises(Refused, match="neither XML nor JSON"):
        open_push(MP, {}, bomb, now)
    plain = b"<xml><Event>TEMPLATESENDJOBFINISH</Event><MsgID>1</MsgID></xml>"
    with pytest.raises(Refused, match="safe mode"):
        open_push(MP, {}, plain, now)


@pytest.mark.parametrize("key", ["short", "!" * 43])
def test_a_bad_encoding_aes_key_is_a_config_error(key: str) -> None:
    with pytest.raises(ConfigError, match="encoding_aes_key"):
        WxCrypt("t", key, "wx")
