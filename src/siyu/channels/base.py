"""What siyu needs to know about a channel: its code, kind, the identifiers it brings,
its label, and (later, per platform) how its own payloads become canonical records."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

# "offline" sells at the till, "private_domain" is the brand's own reach (mini-program,
# WeCom, official account), "marketplace" is a platform's.
CHANNEL_KINDS = ("offline", "private_domain", "marketplace")


@dataclass(frozen=True)
class Label:
    """How people read the channel's name."""

    zh: str
    en: str


@dataclass(frozen=True)
class Canonical:
    """One record a channel payload becomes: a row of an import kind ("orders", "events",
    "members", "identities"), with the fields of docs/data-format.md."""

    kind: str
    row: Mapping[str, Any]


class ChannelAdapter(Protocol):
    """A channel as the registry sees it. `Channel` implements it; a platform adapter
    subclasses `Channel` and overrides `canonical`."""

    @property
    def code(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def identity_types(self) -> tuple[str, ...]: ...

    @property
    def label(self) -> Label | None: ...

    def canonical(self, payload: Mapping[str, Any]) -> Iterator[Canonical]:
        """Turn one payload of the platform's own shape into canonical records."""
        ...


@dataclass(frozen=True)
class Channel:
    """A channel whose data arrives already in siyu's formats (files, the batch API).

    `identity_types` names the identifier types (identity/types.py) the channel brings.
    """

    code: str
    kind: str
    identity_types: tuple[str, ...] = ()
    label: Label | None = None

    def canonical(self, payload: Mapping[str, Any]) -> Iterator[Canonical]:
        """The hook a platform adapter fills; a plain channel has no payload of its own."""
        raise NotImplementedError(f"channel {self.code!r} has no payload adapter")
