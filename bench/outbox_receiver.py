"""The platform bench_outbox.py delivers to: a bare ASGI app under uvicorn (its own
process), answering each POSTed message as the `http` transport expects (JSON with an
`id`), and keeping, per idempotency key, how often it was asked and how often it
accepted, so the bench can check each message was delivered exactly once.

`RECEIVER_FAIL_PER_10K` keys (chosen by the key's CRC-32, so the same keys every run)
have their first request answered 503, a transient failure the outbox must retry; a
platform that already accepted a key would answer a repeat and not deliver it again,
so a second acceptance of a key is counted, never hidden.

    POST /messages   a message (Idempotency-Key header, the transport's JSON body)
    GET  /stats      the counts so far
    GET  /keys       every key accepted, as a JSON list
    POST /reset      forget everything (between the bench's phases)
"""

from __future__ import annotations

import json
import os
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

FAIL_PER_10K = int(os.environ.get("RECEIVER_FAIL_PER_10K", "0"))
asked: Counter[str] = Counter()  # key -> requests
accepted: Counter[str] = Counter()  # key -> 2xx answers
odd: Counter[str] = Counter()  # requests that were not what the transport sends

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def fails_first(key: str) -> bool:
    return zlib.crc32(key.encode()) % 10_000 < FAIL_PER_10K


def stats() -> dict[str, int]:
    return {
        "requests": sum(asked.values()),
        "keys": len(asked),
        "accepted": len(accepted),
        "accepted_twice": sum(1 for n in accepted.values() if n > 1),
        "failed_first": sum(1 for k in asked if fails_first(k)),
        "asked_more_than_needed": sum(1 for k, n in asked.items() if n > 1 + fails_first(k)),
        **{f"odd_{k}": n for k, n in odd.items()},
    }


def message(key: str, raw: bytes) -> tuple[int, bytes]:
    try:
        body = json.loads(raw)
    except ValueError:
        odd["not_json"] += 1
        return 400, b"{}"
    if not key or body.get("idempotency_key") != key:
        odd["key_mismatch"] += 1
        return 400, b"{}"
    asked[key] += 1
    if asked[key] == 1 and fails_first(key):
        return 503, b'{"error": "try again"}'
    accepted[key] += 1
    return 200, json.dumps({"id": f"r-{len(accepted)}"}).encode()


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    raw = b""
    while True:
        event = await receive()
        raw += event.get("body", b"")
        if not event.get("more_body"):
            break
    path, method = scope["path"], scope["method"]
    if path == "/messages" and method == "POST":
        headers = dict(scope["headers"])
        code, answer = message(headers.get(b"idempotency-key", b"").decode(), raw)
    elif path == "/stats":
        code, answer = 200, json.dumps(stats()).encode()
    elif path == "/keys":
        code, answer = 200, json.dumps(sorted(accepted)).encode()
    elif path == "/reset" and method == "POST":
        asked.clear()
        accepted.clear()
        odd.clear()
        code, answer = 200, b"{}"
    else:
        code, answer = 404, b"{}"
    await send(
        {
            "type": "http.response.start",
            "status": code,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": answer})
