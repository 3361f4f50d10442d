"""The built-in messaging channels and transports, registered as a plugin would be.

One transport per platform, each a module with a `build(settings)` factory: WeCom group
sends (`wecom`), mini-program subscription messages (`wechat_subscribe`), official-account
template messages (`wechat_template`), Tencent Cloud SMS (`sms`); and `http`, which
carries any channel as plain JSON (a brand's own gateway, tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from siyu.messaging.transports import sms, wechat_subscribe, wechat_template, wecom
from siyu.messaging.transports.base import MessageChannel, Transport
from siyu.messaging.transports.http import HttpTransport

if TYPE_CHECKING:
    from siyu.messaging.transports.registry import Registry

CHANNELS = (
    # a guide's customer group-send task (the guide confirms it in WeCom)
    MessageChannel("wecom_group_send", "external_userid", "企业微信客户群发", "WeCom group send"),
    MessageChannel("wechat_subscribe", "openid", "小程序订阅消息", "Mini-program subscription"),
    MessageChannel("wechat_template", "openid", "公众号模板消息", "Official-account template"),
    MessageChannel("sms", "phone", "短信", "SMS"),
)


def _http(settings: Mapping[str, Any]) -> Transport:
    return HttpTransport(str(settings["url"]), float(settings.get("timeout", 10.0)))


def register_messaging(registry: Registry) -> None:
    for channel in CHANNELS:
        registry.add_channel(channel)
    registry.add_transport("http", _http)
    registry.add_transport("wecom_group_send", wecom.build)
    registry.add_transport("wechat_subscribe", wechat_subscribe.build)
    registry.add_transport("wechat_template", wechat_template.build)
    registry.add_transport("sms", sms.build)
