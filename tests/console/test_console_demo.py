"""`siyu demo` ends serving the console: it prints the URL and login keys, and the key
logs in to a page showing the demo brand (the acceptance path of `make demo`)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path


def test_demo_prints_the_console_and_a_key_that_logs_in(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "SIYU_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "SIYU_LANG": "en"}
    command = [sys.executable, "-m", "siyu.cli", "demo", "--members", "200", "--seed", "3"]
    command += ["--workdir", str(tmp_path / "d"), "--port", str(port)]
    proc = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert proc.stdout is not None
        printed = []
        deadline = time.monotonic() + 300
        for line in proc.stdout:  # the summary, then the console's lines
            printed.append(line)
            if "Ctrl-C" in line or time.monotonic() > deadline:
                break
        text = "".join(printed)
        assert "Retention by order count" in text  # the summary came first
        url = re.search(r"Open (http://\S+/console)", text)
        admin = re.search(r"admin login key: (sy_\S+)", text)
        assert url and admin, text[-2000:]
        assert url.group(1) == f"http://localhost:{port}/console"
        base = f"http://127.0.0.1:{port}"
        jar = CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        for _ in range(100):  # the server starts after the lines are printed
            try:
                opener.open(f"{base}/console/login", timeout=2).close()
                break
            except OSError:
                time.sleep(0.2)
        csrf = next(c.value for c in jar if c.name == "siyu_csrf")
        form = urllib.parse.urlencode({"csrf": csrf, "key": admin.group(1)}).encode()
        with opener.open(f"{base}/console/login", data=form, timeout=30) as page:
            html = page.read().decode()
            assert page.url.endswith("/console/overview")
        assert 'data-metric="members"' in html and "Data as of" in html
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
