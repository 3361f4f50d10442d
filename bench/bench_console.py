"""Console page response times on the demo brand (SQLite), over real HTTP.

    python bench/bench_console.py --members 20000 --requests 200 [--workdir DIR] [--reuse]

Builds the demo (generate, import, OneID, warehouse, stages, snapshot: `run_demo`), starts
`uvicorn siyu.asgi:app` (one worker, as `siyu serve` does by default), logs in as an
admin and as a guide through the login form, and requests every page sequentially on one
keep-alive connection: warm-up, then N timed requests each. Baselines in the same run and
on the same server: `/healthz` (the framework's floor) and the console's style sheet (a
static file through the console's own route). Prints markdown rows for
docs/benchmarks.md. The goal is < 300 ms per page (median and p95).
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

from sqlalchemy import text

from siyu.auth.keys import create_key
from siyu.config import Settings
from siyu.demo.pipeline import run_demo
from siyu.privacy import Vault
from siyu.store.engine import make_engine

SECRET = bytes(range(32))
WARM_UP = 10


class Session:
    """One browser-like session: cookies and a keep-alive connection."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, bytes]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # the server closes a connection idle past its keep-alive (5 s): reconnect
            self.conn.close()
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
        data = response.read()
        for header in response.headers.get_all("set-cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name] = rest.split(";", 1)[0].strip('"')
        return response.status, data

    def login(self, key: str) -> None:
        self.request("GET", "/console/login")
        form = urllib.parse.urlencode({"csrf": self.cookies["siyu_csrf"], "key": key})
        status, _ = self.request("POST", "/console/login", form)
        if status != 303:
            raise SystemExit(f"login failed: {status}")


def timed(session: Session, path: str, n: int) -> list[float]:
    for _ in range(WARM_UP):
        status, _ = session.request("GET", path)
        if status != 200:
            raise SystemExit(f"{path}: HTTP {status}")
    times = []
    for _ in range(n):
        started = time.perf_counter()
        session.request("GET", path)
        times.append((time.perf_counter() - started) * 1000)
    return times


def start_server(database_url: str, group: str) -> tuple[subprocess.Popen[bytes], int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {
        **os.environ,
        "SIYU_DATABASE_URL": database_url,
        "SIYU_SECRET_KEY": SECRET.hex(),
        "SIYU_GROUP": group,
        "SIYU_RATE_LIMIT": "0",
    }
    command = [sys.executable, "-m", "uvicorn", "siyu.asgi:app", "--port", str(port)]
    command.extend(["--log-level", "warning", "--no-access-log"])
    proc = subprocess.Popen(command, env=env)
    for _ in range(150):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise SystemExit("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/siyu-bench-console"))
    parser.add_argument("--reuse", action="store_true", help="Keep the demo already built.")
    args = parser.parse_args()

    db = args.workdir / "siyu-demo.db"
    group = f"demo-{args.seed}"
    if not (args.reuse and db.is_file()):
        started = time.perf_counter()
        run_demo(Settings(secret_key=SECRET), args.members, args.seed, args.workdir)
        print(f"demo built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    url = f"sqlite:///{db}"
    engine = make_engine(url)
    vault = Vault(SECRET)
    with engine.connect() as conn:
        g = {"g": group}
        member = conn.execute(
            text(
                "SELECT member_id FROM orders WHERE group_id = :g AND member_id IS NOT NULL "
                "GROUP BY member_id ORDER BY COUNT(*) DESC, member_id LIMIT 1"
            ),
            g,
        ).scalar_one()
        guide = conn.execute(
            text(
                "SELECT guide_id FROM orders WHERE group_id = :g AND guide_id IS NOT NULL "
                "GROUP BY guide_id ORDER BY COUNT(DISTINCT member_id) DESC, guide_id LIMIT 1"
            ),
            g,
        ).scalar_one()
        store = conn.execute(
            text(
                "SELECT home_store_id FROM members WHERE group_id = :g AND home_store_id IS "
                "NOT NULL GROUP BY home_store_id ORDER BY COUNT(*) DESC LIMIT 1"
            ),
            g,
        ).scalar_one()
        members = conn.execute(
            text("SELECT COUNT(*) FROM members WHERE group_id = :g AND status = 'active'"), g
        ).scalar_one()
        orders = conn.execute(text("SELECT COUNT(*) FROM orders WHERE group_id = :g"), g).scalar()
    admin = create_key(engine, vault, group, "admin", "bench").secret
    guide_key = create_key(engine, vault, group, "guide", "bench", guide_id=guide).secret
    engine.dispose()

    proc, port = start_server(url, group)
    try:
        hq, own = Session(port), Session(port)
        hq.login(admin)
        own.login(guide_key)
        pages: list[tuple[str, Session, str]] = [
            ("baseline: /healthz", hq, "/healthz"),
            ("baseline: static console.css", hq, "/console/static/console.css"),
            *[
                (p, hq, f"/console/{p}")
                for p in ("overview", "retention", "cohorts", "rfm", "funnel", "channels")
            ],
            ("guides (leaderboard)", hq, "/console/guides"),
            ("guides/{id} (a guide's members)", hq, f"/console/guides/{guide}"),
            ("stores", hq, "/console/stores"),
            ("stores/{id} (home members)", hq, f"/console/stores/{store}"),
            ("members (search form)", hq, "/console/members"),
            ("members/{id} (Member 360)", hq, f"/console/members/{member}"),
            ("my-members (guide)", own, "/console/my-members"),
            ("tasks (guide)", own, "/console/tasks"),
        ]
        results = []
        for name, session, path in pages:
            times = timed(session, path, args.requests)
            size = len(session.request("GET", path)[1])
            results.append((name, statistics.median(times), _p95(times), size))
            print(f"{name}: median {results[-1][1]:.1f} ms", file=sys.stderr)
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    floor = results[0][1]
    print(
        f"\n{members:,} members, {orders:,} orders (demo --members {args.members} --seed "
        f"{args.seed}), SQLite, 1 uvicorn worker, {args.requests} sequential requests per "
        "page after warm-up, one keep-alive connection\n"
    )
    print("| page | median ms | p95 ms | median / healthz | bytes |")
    print("|---|---:|---:|---:|---:|")
    for name, median, p95, size in results:
        print(f"| {name} | {median:.1f} | {p95:.1f} | {median / floor:.1f}x | {size:,} |")
    slow = [n for n, m, p, _ in results if p >= 300]
    print("\ngoal < 300 ms per page: " + ("met" if not slow else f"missed by {', '.join(slow)}"))


def _p95(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


if __name__ == "__main__":
    main()
