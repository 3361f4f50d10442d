"""`siyu demo` ends serving the console: it prints the URL, login keys for every console
role (a guide's too), the group, database and secret it used and how to point later
commands at them; each key logs in, and so does a key made later by following that
advice (issue #14: such a key could not log in)."""

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


def _login(base: str, key: str) -> tuple[str, str]:
    """Log in through the form as a browser would: the page landed on, and its HTML."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.open(f"{base}/console/login", timeout=10).close()
    csrf = next(c.value for c in jar if c.name == "siyu_csrf")
    form = urllib.parse.urlencode({"csrf": csrf, "key": key}).encode()
    with opener.open(f"{base}/console/login", data=form, timeout=30) as page:
        return page.url, page.read().decode()


def test_demo_prints_where_it_is_and_keys_that_log_in(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # given the README's path: no secret set, a default store beside which nothing exists
    env = {
        k: v for k, v in os.environ.items() if k not in ("SIYU_SECRET_KEY", "SIYU_SECRET_KEY_FILE")
    }
    env.update({"SIYU_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "SIYU_LANG": "en"})
    command = [sys.executable, "-m", "siyu.cli", "demo", "--members", "200", "--seed", "3"]
    command += ["--workdir", "d", "--port", str(port)]
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
        keys = dict(re.findall(r"(\w+) login key: (sy_\S+)", text))
        assert url and set(keys) == {"admin", "analyst", "store", "guide"}, text[-3000:]
        assert url.group(1) == f"http://localhost:{port}/console"
        # then it says what it used: the group, the database, the secret, as settings
        exports = dict(re.findall(r"export (SIYU_\w+)='([^']*)'", text))
        assert exports["SIYU_GROUP"] == "demo-3" and "Brand group: demo-3" in text
        assert exports["SIYU_DATABASE_URL"] == f"sqlite:///{tmp_path / 'd' / 'siyu-demo.db'}"
        assert exports["SIYU_SECRET_KEY_FILE"] == str(tmp_path / "d" / "siyu-demo.key")
        assert Path(exports["SIYU_SECRET_KEY_FILE"]).is_file()
        assert not (tmp_path / "x.key").exists()  # no secret made for a store it never used
        guide = re.search(r"guide login key: sy_\S+ \(guide (\S+), (\d+) members\)", text)
        assert guide and int(guide.group(2)) > 0

        base = f"http://127.0.0.1:{port}"
        for _ in range(100):  # the server starts after the lines are printed
            try:
                urllib.request.urlopen(f"{base}/console/login", timeout=2).close()
                break
            except OSError:
                time.sleep(0.2)
        # and each printed key logs in to its pages
        landed, html = _login(base, keys["admin"])
        assert landed.endswith("/console/overview")
        assert 'data-metric="members"' in html and "Data as of" in html
        landed, html = _login(base, keys["guide"])
        assert landed.endswith("/console/my-members"), landed
        assert "/console/members/" in html  # the guide's members are listed

        # when a guide key is made later by following the printed settings (the README's
        # `siyu keys create --role guide`), from another directory
        create = ["keys", "create", "--role", "guide", "--guide", guide.group(1)]
        later = subprocess.run(
            [sys.executable, "-m", "siyu.cli", *create],
            env={**env, **exports},
            cwd=tmp_path / "d",
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert later.returncode == 0, later.stderr
        # then that key logs in too
        landed, _ = _login(base, later.stdout.strip())
        assert landed.endswith("/console/my-members"), landed
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
