"""The channel registry: every channel siyu knows, built-in or a third party's, is here.

Like Datasette's DEFAULT_PLUGINS, the registry starts by loading plugin modules: the
built-in channels (`siyu.channels.builtin`), then every module a distribution names in
the `siyu.channels` entry-point group. A plugin module has a `register_channels(register)`
function; code may also call `register(adapter)` directly at any time. Whatever reads
channels (catalog.models.CHANNELS, import validation, the `channels` table after
`siyu migrate`) reads this registry, so a registered channel appears everywhere at once.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from importlib.metadata import entry_points
from typing import Any

from siyu.channels.base import CHANNEL_KINDS, ChannelAdapter
from siyu.errors import NotFoundError, ValidationError
from siyu.identity.types import IDENTITY_TYPES

DEFAULT_PLUGINS = ("siyu.channels.builtin",)
ENTRY_POINT_GROUP = "siyu.channels"
_CODE = re.compile(r"[a-z][a-z0-9_]{0,31}")  # channels.channel_id is VARCHAR(32)


class Registry:
    """Channels by code, in registration order. Plugins load on first use, so importing
    siyu stays cheap and a plugin may itself import siyu."""

    def __init__(self, plugins: Sequence[str] = DEFAULT_PLUGINS, discover: bool = True) -> None:
        self._adapters: dict[str, ChannelAdapter] = {}
        self._plugins = tuple(plugins)
        self._discover = discover
        self._loaded = False

    def register(self, adapter: ChannelAdapter) -> ChannelAdapter:
        """Add a channel; its code must be new, its kind known, its identifier types known."""
        self._load()
        code = adapter.code
        if not isinstance(code, str) or not _CODE.fullmatch(code):
            raise ValidationError(
                "channel", "code must be 1-32 of a-z, 0-9 and '_', starting with a letter", code
            )
        if code in self._adapters:
            raise ValidationError("channel", f"{code!r} is already registered", code)
        if adapter.kind not in CHANNEL_KINDS:
            raise ValidationError(
                "kind", f"channel kind must be one of: {', '.join(CHANNEL_KINDS)}", adapter.kind
            )
        unknown = [t for t in adapter.identity_types if t not in IDENTITY_TYPES]
        if unknown:
            raise ValidationError(
                "identity_types",
                f"unknown identity type {unknown[0]!r}; known: {', '.join(IDENTITY_TYPES)}",
                unknown[0],
            )
        self._adapters[code] = adapter
        return adapter

    def unregister(self, code: str) -> ChannelAdapter:
        """Withdraw a channel (its stored rows stay: orders keep naming it)."""
        self._load()
        adapter = self.get(code)
        del self._adapters[code]
        return adapter

    def get(self, code: str) -> ChannelAdapter:
        self._load()
        adapter = self._adapters.get(code)
        if adapter is None:
            raise NotFoundError(
                f"channel {code!r}: not registered; known: {', '.join(self._adapters)}"
            )
        return adapter

    def find(self, code: object) -> ChannelAdapter | None:
        self._load()
        return self._adapters.get(code) if isinstance(code, str) else None

    def all(self) -> tuple[ChannelAdapter, ...]:
        self._load()
        return tuple(self._adapters.values())

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # before loading: plugins call register, which calls _load
        for name in self._plugins:
            plug(self, importlib.import_module(name), name)
        if self._discover:
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                plug(self, ep.load(), f"entry point {ep.name!r} ({ep.value})")


def plug(registry: Registry, plugin: Any, name: str) -> None:
    """Run one plugin's `register_channels` hook against `registry`."""
    hook = getattr(plugin, "register_channels", None)
    if not callable(hook):
        raise ValidationError(
            "plugin", f"{name} has no register_channels(register) function", plugin
        )
    hook(registry.register)


_default = Registry()


def register(adapter: ChannelAdapter) -> ChannelAdapter:
    """Register a channel with siyu (the path built-in channels take too)."""
    return _default.register(adapter)


def unregister(code: str) -> ChannelAdapter:
    return _default.unregister(code)


def get(code: str) -> ChannelAdapter:
    """The registered channel `code`; NotFoundError names the known ones."""
    return _default.get(code)


def find(code: object) -> ChannelAdapter | None:
    """The registered channel `code`, or None."""
    return _default.find(code)


def all() -> tuple[ChannelAdapter, ...]:  # shadows the builtin here only: registry.all()
    """Every registered channel, built-ins first."""
    return _default.all()


class KindsView(Mapping[str, str]):
    """Channel code -> kind, read live from the registry."""

    def __init__(self, registry: Registry | None = None) -> None:
        self._registry = registry

    def _reg(self) -> Registry:
        return self._registry or _default

    def __getitem__(self, code: str) -> str:
        adapter = self._reg().find(code)
        if adapter is None:
            raise KeyError(code)
        return adapter.kind

    def __iter__(self) -> Iterator[str]:
        return iter([a.code for a in self._reg().all()])

    def __len__(self) -> int:
        return len(self._reg().all())

    def __repr__(self) -> str:
        return f"KindsView({dict(self)!r})"


class CodesView(Set[str]):
    """The codes of the registered channels that `keep` accepts, read live."""

    def __init__(
        self, keep: Callable[[ChannelAdapter], bool], registry: Registry | None = None
    ) -> None:
        self._keep = keep
        self._registry = registry

    def _codes(self) -> list[str]:
        return [a.code for a in (self._registry or _default).all() if self._keep(a)]

    @classmethod
    def _from_iterable(cls, it: Iterable[Any]) -> frozenset[Any]:
        return frozenset(it)  # `a & view`, `a - view` give plain sets

    def __contains__(self, code: object) -> bool:
        adapter = (self._registry or _default).find(code)
        return adapter is not None and self._keep(adapter)

    def __iter__(self) -> Iterator[str]:
        return iter(self._codes())

    def __len__(self) -> int:
        return len(self._codes())

    def __repr__(self) -> str:
        return f"CodesView({self._codes()!r})"
