"""The messaging channels and transport kinds, built-in or a third party's, in one place.

Like `siyu.channels.registry`: the built-ins (`transports.builtin`) register through the
same `register_messaging(registry)` hook a distribution names in the `siyu.messaging`
entry-point group, so a platform module a brand writes is found the same way.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any

from siyu.errors import NotFoundError, ValidationError
from siyu.identity.types import IDENTITY_TYPES
from siyu.messaging.transports.base import MessageChannel, Transport

DEFAULT_PLUGINS = ("siyu.messaging.transports.builtin",)
ENTRY_POINT_GROUP = "siyu.messaging"
TransportFactory = Callable[[Mapping[str, Any]], Transport]


class Registry:
    def __init__(self, discover: bool = True) -> None:
        self._channels: dict[str, MessageChannel] = {}
        self._transports: dict[str, TransportFactory] = {}
        self._discover = discover
        self._loaded = False

    def add_channel(self, channel: MessageChannel) -> None:
        if channel.code in self._channels:
            raise ValidationError("channel", f"{channel.code!r} is already registered")
        if channel.identity_type not in IDENTITY_TYPES:
            raise ValidationError(
                "identity_type", f"unknown identity type {channel.identity_type!r}"
            )
        self._channels[channel.code] = channel

    def add_transport(self, code: str, factory: TransportFactory) -> None:
        if code in self._transports:
            raise ValidationError("transport", f"{code!r} is already registered")
        self._transports[code] = factory

    def channel(self, code: str) -> MessageChannel:
        self._load()
        found = self._channels.get(code)
        if found is None:
            known = ", ".join(self._channels)
            raise ValidationError("channel", f"unknown messaging channel {code!r}; known: {known}")
        return found

    def channels(self) -> list[MessageChannel]:
        self._load()
        return list(self._channels.values())

    def transport(self, code: str, settings: Mapping[str, Any]) -> Transport:
        """A transport of kind `code` built from its settings (a URL, credentials)."""
        self._load()
        factory = self._transports.get(code)
        if factory is None:
            raise NotFoundError(
                f"transport {code!r}: not registered; known: {', '.join(self._transports)}"
            )
        return factory(settings)

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        modules = list(DEFAULT_PLUGINS)
        if self._discover:
            modules += [ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)]
        for name in modules:
            importlib.import_module(name).register_messaging(self)


registry = Registry()
