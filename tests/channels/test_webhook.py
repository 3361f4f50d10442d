"""The webhook sender against a real HTTP server on 127.0.0.1: one JSON POST per event,
and a failure raises so the outbox keeps the event pending."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from siyu.channels import webhook
from siyu.errors import ValidationError
from siyu.inventory.outbox import Event


@dataclass
class Hook:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)


@pytest.fixture
def hook() -> Iterator[Hook]:
    """A server that records each POST; a payload asking to fail gets a 500, one asking
    to stall is answered late."""
    received: list[dict[str, Any]] = []
    content_types: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            payload = body["payload"]
            if payload.get("stall"):
                time.sleep(1.0)
            received.append(body)
            content_types.append(self.headers["Content-Type"])
            self.send_response(500 if payload.get("fail") else 204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Hook(f"http://127.0.0.1:{server.server_port}/stock", received, content_types)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _event(event_id: int, **payload: Any) -> Event:
    return Event(event_id, "stock.available", "K1", {"sku": "K1", "门店": "南京路", **payload})


def test_each_event_is_posted_as_one_json_object(hook: Hook) -> None:
    # given two outbox events
    events = [_event(1, atp=5), _event(2, atp=4)]
    # when they are sent to the hook
    send = webhook.sender(hook.url)
    for event in events:
        send(event)
    # then the server got each as JSON, Chinese text intact, in order
    assert hook.received == [
        {"event_id": 1, "topic": "stock.available", "key": "K1", "payload": events[0].payload},
        {"event_id": 2, "topic": "stock.available", "key": "K1", "payload": events[1].payload},
    ]
    assert hook.content_types == ["application/json", "application/json"]
    assert '"门店": "南京路"' in webhook.event_json(events[0])


def test_send_all_stops_at_the_first_failure(hook: Hook) -> None:
    events = [_event(1), _event(2, fail=True), _event(3)]
    with pytest.raises(urllib.error.HTTPError) as caught:
        webhook.send_all(hook.url, events)
    assert caught.value.code == 500
    assert [e["event_id"] for e in hook.received] == [1, 2]  # 3 was never sent
    assert webhook.send_all(hook.url, [_event(4), _event(5)]) == 2


def test_a_slow_endpoint_times_out(hook: Hook) -> None:
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        webhook.send_all(hook.url, [_event(1, stall=True)], timeout=0.2)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "stdout"])
def test_only_http_urls_are_accepted(url: str) -> None:
    with pytest.raises(ValidationError, match="must be an http"):
        webhook.sender(url)
