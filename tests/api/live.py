"""A real `uvicorn siyu.asgi:app` with two worker processes, for acceptance tests that
must cross real HTTP and real process boundaries."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine

# How long a server may take to answer /healthz. It answers in about 2 s on a quiet
# machine; on a busy one (a full suite beside benchmarks) importing the app took over 30 s
# and a fixed 30 s wait failed every test behind it. A server that exits fails at once.
START_SECONDS = 180.0


@contextmanager
def live_server(
    engine: Engine,
    group: str,
    secret: bytes,
    workers: int = 2,
    extra_env: dict[str, str] | None = None,
) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "SIYU_DATABASE_URL": engine.url.render_as_string(hide_password=False),
        "SIYU_SECRET_KEY": secret.hex(),
        "SIYU_GROUP": group,
        "SIYU_RATE_LIMIT": "0",
        **(extra_env or {}),
    }
    with tempfile.TemporaryFile() as log:  # the server's stderr, told when it fails to start
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "siyu.asgi:app",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + START_SECONDS
            while True:
                try:
                    urllib.request.urlopen(f"{base}/healthz", timeout=2).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        said = log.read().decode(errors="replace")[-2000:]
                        raise AssertionError(f"the server did not start: {said}") from None
                    time.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def call(
    base: str,
    key: str,
    path: str,
    body: dict[str, Any] | None,
    idem: str | None = None,
    method: str = "POST",
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if idem:
        headers["Idempotency-Key"] = idem
    request = urllib.request.Request(
        f"{base}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers=headers,
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())
