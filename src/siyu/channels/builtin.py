"""The channels siyu ships with. They are a plugin like any other: the registry loads
this module (DEFAULT_PLUGINS) and calls `register_channels`, as it does for a third
party's entry point."""

from __future__ import annotations

from collections.abc import Callable

from siyu.channels.base import Channel, ChannelAdapter, Label

BUILTIN: tuple[Channel, ...] = (
    Channel("pos", "offline", ("card", "phone"), Label("门店收银", "Store till")),
    Channel(
        "miniprogram",
        "private_domain",
        ("openid", "unionid", "phone"),
        Label("小程序", "Mini-program"),
    ),
    Channel(
        "official_account",
        "private_domain",
        ("openid", "unionid"),
        Label("公众号", "Official account"),
    ),
    Channel("wecom", "private_domain", ("external_userid", "unionid"), Label("企业微信", "WeCom")),
    Channel("tmall", "marketplace", ("tmall_ouid", "phone_hash"), Label("天猫", "Tmall")),
    Channel("jd", "marketplace", ("jd_pin", "phone_hash"), Label("京东", "JD")),
    Channel("douyin", "marketplace", ("douyin_open_id", "phone_hash"), Label("抖音", "Douyin")),
    Channel("youzan", "marketplace", ("youzan_id", "phone"), Label("有赞", "Youzan")),
)


def register_channels(register: Callable[[ChannelAdapter], ChannelAdapter]) -> None:
    """The plugin hook: hand each built-in channel to the registry."""
    for channel in BUILTIN:
        register(channel)
