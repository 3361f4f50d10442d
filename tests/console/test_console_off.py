"""A plain install (no Node, so no chart bundle) still serves the API: the console is off,
says why at start and on every /console page, and how to build it (issue #14)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from fastapi.testclient import TestClient
from tests.api.live import START_SECONDS
from tests.conftest import Store

from siyu.app import create_app
from siyu.auth.keys import create_key
from siyu.config import Settings
from siyu.privacy import Vault

SECRET = bytes(range(32))


def test_without_the_bundle_the_api_serves_and_the_console_says_why(
    store: Store, tmp_path: Path
) -> None:
    # given a store with an admin key, and no chart bundle where the app looks for it
    key = create_key(store.engine, Vault(SECRET), store.group_id, "admin").secret
    url = store.engine.url.render_as_string(hide_password=False)
    settings = Settings(
        database_url=url,
        secret_key=SECRET,
        group_id=store.group_id,
        console_bundle=str(tmp_path / "console.js"),
    )
    app = create_app(settings, rate_per_second=0)
    with TestClient(app) as client:
        # when the API is called, then it answers as ever
        assert client.get("/healthz").status_code == 200
        lookup = client.get(
            "/v1/members/lookup",
            params={"type": "card", "value": "nobody"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert lookup.status_code == 404, lookup.text
        assert lookup.headers["content-type"].startswith("application/problem+json")
        # when any console page is asked for, then it answers 503 saying why and what to do
        for path in ("/console", "/console/login", "/console/overview?lang=en"):
            page = client.get(path, follow_redirects=False)
            assert page.status_code == 503, path
            assert page.headers["content-type"].startswith("text/html")
            assert "make console-assets" in page.text and str(tmp_path / "console.js") in page.text
            assert "/docs" in page.text  # the API is still there
    app.state.services.engine.dispose()


def test_siyu_serve_starts_without_the_bundle_and_says_so(tmp_path: Path) -> None:
    # given a fresh store and a bundle location with nothing in it
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        k: v for k, v in os.environ.items() if k not in ("SIYU_SECRET_KEY", "SIYU_SECRET_KEY_FILE")
    }
    env.update(
        {
            "SIYU_DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}",
            "SIYU_CONSOLE_BUNDLE": str(tmp_path / "none.js"),
            "SIYU_LANG": "en",
        }
    )
    command = [sys.executable, "-m", "siyu.cli", "serve", "--port", str(port)]
    proc = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        # when it is started, then it serves the API
        deadline = time.monotonic() + START_SECONDS  # tests/api/live.py says why so long
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("siyu serve did not start") from None
                time.sleep(0.2)
        try:
            urllib.request.urlopen(f"{base}/console/login", timeout=5)
            raise AssertionError("the console answered without its bundle")
        except urllib.error.HTTPError as error:
            assert error.code == 503
            error.close()
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    # and it said at start why the console is off and how to build it
    said = " ".join(output.split())
    assert "The console is off" in said and "make console-assets" in said, output
