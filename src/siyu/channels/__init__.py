"""Channels: where members, orders and events come from (the till, WeChat, marketplaces).

Each channel is an adapter in one registry. The built-in ones register through the same
`register` a third party calls, so a new channel is one adapter, not edits across domains.
"""

from __future__ import annotations

from siyu.channels.base import CHANNEL_KINDS, Canonical, Channel, ChannelAdapter, Label
from siyu.channels.registry import get, register

__all__ = [
    "CHANNEL_KINDS",
    "Canonical",
    "Channel",
    "ChannelAdapter",
    "Label",
    "get",
    "register",
]
