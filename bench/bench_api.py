"""API throughput and latency on PostgreSQL: member lookup and batch ingestion.

    python bench/bench_api.py --members 1000000 --seconds 20 [--workers 2] [--pg-url URL]

Loads N members (each with a card) straight into a fresh database, starts `uvicorn
siyu.asgi:app` with W workers, and drives it with wrk (a separate C process) from the
same machine. Baseline in the same run: a bare FastAPI endpoint (bench/bare_app.py)
served by the same uvicorn settings, which is the ceiling for any endpoint here, and the
lookup's one query alone on the same driver (bench/raw_app.py), the ceiling for any
endpoint that reads PostgreSQL once.
Needs `wrk` (Debian: apt-get install wrk).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
from sqlalchemy import create_engine, text

from siyu.auth.keys import create_key
from siyu.importer.service import ensure_group
from siyu.privacy import Vault
from siyu.store.bulk import stage, unstage
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade

ROOT = Path(__file__).resolve().parents[1]


def load_members(url: str, vault: Vault, n: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    ensure_group(engine, "bench")
    ids = np.arange(1, n + 1, dtype=np.int64)
    cards = [f"C{i}" for i in range(1, n + 1)]
    when = pa.array(np.full(n, np.datetime64("2024-01-01T00:00:00", "s")), pa.timestamp("s"))
    table = pa.table(
        {
            "id": pa.array(ids),
            "card": pa.array(cards),
            "key": pa.array([vault.keyed_hash(c) for c in cards]),
            "at": when,
        }
    )
    with engine.begin() as conn:
        s = stage(conn, "bench_members", table)
        conn.execute(
            text(f"""INSERT INTO members (member_id, group_id, status, registered_at,
            created_at, updated_at) SELECT s.id, 'bench', 'active', s.at, s.at, s.at
            FROM {s.name} s""")
        )
        conn.execute(
            text(f"""INSERT INTO identities (identity_id, group_id, type, value_key,
            value, value_masked, verified, source_channel, first_seen, last_seen, member_id)
            SELECT s.id, 'bench', 'card', s.key, s.card, s.card, false, 'pos', s.at, s.at, s.id
            FROM {s.name} s""")
        )
        unstage(conn, s)
        for table_name, column in (("members", "member_id"), ("identities", "identity_id")):
            conn.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{table_name}', '{column}'), {n})"
            )
        conn.exec_driver_sql("ANALYZE members")
        conn.exec_driver_sql("ANALYZE identities")
    engine.dispose()


def serve(app: str, port: int, workers: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            app,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=1)
            return proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"{app} did not start on port {port}")


def wrk(url: str, script: str, seconds: int, connections: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
    done = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", fh.name, url],
        capture_output=True,
        text=True,
        check=True,
    )
    os.unlink(fh.name)
    out = done.stdout

    def latency(label: str) -> float:
        m = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
        assert m, out
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        return float(m.group(1)) * scale

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "non_2xx": float(non2xx.group(1)) if non2xx else 0.0,
    }


LOOKUP = """
local key, n = "%s", %d
request = function()
  local path = "/v1/members/lookup?type=card&value=C" .. math.random(1, n)
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. key})
end
"""
INGEST = """
local key, counter = "%s", 0
local thread_id = tostring(math.random(1, 1e9))
request = function()
  counter = counter + 1
  local items = {}
  for i = 1, %d do
    items[i] = string.format('{"order_id":"W%%s-%%d-%%d","brand_id":"B1","channel":"tmall",' ..
      '"buyer_type":"card","buyer_value":"C%%d","ordered_at":"2024-05-01T10:00:00",' ..
      '"total_fen":1000,"paid_fen":1000}', thread_id, counter, i, math.random(1, %d))
  end
  local body = '{"items":[' .. table.concat(items, ",") .. ']}'
  return wrk.format("POST", "/v1/orders:batch",
    {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}, body)
end
"""
RESERVE = """
local key, counter, threads = "%s", 0, 0
setup = function(thread)  -- a distinct id per wrk thread, so no order id repeats
  thread:set("tid", threads)
  threads = threads + 1
end
request = function()
  counter = counter + 1
  local body = string.format('{"order_id":"F%%s-%%d","lines":[{"sku":"HOT","qty":1}]}',
    tid, counter)
  return wrk.format("POST", "/v1/reservations",
    {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}, body)
end
"""
RAW = """
local driver, n = "%s", %d
request = function()
  return wrk.format("GET", "/" .. driver .. "?type=card&value=C" .. math.random(1, n))
end
"""
BARE = 'request = function() return wrk.format("GET", "/bare") end'


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--batch", type=int, default=100, help="orders per ingestion request")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("SIYU_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench_api needs wrk: apt-get install wrk")
    admin = create_engine(make_engine(args.pg_url).url, isolation_level="AUTOCOMMIT")
    name = f"siyu_bench_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    secret = os.urandom(32)
    vault = Vault(secret)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        started = time.perf_counter()
        load_members(url, vault, args.members)
        loaded = time.perf_counter() - started
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO brands (group_id, brand_id, name) VALUES ('bench', 'B1', 'bench')"
                )
            )
            # a flash sale: one SKU with more units than the run can sell
            conn.execute(
                text("""INSERT INTO stock_locations (group_id, location_id, kind, city)
                        VALUES ('bench', 'W1', 'warehouse', '上海')""")
            )
            conn.execute(
                text("""INSERT INTO stock_levels (group_id, sku, location_id, on_hand,
                          reserved, updated_at) VALUES ('bench', 'HOT', 'W1', 1000000000, 0,
                          now())""")
            )
        key = create_key(engine, vault, "bench", "admin").secret
        channel_key = create_key(engine, vault, "bench", "channel", channel="tmall").secret
        engine.dispose()
        env = {
            **os.environ,
            "SIYU_DATABASE_URL": url,
            "SIYU_SECRET_KEY": secret.hex(),
            "SIYU_GROUP": "bench",
            "SIYU_RATE_LIMIT": "0",
        }
        results = {}
        procs.append(
            serve("bare_app:app", 8811, args.workers, {**env, "PYTHONPATH": str(ROOT / "bench")})
        )
        results["bare FastAPI endpoint (ceiling)"] = wrk(
            "http://127.0.0.1:8811", BARE, args.seconds, args.connections
        )
        procs.pop().terminate()
        procs.append(
            serve("raw_app:app", 8813, args.workers, {**env, "PYTHONPATH": str(ROOT / "bench")})
        )
        for driver in ("psycopg", "asyncpg"):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:8813/{driver}?type=card&value=C1")
            except OSError:
                continue  # asyncpg is not installed: no row for it
            results[f"the lookup's query alone, async {driver} (database-bound ceiling)"] = wrk(
                "http://127.0.0.1:8813",
                RAW % (driver, args.members),
                args.seconds,
                args.connections,
            )
        procs.pop().terminate()
        procs.append(serve("siyu.asgi:app", 8812, args.workers, env))
        results["GET /v1/members/lookup (card)"] = wrk(
            "http://127.0.0.1:8812", LOOKUP % (key, args.members), args.seconds, args.connections
        )
        results[f"POST /v1/orders:batch ({args.batch} orders)"] = wrk(
            "http://127.0.0.1:8812",
            INGEST % (key, args.batch, args.members),
            args.seconds,
            min(args.connections, 8),
        )
        results["POST /v1/reservations (one hot SKU, group commit)"] = wrk(
            "http://127.0.0.1:8812", RESERVE % channel_key, args.seconds, args.connections
        )
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    print(
        f"{args.members:,} members loaded in {loaded:.0f} s; uvicorn workers: "
        f"{args.workers}; wrk: 2 threads, {args.connections} connections, {args.seconds} s"
    )
    print("| endpoint | requests/s | p50 ms | p99 ms | non-2xx |")
    print("|---|---:|---:|---:|---:|")
    for label, r in results.items():
        print(
            f"| {label} | {r['rps']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['non_2xx']:.0f} |"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
