"""Mini-program subscription messages (小程序订阅消息): POST
/cgi-bin/message/subscribe/send, one request per message.

The send's `content.template` is the template id; its params are the template's keys
(`thing1`, `amount3`, ...) except `page`, `miniprogram_state` and `lang`, which set those
request fields (defaults from the transport settings). Each key's value is checked against
the platform's published rule for its type, taken from the key's name, before anything is
sent: a value the platform would refuse (47003) fails the message at once, naming the key.
Lengths count characters (code points): a CJK character or an emoji is one.

Answers: 0 sent (`msgid` is the provider reference); 43101 the user has not subscribed, or
used up their one-time subscription (permanent: the outbox records it failed with that
reason; siyu has no unsubscribe event kind, and it is not a withdrawal of consent);
47003 parameters wrong, 40003 openid invalid, 40037 template id invalid (permanent);
45009 rate limit, -1 busy, and any other code are tried again later.

The final result of each message accepted comes later as a push, `subscribe_msg_sent_event`
(`receipts`): per message its `MsgID` (the `msgid` answered at send time), `ErrorCode` (0
delivered; any other a failure of the platform's asynchronous push) and `ErrorStatus`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from siyu.errors import ValidationError
from siyu.messaging.transports.base import Message, Outcome, Receipt
from siyu.messaging.transports.tokens import PlatformUnreachable, WxApi, outcome, wechat_api

PATH = "/cgi-bin/message/subscribe/send"
STATES = ("developer", "trial", "formal")
LANGS = ("zh_CN", "en_US", "zh_HK", "zh_TW")
REQUEST_FIELDS = ("page", "miniprogram_state", "lang")
PERMANENT = {
    43101: "user_refused: not subscribed to this template (43101)",
    47003: "template params wrong (47003)",
    40003: "openid invalid (40003)",
    40037: "template_id invalid (40037)",
}

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_DATE = r"([0-9]{4}年[0-9]{1,2}月[0-9]{1,2}日|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2})"
_CLOCK = r"[0-9]{1,2}:[0-9]{2}(:[0-9]{2})?"
# key type -> (longest value in characters, the value's form, the rule as said in errors);
# from the platform's published table of subscription-message parameter types
RULES: dict[str, tuple[int, str, str]] = {
    "thing": (20, r".+", "at most 20 characters"),
    "number": (32, r"[0-9]+(\.[0-9]+)?", "at most 32 digits, a decimal point allowed"),
    "letter": (32, r"[A-Za-z]+", "at most 32 letters, letters only"),
    "symbol": (5, r"[^0-9A-Za-z" + _CJK + r"\s]+", "at most 5 symbols, symbols only"),
    "character_string": (32, r"[!-~]+", "at most 32 digits, letters or symbols"),
    "time": (64, rf"({_DATE} ?)?{_CLOCK}", "a 24-hour time (15:01), with a date or without"),
    "date": (64, rf"{_DATE}( {_CLOCK})?", "a date (2019年10月1日), a time allowed"),
    "amount": (
        32,
        r"[¥￥$€£]?[0-9]{1,10}(\.[0-9]{1,2})?元?",
        "at most 1 currency symbol, a number of at most 10 digits, optionally 元",
    ),
    "phone_number": (17, r"[0-9+\-() ]+", "at most 17 digits and symbols (+, -, brackets)"),
    "car_number": (8, rf"[{_CJK}]?[A-Za-z0-9]+[{_CJK}]?", "a plate of at most 8 characters"),
    "name": (
        20,
        rf"[{_CJK}·]{{1,10}}|[A-Za-z .\-']{{1,20}}",
        "at most 10 Chinese characters, or 20 letters",
    ),
    "phrase": (5, rf"[{_CJK}]+", "at most 5 Chinese characters, Chinese only"),
}
_KEY = re.compile(r"(" + "|".join(sorted(RULES, key=len, reverse=True)) + r")([0-9]+)")


def check_value(key: str, value: str) -> None:
    """Refuse a value the platform would refuse, naming the key and the rule."""
    found = _KEY.fullmatch(key)
    if found is None:
        known = ", ".join(f"{t}<n>" for t in RULES)
        raise ValidationError(f"data.{key}", f"unknown key type; one of {known}", key)
    longest, form, said = RULES[found.group(1)]
    if not value or len(value) > longest or not re.fullmatch(form, value, re.DOTALL):
        raise ValidationError(f"data.{key}", f"{found.group(1)}: {said}", value)


def payload(message: Message, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The request body for one message, its values checked; raises ValidationError."""
    params = dict(message.content.get("params", {}))
    fields = {f: params.pop(f, defaults.get(f)) for f in REQUEST_FIELDS}
    data = {}
    for key, value in params.items():
        check_value(key, str(value))
        data[key] = {"value": str(value)}
    body: dict[str, Any] = {
        "touser": message.address,
        "template_id": str(message.content["template"]),
        "data": data,
    }
    if fields["page"]:
        body["page"] = str(fields["page"])
    state = fields["miniprogram_state"] or "formal"
    if state not in STATES:
        raise ValidationError("miniprogram_state", f"one of {', '.join(STATES)}", state)
    body["miniprogram_state"] = state
    lang = fields["lang"] or "zh_CN"
    if lang not in LANGS:
        raise ValidationError("lang", f"one of {', '.join(LANGS)}", lang)
    body["lang"] = lang
    return body


class WechatSubscribeTransport:
    code = "wechat_subscribe"

    def __init__(self, api: WxApi, defaults: Mapping[str, Any]) -> None:
        self.api = api
        self.defaults = defaults

    def deliver(self, messages: Sequence[Message]) -> list[Outcome]:
        return [self._one(m) for m in messages]

    def _one(self, message: Message) -> Outcome:
        try:
            body = payload(message, self.defaults)
        except ValidationError as exc:
            return Outcome(False, error=f"{exc.field}: {exc.rule}"[:300], permanent=True)
        try:
            answer = self.api.call(PATH, body)
        except PlatformUnreachable as exc:
            return Outcome(False, error=str(exc))
        return outcome(answer, PERMANENT)


SENT_EVENT = "subscribe_msg_sent_event"


def receipts(push: Mapping[str, Any]) -> list[Receipt]:
    """The delivery results in a pushed `subscribe_msg_sent_event` (none in another push).
    XML nests the items as SubscribeMsgSentEvent/List (one element per message), the JSON
    format puts `List` at the top; either may hold one item or several."""
    if str(push.get("Event", "")).lower() != SENT_EVENT:
        return []
    nested = push.get("SubscribeMsgSentEvent")
    items = (nested if isinstance(nested, Mapping) else push).get("List") or []
    at = created_at(push)
    found = []
    for item in items if isinstance(items, list) else [items]:
        msgid = str(item.get("MsgID") or item.get("MsgId") or "")
        if not msgid:
            continue
        code = str(item.get("ErrorCode", "")).strip()
        ok = code == "0"
        detail = None if ok else f"{item.get('ErrorStatus', '')} ({code})"[:300]
        kind = "delivered" if ok else "failed"
        found.append(Receipt(msgid, kind, f"wechat_subscribe:{msgid}", at, detail))
    return found


def created_at(push: Mapping[str, Any]) -> datetime | None:
    """A push's `CreateTime` (Unix seconds), or None when absent or not a number."""
    raw = str(push.get("CreateTime", ""))
    return datetime.fromtimestamp(int(raw), UTC) if raw.isdigit() else None


def build(settings: Mapping[str, Any]) -> WechatSubscribeTransport:
    """Settings: appid, secret (the mini-program's), base_url, timeout; and the defaults
    page, miniprogram_state (formal), lang (zh_CN)."""
    defaults = {f: settings.get(f) for f in REQUEST_FIELDS}
    return WechatSubscribeTransport(wechat_api(settings), defaults)
