"""The platforms' callbacks a channel takes, and how each is authenticated.

Platforms cannot present siyu's API keys, so each callback is authenticated by what the
platform itself can prove: WeCom and WeChat sign and encrypt every push in safe mode with
the token and EncodingAESKey set on both sides (`transports/wxcrypt.py`); Tencent Cloud's
SMS status callback is not signed at all, so its URL carries a per-channel secret (a
capability URL) that siyu compares in constant time. Built once from SIYU_MESSAGING_FILE
(`config.messaging_callbacks`).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from siyu.errors import ConfigError
from siyu.messaging.transports import wechat_subscribe, wechat_template
from siyu.messaging.transports.base import Receipt
from siyu.messaging.transports.wxcrypt import WxCrypt

MIN_SECRET = 32  # characters of a callback secret: a capability URL must not be guessable


def _none(push: Mapping[str, Any]) -> list[Receipt]:
    return []


# transport kind -> (the setting naming the receiveid, the receipts in a push)
WX_KINDS: dict[str, tuple[str, Callable[[Mapping[str, Any]], list[Receipt]]]] = {
    # WeCom pushes no group-send results (they are read: `siyu messages wecom-status`); its
    # callback URL is verified and its pushes acknowledged, so it can point at siyu
    "wecom_group_send": ("corpid", _none),
    "wechat_subscribe": ("appid", wechat_subscribe.receipts),
    "wechat_template": ("appid", wechat_template.receipts),
}


@dataclass(frozen=True)
class WxCallback:
    channel: str
    crypt: WxCrypt
    receipts: Callable[[Mapping[str, Any]], list[Receipt]]


@dataclass(frozen=True)
class SmsCallback:
    channel: str
    secret: str = ""

    def admits(self, presented: str) -> bool:
        return hmac.compare_digest(presented.encode(), self.secret.encode())


Callback = WxCallback | SmsCallback


def build(found: Mapping[str, tuple[str, Mapping[str, str]]]) -> dict[str, Callback]:
    """Each channel's callback from its settings; a ConfigError names what is missing."""
    built: dict[str, Callback] = {}
    for channel, (kind, settings) in found.items():
        where = f"SIYU_MESSAGING_FILE [{channel}]"
        if kind == "sms":
            secret = settings.get("callback_secret", "")
            if len(secret) < MIN_SECRET:
                raise ConfigError(
                    f"{where} callback_secret_env: the secret has {len(secret)} characters, "
                    f"needs at least {MIN_SECRET} (python -c 'import secrets; "
                    "print(secrets.token_urlsafe(32))')"
                )
            built[channel] = SmsCallback(channel, secret)
        elif kind in WX_KINDS:
            id_name, receipts = WX_KINDS[kind]
            missing = [
                n for n in ("callback_token", "encoding_aes_key", id_name) if not settings.get(n)
            ]
            if missing:
                raise ConfigError(f"{where}: a {kind} callback needs {', '.join(missing)}")
            try:
                crypt = WxCrypt(
                    settings["callback_token"], settings["encoding_aes_key"], settings[id_name]
                )
            except ConfigError as exc:
                raise ConfigError(f"{where} {exc}") from None
            built[channel] = WxCallback(channel, crypt, receipts)
        else:
            raise ConfigError(f"{where}: transport {kind!r} takes no callbacks")
    return built
