"""Official-account template messages (公众号模板消息): POST /cgi-bin/message/template/send,
one request per message.

`content.template` is the template id; its params are the template's keys (`thing1`,
`time2`, or the old `first` / `keyword1` / `remark`), except `url`,
`miniprogram_appid` and `miniprogram_pagepath`, which set the jump target (defaults from
the transport settings). `client_msg_id` is the message's idempotency key: the platform
drops a repeat of it, so a message delivered again after a lost answer shows once.

Answers: 0 sent (`msgid`); 43004 the user does not follow the account, 40037 template id
invalid, 40003 openid invalid, 47003 parameters wrong (permanent); 45047 the per-user
limit on messages without a reply, 45009 rate limit, -1 busy, and any other code are
tried again later.

The platform pushes each message's final result as `TEMPLATESENDJOBFINISH` (`receipts`):
its `MsgID` (the `msgid` answered at send time) and `Status`: `success` delivered;
`failed:user block` (the user blocks the account's messages) and `failed: system failed`
failed, with that status as the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from siyu.messaging.transports.base import Message, Outcome, Receipt
from siyu.messaging.transports.tokens import PlatformUnreachable, WxApi, outcome, wechat_api
from siyu.messaging.transports.wechat_subscribe import created_at

PATH = "/cgi-bin/message/template/send"
REQUEST_FIELDS = ("url", "miniprogram_appid", "miniprogram_pagepath")
PERMANENT = {
    43004: "not following the official account (43004)",
    40037: "template_id invalid (40037)",
    40003: "openid invalid (40003)",
    47003: "template params wrong (47003)",
}


def payload(message: Message, defaults: Mapping[str, Any]) -> dict[str, Any]:
    params = dict(message.content.get("params", {}))
    fields = {f: params.pop(f, defaults.get(f)) for f in REQUEST_FIELDS}
    body: dict[str, Any] = {
        "touser": message.address,
        "template_id": str(message.content["template"]),
        "client_msg_id": message.idempotency_key,
        "data": {key: {"value": str(value)} for key, value in params.items()},
    }
    if fields["url"]:
        body["url"] = str(fields["url"])
    if fields["miniprogram_appid"]:
        body["miniprogram"] = {"appid": str(fields["miniprogram_appid"])}
        if fields["miniprogram_pagepath"]:
            body["miniprogram"]["pagepath"] = str(fields["miniprogram_pagepath"])
    return body


class WechatTemplateTransport:
    code = "wechat_template"

    def __init__(self, api: WxApi, defaults: Mapping[str, Any]) -> None:
        self.api = api
        self.defaults = defaults

    def deliver(self, messages: Sequence[Message]) -> list[Outcome]:
        return [self._one(m) for m in messages]

    def _one(self, message: Message) -> Outcome:
        try:
            answer = self.api.call(PATH, payload(message, self.defaults))
        except PlatformUnreachable as exc:
            return Outcome(False, error=str(exc))
        return outcome(answer, PERMANENT)


FINISH_EVENT = "templatesendjobfinish"


def receipts(push: Mapping[str, Any]) -> list[Receipt]:
    """The delivery result in a pushed TEMPLATESENDJOBFINISH (none in another push)."""
    msgid = str(push.get("MsgID") or push.get("MsgId") or "")
    if str(push.get("Event", "")).lower() != FINISH_EVENT or not msgid:
        return []
    status = str(push.get("Status", "")).strip()
    ok = status == "success"
    return [
        Receipt(
            msgid,
            "delivered" if ok else "failed",
            f"wechat_template:{msgid}",
            created_at(push),
            None if ok else status[:300] or "no status",
        )
    ]


def build(settings: Mapping[str, Any]) -> WechatTemplateTransport:
    """Settings: appid, secret (the official account's), base_url, timeout; and the
    defaults url, miniprogram_appid, miniprogram_pagepath."""
    defaults = {f: settings.get(f) for f in REQUEST_FIELDS}
    return WechatTemplateTransport(wechat_api(settings), defaults)
