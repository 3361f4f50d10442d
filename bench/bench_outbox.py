"""Delivering the outbox to a local receiver, against a raw loop (issue #18):

    python bench/bench_outbox.py --messages 100000 [--engines postgresql,sqlite]

Loaded first, not timed: N members, each with an openid and marketing consent, in one
stored segment; the policy has no caps and no quiet hours, so planning a send to the
segment gives N planned messages. The receiver (`bench/outbox_receiver.py`, a bare ASGI
app under uvicorn in its own process) accepts each message, except that a share of keys
(`--fail-per-10k`, 1% by default) have their first request answered 503, which the
outbox retries (its backoff cut from 1 minute to `--backoff` seconds, in the workers
only, so the retries fall inside the run).

Timed, for each engine and each worker count (1 and 2 on PostgreSQL, 1 on SQLite):
- **raw**: the same receiver, the same `HttpTransport`, the same messages built in
  memory, delivered by as many processes in batches of `--batch`, a failed message sent
  again at once; no database;
- **outbox**: a send planned (not timed) to the N members, then as many worker processes
  each running `outbox.deliver` in a loop (what `siyu messages deliver --loop` runs,
  without its progress bar) until nothing is waiting.
Each phase starts when every process is connected and waiting at a barrier.

Checked after each outbox phase, or the run fails: every planned message is `sent` in the
store; the receiver accepted exactly the planned keys, each once; it was asked again only
for the keys it failed first, each once; the workers' counts agree.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, text

from bench_messaging import write
from pgtemp import temporary_database
from siyu.importer.service import ensure_group
from siyu.messaging import outbox, policy, sends
from siyu.messaging.plan import plan
from siyu.messaging.transports.base import Message
from siyu.messaging.transports.http import HttpTransport
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade
from siyu.store.times import stored_now

BENCH = Path(__file__).resolve().parent
GROUP = "bench"
CHANNEL = "wechat_subscribe"
CONTENT = {"template": "TPL-1", "params": {"thing1": "春季上新"}}
SCHEDULED = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # in the past: due at once
RAW_SEND_ID = 999_999


# --- the receiver ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def receiver(fail_per_10k: int) -> Iterator[str]:
    """uvicorn serving outbox_receiver in its own process; yields its base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "outbox_receiver:app",
            "--app-dir",
            str(BENCH),
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env={**os.environ, "RECEIVER_FAIL_PER_10K": str(fail_per_10k)},
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/stats", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"the receiver did not start on port {port}")
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


def ask(base: str, path: str, post: bool = False) -> Any:
    request = urllib.request.Request(base + path, data=b"" if post else None)
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


# --- the store ---------------------------------------------------------------------------


def load(engine: Engine, n: int) -> None:
    """N members with an openid and marketing consent each, all in segment `everyone`."""
    ensure_group(engine, GROUP)
    policy.save(
        engine,
        GROUP,
        policy.Policy(
            per_week=1000, per_channel_month={}, quiet_start=clock(0), quiet_end=clock(0)
        ),
    )
    now = stored_now().strftime("%Y-%m-%d %H:%M:%S.%f")
    ids = np.arange(1, n + 1, dtype=np.int64)
    with engine.begin() as conn:
        seg = conn.execute(
            text("""INSERT INTO segments (group_id, slug, name_zh, name_en, owner, refresh,
                      version, created_at, updated_at)
                    VALUES (:g, 'everyone', '全部会员', 'Everyone', 'bench', 'nightly', 1,
                      :t, :t) RETURNING segment_id"""),
            {"g": GROUP, "t": now},
        ).scalar_one()
        common = {"group_id": GROUP}
        write(
            conn,
            "members",
            {
                "member_id": ids,
                **common,
                "status": "active",
                "registered_at": now,
                "created_at": now,
                "updated_at": now,
            },
        )
        openids = np.char.add("o-", ids.astype(str))
        write(
            conn,
            "identities",
            {
                "identity_id": ids,
                **common,
                "type": "openid",
                "value_key": openids,
                "value": openids,
                "value_masked": "o-***",
                "scope": "",
                "verified": True,
                "source_channel": "wechat_mp",
                "first_seen": now,
                "last_seen": now,
                "member_id": ids,
            },
        )
        write(
            conn,
            "member_consents",
            {
                "member_id": ids,
                **common,
                "purpose": "marketing",
                "channel": "*",
                "last_grant_at": "2025-01-01 00:00:00.000000",
            },
        )
        write(
            conn,
            "segment_members",
            {
                "segment_id": np.full(n, seg, dtype=np.int64),
                "member_id": ids,
                **common,
                "set_by": "evaluation:1",
                "set_at": now,
            },
        )
        if engine.dialect.name == "postgresql":
            for table, key in (("members", "member_id"), ("identities", "identity_id")):
                conn.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', '{key}'), {n + 1})")
                )
    analyse(engine)


def analyse(engine: Engine) -> None:
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE)")
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


def planned_send(engine: Engine, code: str, n: int) -> int:
    stored = sends.save(
        engine,
        GROUP,
        sends.Send.model_validate(
            {
                "code": code,
                "channel": CHANNEL,
                "content": CONTENT,
                "target": {"segment": "everyone"},
                "scheduled_at": SCHEDULED.isoformat(),
            }
        ),
    )
    done = plan(engine, GROUP, code)
    if done.counts != {"planned": n}:
        sys.exit(f"FAILED: planning {code} gave {done.counts}, not {n} planned")
    analyse(engine)
    return stored.send_id


def states(engine: Engine, send_id: int) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("""SELECT status, COUNT(*) FROM send_recipients
                    WHERE group_id = :g AND send_id = :s GROUP BY status"""),
            {"g": GROUP, "s": send_id},
        ).all()
    return {str(s): int(c) for s, c in rows}


# --- the processes -----------------------------------------------------------------------


def outbox_worker(
    url: str, target: str, name: str, batch: int, backoff: float, go: Barrier, q: Any
) -> None:
    """`siyu messages deliver --loop`'s loop: deliver while anything is claimed, poll
    while anything is still waiting (retries not yet due, another worker's leases)."""
    outbox.BACKOFF = timedelta(seconds=backoff)  # the bench's shortcut, this process only
    engine = make_engine(url)
    senders = {CHANNEL: HttpTransport(target)}
    outbox.waiting(engine, GROUP)  # connected before the clock starts
    totals = dict.fromkeys(("claimed", "sent", "retry", "failed", "revoked", "batches"), 0)
    go.wait()
    while True:
        done = outbox.deliver(engine, GROUP, senders, worker=name, limit=batch)
        if done.claimed or done.revoked:
            totals["batches"] += 1
            for k in ("claimed", "sent", "retry", "failed", "revoked"):
                totals[k] += getattr(done, k)
            continue
        if not outbox.waiting(engine, GROUP):
            break
        time.sleep(0.02)
    q.put(totals)
    engine.dispose()


def raw_worker(target: str, ids: list[int], batch: int, go: Barrier, q: Any) -> None:
    """The same transport and messages, no database: each batch delivered, what failed
    sent again at once."""
    transport = HttpTransport(target)
    messages = [
        Message(
            group_id=GROUP,
            send_id=RAW_SEND_ID,
            send_code="RAW",
            member_id=m,
            channel=CHANNEL,
            address=f"o-{m}",
            idempotency_key=f"{GROUP}:{RAW_SEND_ID}:{m}",
            content=CONTENT,
            sender=None,
        )
        for m in ids
    ]
    requests = 0
    go.wait()
    for start in range(0, len(messages), batch):
        todo = messages[start : start + batch]
        while todo:
            requests += len(todo)
            outcomes = transport.deliver(todo)
            todo = [m for m, o in zip(todo, outcomes, strict=True) if not o.ok]
    q.put({"requests": requests})


def run(
    procs: list[multiprocessing.process.BaseProcess], go: Barrier, q: Any
) -> tuple[float, list[dict[str, int]]]:
    for p in procs:
        p.start()
    go.wait()
    started = time.perf_counter()
    found = [q.get() for _ in procs]
    wall = time.perf_counter() - started
    for p in procs:
        p.join()
        if p.exitcode:
            sys.exit(f"FAILED: a process ended with {p.exitcode}")
    return wall, found


def raw_phase(base: str, n: int, workers: int, batch: int) -> tuple[float, dict[str, int]]:
    ctx = multiprocessing.get_context("spawn")
    ask(base, "/reset", post=True)
    go, q = ctx.Barrier(workers + 1), ctx.Queue()
    ids = list(range(1, n + 1))
    procs = [
        ctx.Process(target=raw_worker, args=(base + "/messages", ids[i::workers], batch, go, q))
        for i in range(workers)
    ]
    wall, _ = run(procs, go, q)
    got = ask(base, "/stats")
    if got["accepted"] != n or got["accepted_twice"] or got["asked_more_than_needed"]:
        sys.exit(f"FAILED: the raw loop's receiver counts {got}")
    return wall, got


def outbox_phase(
    args: argparse.Namespace, url: str, base: str, engine: Engine, workers: int
) -> dict[str, Any]:
    n = args.messages
    send_id = planned_send(engine, f"OUT{workers}", n)
    ctx = multiprocessing.get_context("spawn")
    ask(base, "/reset", post=True)
    go, q = ctx.Barrier(workers + 1), ctx.Queue()
    procs = [
        ctx.Process(
            target=outbox_worker,
            args=(url, base + "/messages", f"w{i}", args.batch, args.backoff, go, q),
        )
        for i in range(workers)
    ]
    wall, totals = run(procs, go, q)
    got = ask(base, "/stats")
    keys = set(ask(base, "/keys"))
    final = states(engine, send_id)
    summed = {k: sum(t[k] for t in totals) for k in totals[0]}
    wrong = []
    if final != {"sent": n}:
        wrong.append(f"outbox states {final}, not {n} sent")
    if keys != {f"{GROUP}:{send_id}:{m}" for m in range(1, n + 1)}:
        wrong.append(f"the receiver accepted {len(keys)} keys, not the {n} planned")
    if got["accepted_twice"] or got["asked_more_than_needed"]:
        wrong.append(f"repeats beyond the retries: {got}")
    if got["requests"] != n + got["failed_first"]:
        wrong.append(f"{got['requests']} requests for {n} messages, {got['failed_first']} failed")
    if summed["sent"] != n or summed["retry"] != got["failed_first"] or summed["failed"]:
        wrong.append(f"the workers counted {summed}")
    if wrong:
        sys.exit("FAILED: " + "; ".join(wrong))
    return {"wall_s": wall, "receiver": got, "workers": totals, "states": final}


# --- the run -----------------------------------------------------------------------------


@contextmanager
def store(engine_name: str, pg_url: str) -> Iterator[str]:
    if engine_name == "postgresql":
        with temporary_database(pg_url) as url:
            yield url
        return
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as tmp:
        yield f"sqlite:///{tmp}/siyu.db"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--engines", default="postgresql,sqlite")
    parser.add_argument("--workers", default="1,2", help="worker counts on PostgreSQL")
    parser.add_argument("--batch", type=int, default=500, help="messages claimed at a time")
    parser.add_argument("--fail-per-10k", type=int, default=100)
    parser.add_argument("--backoff", type=float, default=0.5, help="seconds, the first retry")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("SIYU_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()
    n = args.messages
    rows = []
    figures: dict[str, Any] = {"messages": n, "load_at_start": os.getloadavg()}
    with receiver(args.fail_per_10k) as base:
        for name in args.engines.split(","):
            counts = [int(w) for w in args.workers.split(",")] if name == "postgresql" else [1]
            with store(name, args.pg_url) as url:
                engine = make_engine(url)
                upgrade(engine)
                started = time.perf_counter()
                load(engine, n)
                figures[f"{name}_load_s"] = round(time.perf_counter() - started, 1)
                for w in counts:
                    raw_s, raw = raw_phase(base, n, w, args.batch)
                    done = outbox_phase(args, url, base, engine, w)
                    got = done["receiver"]
                    out_s = done["wall_s"]
                    figures[f"{name}_{w}"] = {
                        "raw_s": round(raw_s, 1),
                        "outbox_s": round(out_s, 1),
                        "raw_requests": raw["requests"],
                        "receiver": got,
                        "workers": done["workers"],
                    }
                    rows.append(
                        f"| {name} | {w} | {n:,} | {n / raw_s:,.0f} | {n / out_s:,.0f} "
                        f"| {raw_s / out_s:.2f} | {got['failed_first']:,} "
                        f"| {got['requests'] - got['keys']:,} | 0 |"
                    )
                    print(rows[-1], file=sys.stderr, flush=True)
                engine.dispose()
    figures["load_at_end"] = os.getloadavg()
    print(json.dumps(figures, ensure_ascii=False, indent=1))
    print(
        "| engine | workers | messages | raw msg/s | outbox msg/s | outbox / raw "
        "| failed first | repeated requests | accepted twice |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(row)


if __name__ == "__main__":
    main()
