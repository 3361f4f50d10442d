"""The `http` transport: each message POSTed as JSON to one URL, the idempotency key in
the `Idempotency-Key` header (and the body), so a receiver can drop a repeat.

A 2xx answer is accepted (its JSON `id`, if any, is the provider reference); 4xx other
than 408/429 is permanent; anything else, or no answer, is tried again later.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict

from siyu.messaging.transports.base import Message, Outcome

RETRYABLE = {408, 425, 429}


class HttpTransport:
    code = "http"

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout

    def deliver(self, messages: Sequence[Message]) -> list[Outcome]:
        return [self._one(m) for m in messages]

    def _one(self, message: Message) -> Outcome:
        body = json.dumps(asdict(message), ensure_ascii=False).encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": message.idempotency_key,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as exc:
            permanent = 400 <= exc.code < 500 and exc.code not in RETRYABLE
            return Outcome(False, error=f"HTTP {exc.code}", permanent=permanent)
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            return Outcome(False, error=f"{type(exc).__name__}: {exc}"[:300])
        try:
            ref = json.loads(raw or b"{}").get("id")
        except (ValueError, AttributeError):
            ref = None
        return Outcome(True, provider_ref=None if ref is None else str(ref)[:128])
