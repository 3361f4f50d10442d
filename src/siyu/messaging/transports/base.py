"""What the outbox hands a transport, and what it gets back.

A transport is one platform's way of delivering (WeCom group-send tasks, WeChat
subscription and template messages, SMS, a plain HTTP hook): it turns `Message`s into
that platform's own requests and answers one `Outcome` per message. Platform specifics
stay inside its module; the outbox knows only this protocol. A transport must pass
`Message.idempotency_key` on (a header, the platform's dedupe field): the outbox delivers
at least once, so the same key may come again after a crash or a lost answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class MessageChannel:
    """A channel messages go out on: the identity type that addresses a member there, and
    whether its company broadcasts are capped per month by the platform."""

    code: str
    identity_type: str
    label_zh: str
    label_en: str


@dataclass(frozen=True)
class Message:
    group_id: str
    send_id: int
    send_code: str
    member_id: int
    channel: str
    address: str  # the identity value on the channel (openid, external_userid, phone)
    idempotency_key: str  # '<group>:<send_id>:<member_id>', the same on every attempt
    content: Mapping[str, Any] = field(default_factory=dict)  # template and its params
    sender: str | None = None  # the guide, for WeCom group sends


@dataclass(frozen=True)
class Outcome:
    """`ok`: the platform accepted the message (its id in `provider_ref`); otherwise
    `error` says why and `permanent` whether trying again is pointless."""

    ok: bool
    provider_ref: str | None = None
    error: str | None = None
    permanent: bool = False


@dataclass(frozen=True)
class Receipt:
    """What a platform reported about one message it accepted, named by the reference it
    answered then (`Outcome.provider_ref`): delivered, or failed with the reason. `event_id`
    is unique per report, so the same report pushed again is recorded once."""

    provider_ref: str
    kind: str  # delivered | failed
    event_id: str
    at: datetime | None = None
    detail: str | None = None


class Transport(Protocol):
    code: str

    def deliver(self, messages: Sequence[Message]) -> list[Outcome]:
        """One outcome per message, in order. May raise: then every message of the batch
        is retried (the idempotency key keeps the receiver from doing any twice)."""
        ...
