"""Deliver outbox events to a channel's HTTP endpoint: one JSON POST per event.

What `siyu inventory deliver --to URL` sends. A send that fails raises, so the outbox
keeps the event pending and counts the attempt; consumers dedupe by `event_id`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from siyu.errors import ValidationError

DEFAULT_TIMEOUT = 10.0  # seconds per request


class Outgoing(Protocol):
    """An event as the outbox hands it over (siyu.inventory.outbox.Event)."""

    @property
    def event_id(self) -> int: ...

    @property
    def topic(self) -> str: ...

    @property
    def key(self) -> str: ...

    @property
    def payload(self) -> dict[str, Any]: ...


def event_json(event: Outgoing) -> str:
    """The body every transport sends: one JSON object, UTF-8 text left unescaped."""
    return json.dumps(
        {
            "event_id": event.event_id,
            "topic": event.topic,
            "key": event.key,
            "payload": event.payload,
        },
        ensure_ascii=False,
    )


def post(url: str, body: str, timeout: float = DEFAULT_TIMEOUT) -> None:
    """POST `body` as application/json; an HTTP error status or a network error raises."""
    check_url(url)
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            pass
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the response's socket; the caller only needs the status
        raise


def sender(url: str, timeout: float = DEFAULT_TIMEOUT) -> Callable[[Outgoing], None]:
    """A `send` for siyu.inventory.outbox.deliver that POSTs each event to `url`."""
    check_url(url)

    def send(event: Outgoing) -> None:
        post(url, event_json(event), timeout)

    return send


def send_all(url: str, events: Iterable[Outgoing], timeout: float = DEFAULT_TIMEOUT) -> int:
    """POST events in order; returns how many were sent. The first that fails raises, and
    the ones after it are not sent."""
    send = sender(url, timeout)
    sent = 0
    for event in events:
        send(event)
        sent += 1
    return sent


def check_url(url: str) -> None:
    """Only http(s): urllib would otherwise open file: and other local URLs."""
    if not url.startswith(("http://", "https://")):
        raise ValidationError("url", "must be an http(s) URL", url)
