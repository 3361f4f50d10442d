"""Planning one send to a stored segment of N members, with consent and caps (issue #18):

    python bench/bench_messaging.py --members 10000000 [--engine sqlite] [--keep]

Loaded first, not timed (COPY on PostgreSQL, executemany on SQLite), from numpy draws
(seed 18) so the skip counts the plan must give are known exactly:
- N members, one in a hundred merged into the member before it (its openid moved to the
  survivor): those are `duplicate_after_oneid`;
- an openid (the mini-program's subscription messages, `wechat_subscribe`) for ~90%;
- marketing consent for ~70% (channel '*'), ~5% of members later withdrawn on the channel,
  and ~5% with an SMS-only grant (no consent on this channel);
- touches of six earlier marketing sends: ~15% of members twice in the last 7 days
  (capped by the default 2 a week), ~15% once, ~3% four times earlier this month on the
  channel (capped by the policy's 4 a month on `wechat_subscribe`);
- one stored segment holding all N members.

Timed in the same run, each after a CHECKPOINT: the floor (a bare `INSERT INTO t SELECT
member_id FROM segment_members` of the same N rows into an unindexed table), the plan's
classifying SELECT alone (its skip counts, nothing written), `plan()` itself, and the
floor again. The counts of the plan must equal the loaded draws, or the run fails.

`--holdout-bp N` sets the group's global holdout (a fixed salt) before planning: the
reachable people it holds out are then skipped `global_holdout`, so the run checks that
planned + global_holdout equals the draws' planned, that this share is N / 10,000 of
them (within sampling error), and that every other count is the draws'.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import Connection, DateTime, Engine, bindparam, create_engine, text

from siyu.importer.service import ensure_group
from siyu.messaging import policy, sends
from siyu.messaging.plan import WORK_MEM, plan, planning
from siyu.store.dialect import dialect_of
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade

GROUP = "bench"
CHANNEL = "wechat_subscribe"
T = datetime(2030, 1, 28, 2, 0)  # a Monday, 10:00 in Shanghai: no quiet hours, late in the month
STAMP = "%Y-%m-%d %H:%M:%S.%f"
CHUNK = 1_000_000
# the earlier sends: (code, channel, due), touches counted by the week cap (A, B) and by
# the month cap on the channel (C..F, outside the week)
EARLIER = (
    ("A", CHANNEL, T - timedelta(days=1)),
    ("B", "sms", T - timedelta(days=3)),
    ("C", CHANNEL, T - timedelta(days=10)),
    ("D", CHANNEL, T - timedelta(days=12)),
    ("E", CHANNEL, T - timedelta(days=14)),
    ("F", CHANNEL, T - timedelta(days=16)),
)
SHARES = {  # the loaded proportions, of all members: what the counts must come near
    "duplicate_after_oneid": 0.01,
    "no_consent": 0.99 * 0.30,
    "opted_out": 0.99 * 0.05,
    "no_identity_for_channel": 0.99 * 0.65 * 0.1,  # (a survivor has a second chance)
    "capped_week": 0.99 * 0.65 * 0.9 * 0.15,
    "capped_channel_month": 0.99 * 0.65 * 0.9 * 0.03,
}


def stamp(at: datetime) -> str:
    return at.strftime(STAMP)


class Draws:
    """Who has what, one entry per member (index i is member i + 1)."""

    def __init__(self, n: int) -> None:
        rng = np.random.default_rng(18)
        self.n = n
        self.ids = np.arange(1, n + 1, dtype=np.int64)
        self.merged = (self.ids % 100 == 0) & (self.ids > 1)  # into the member before
        active = ~self.merged
        self.openid = rng.random(n) < 0.9
        u = rng.random(n)
        self.granted = active & (u < 0.70)
        self.withdrawn = active & (u < 0.05)
        self.sms_only = active & (u >= 0.70) & (u < 0.75)
        u = rng.random(n)
        self.week = np.where(active & (u < 0.15), 2, np.where(active & (u < 0.30), 1, 0))
        self.month = np.where(active & (u >= 0.30) & (u < 0.33), 4, 0)
        # a survivor is addressed by its own openid or the one moved from the merged member
        moved = np.zeros(n, dtype=bool)
        moved[:-1] = self.merged[1:] & self.openid[1:]
        self.address = active & (self.openid | moved)

    def expected(self) -> Counter[str]:
        reason = np.full(self.n, "planned", dtype=object)
        rules = [  # the plan's order: the first rule broken
            ("capped_channel_month", self.month + (self.week > 0) >= 4),
            ("capped_week", self.week >= 2),
            ("no_identity_for_channel", ~self.address),
            ("opted_out", self.withdrawn),
            ("no_consent", ~self.granted),
            ("duplicate_after_oneid", self.merged),
        ]
        for name, hit in rules:  # last written wins: the earliest rule
            reason[hit] = name
        return Counter(reason.tolist())


def chunks(n: int) -> Iterator[slice]:
    for start in range(0, n, CHUNK):
        yield slice(start, min(start + CHUNK, n))


def write(conn: Connection, table: str, columns: dict[str, Any]) -> int:
    """One batch of rows into `table`: COPY (CSV by Arrow) on PostgreSQL, executemany on
    SQLite. Constants may be given as scalars."""
    n = max(len(v) for v in columns.values() if isinstance(v, np.ndarray | pa.Array))
    arrays = {
        k: v if isinstance(v, np.ndarray | pa.Array) else pa.array([v] * n)
        for k, v in columns.items()
    }
    batch = pa.table(arrays)
    dbapi = conn.connection.driver_connection
    assert dbapi is not None
    cols = ", ".join(batch.column_names)
    if dialect_of(conn).supports_copy:
        buffer = io.BytesIO()
        pacsv.write_csv(batch, buffer, write_options=pacsv.WriteOptions(include_header=False))
        with (
            dbapi.cursor() as cursor,
            cursor.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT csv)") as copy,
        ):
            copy.write(buffer.getvalue())
    else:
        marks = ", ".join("?" for _ in batch.column_names)
        cursor = dbapi.cursor()
        cursor.executemany(
            f"INSERT INTO {table} ({cols}) VALUES ({marks})",
            zip(*(c.to_pylist() for c in batch.columns), strict=True),
        )
        cursor.close()
    return n


def load(engine: Engine, d: Draws) -> dict[str, int]:
    """The brand's members, addresses, consent, earlier touches and the segment."""
    ensure_group(engine, GROUP)
    policy.save(engine, GROUP, policy.Policy(per_channel_month={CHANNEL: 4}))
    rows: Counter[str] = Counter()
    now = stamp(T - timedelta(days=400))
    with engine.begin() as conn:
        send_ids = {}
        for code, channel, due in EARLIER:
            send_ids[code] = conn.execute(
                text("""INSERT INTO sends (group_id, code, channel, purpose, body, status,
                          scheduled_at, due_at, planned_at, created_at)
                        VALUES (:g, :c, :ch, 'marketing', '{}', 'planned', :t, :t, :t, :t)
                        RETURNING send_id"""),
                {"g": GROUP, "c": code, "ch": channel, "t": stamp(due)},
            ).scalar_one()
        seg = conn.execute(
            text("""INSERT INTO segments (group_id, slug, name_zh, name_en, owner, refresh,
                      version, created_at, updated_at)
                    VALUES (:g, 'everyone', '全部会员', 'Everyone', 'bench', 'nightly', 1,
                      :t, :t) RETURNING segment_id"""),
            {"g": GROUP, "t": now},
        ).scalar_one()
    for part in chunks(d.n):
        ids = d.ids[part]
        with engine.begin() as conn:
            merged = d.merged[part]
            rows["members"] += write(
                conn,
                "members",
                {
                    "member_id": ids,
                    "group_id": GROUP,
                    "status": np.where(merged, "merged", "active"),
                    "merged_into": pa.array(ids - 1, mask=~merged),
                    "registered_at": now,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            has = d.openid[part]
            owner = np.where(merged, ids - 1, ids)[has]
            keys = pc.binary_join_element_wise("o-", pa.array(ids[has]).cast(pa.string()), "")
            rows["identities"] += write(
                conn,
                "identities",
                {
                    "identity_id": ids[has],
                    "group_id": GROUP,
                    "type": "openid",
                    "value_key": keys,
                    "value": keys,
                    "value_masked": "o-***",
                    "scope": "",
                    "verified": True,
                    "source_channel": "wechat_mp",
                    "first_seen": now,
                    "last_seen": now,
                    "member_id": owner,
                },
            )
            for which, ch, grant, withdrawal in (
                (d.granted[part], "*", stamp(T - timedelta(days=60)), None),
                (d.withdrawn[part], CHANNEL, None, stamp(T - timedelta(days=10))),
                (d.sms_only[part], "sms", stamp(T - timedelta(days=60)), None),
            ):
                rows["member_consents"] += write(
                    conn,
                    "member_consents",
                    {
                        "group_id": GROUP,
                        "member_id": ids[which],
                        "purpose": "marketing",
                        "channel": ch,
                        "last_grant_at": pa.array([grant] * int(which.sum()), pa.string()),
                        "last_withdrawal_at": pa.array(
                            [withdrawal] * int(which.sum()), pa.string()
                        ),
                    },
                )
            touched = {
                "A": d.week[part] >= 1,
                "B": d.week[part] >= 2,
                **{c: d.month[part] >= 4 for c in "CDEF"},
            }
            for code, channel, due in EARLIER:
                who = ids[touched[code]]
                rows["send_recipients"] += write(
                    conn,
                    "send_recipients",
                    {
                        "group_id": GROUP,
                        "send_id": np.full(len(who), send_ids[code], dtype=np.int64),
                        "member_id": who,
                        "person_id": who,
                        "status": "sent",
                        "purpose": "marketing",
                        "channel": channel,
                        "due_at": stamp(due),
                        "attempts": 1,
                        "sent_at": stamp(due),
                    },
                )
            rows["segment_members"] += write(
                conn,
                "segment_members",
                {
                    "group_id": GROUP,
                    "segment_id": np.full(len(ids), seg, dtype=np.int64),
                    "member_id": ids,
                    "set_by": "evaluation:1",
                    "set_at": now,
                },
            )
        print(f"loaded {part.stop:,}", file=sys.stderr, flush=True)
    with engine.begin() as conn:
        if dialect_of(conn).name == "postgresql":
            for table, key in (("members", "member_id"), ("identities", "identity_id")):
                conn.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', '{key}'), {d.n + 1})")
                )
    return dict(rows)


def settle(engine: Engine) -> None:
    """What a brand's store looks like between loads: vacuumed (hint bits set, the
    visibility map written), analysed, checkpointed."""
    if engine.dialect.name == "postgresql":
        auto = create_engine(engine.url, isolation_level="AUTOCOMMIT")
        with auto.connect() as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE)")
            conn.exec_driver_sql("CHECKPOINT")
        auto.dispose()
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
        checkpoint(engine)


def checkpoint(engine: Engine) -> None:
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.exec_driver_sql("CHECKPOINT")
    else:  # outside the engine's transactions (it begins each one IMMEDIATE)
        with closing(sqlite3.connect(str(engine.url.database))) as raw:
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class Clock:
    """Wall time, and the CPU time of whoever runs the statements: the one PostgreSQL
    backend of the engine's one connection (read from /proc: the server must be on this
    machine), or this process on SQLite. CPU seconds hardly move when other work shares
    the cores; wall seconds do."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.stat: Path | None = None
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            stat = Path(f"/proc/{pid}/stat")
            self.stat = stat if stat.exists() else None

    def cpu(self) -> float | None:
        if self.engine.dialect.name != "postgresql":
            return time.process_time()
        if self.stat is None:
            return None
        fields = self.stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def timed(self, fn: Any) -> tuple[float, float | None, Any]:
        checkpoint(self.engine)
        cpu, started = self.cpu(), time.perf_counter()
        out = fn()
        wall, after = time.perf_counter() - started, self.cpu()
        return wall, None if cpu is None or after is None else after - cpu, out


def floor(engine: Engine, n: int) -> int:
    """The floor: N member ids into an unindexed table, one statement."""
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS bench_floor")
        conn.exec_driver_sql("CREATE TABLE bench_floor (member_id BIGINT)")
    with engine.begin() as conn:
        return int(
            conn.execute(
                text("""INSERT INTO bench_floor SELECT member_id FROM segment_members
                        WHERE group_id = :g AND segment_id = (SELECT segment_id FROM segments
                          WHERE group_id = :g AND slug = 'everyone')"""),
                {"g": GROUP},
            ).rowcount
        )


def classify(engine: Engine, code: str) -> Counter[str]:
    """The plan's SELECT alone: its skip counts, nothing written."""
    with engine.begin() as conn:
        dialect_of(conn).tune_for_set_statement(conn, WORK_MEM)  # as plan() does
        stored = sends.load(conn, GROUP, code)
        _, current = policy.current(conn, GROUP)
        steps = planning(conn, GROUP, stored, current, T)
        steps.people(conn)  # the merged members' people (temporary tables), then the SELECT
        with dialect_of(conn).grouping_by_sort(conn):  # as prepare() does
            rows = conn.execute(
                steps.query(
                    f"SELECT x.reason, COUNT(*) FROM ({steps.classify}) x GROUP BY x.reason"
                ),
                steps.params,
            ).all()
        steps.drop(conn)
    return Counter({str(r or "planned"): int(n) for r, n in rows})


def sizes(engine: Engine) -> dict[str, int]:
    if engine.dialect.name != "postgresql":
        return {}
    with engine.connect() as conn:
        rows = conn.execute(
            text("""SELECT c.relname, pg_table_size(c.oid) FROM pg_class c
                    WHERE c.relname LIKE 'send_recipients%' OR c.relname LIKE 'ix_send_recip%'
                      OR c.relname LIKE 'pk_send_recip%' OR c.relname = 'bench_floor'
                      OR c.relname LIKE '%send_skips%'""")
        ).all()
    return {str(r): int(b) // 2**20 for r, b in rows}


@contextmanager
def database(args: argparse.Namespace) -> Iterator[tuple[str, bool]]:
    """The store's URL and whether it is already loaded (--reuse)."""
    if args.reuse:
        yield args.reuse, True
        return
    if args.engine == "sqlite":
        path = Path(tempfile.mkdtemp(prefix="bench-msg-")) / "siyu.db"
        try:
            yield f"sqlite:///{path}", False
        finally:
            if not args.keep:
                for f in path.parent.iterdir():
                    f.unlink()
                path.parent.rmdir()
            else:
                print(f"kept sqlite:///{path}", file=sys.stderr)
        return
    admin = create_engine(make_engine(args.pg_url).url, isolation_level="AUTOCOMMIT")
    name = f"siyu_bench_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False), False
    finally:
        if args.keep:
            print(f"kept {admin.url.set(database=name)}", file=sys.stderr)
        else:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.dispose()


def forget(engine: Engine) -> None:
    """--reuse: drop the send planned by an earlier run (its rows and itself)."""
    with engine.begin() as conn:
        found = conn.execute(
            text("SELECT send_id FROM sends WHERE group_id = :g AND code = 'BENCH'"),
            {"g": GROUP},
        ).scalar()
        if found is not None:
            for table in ("send_recipients", "send_skips"):
                conn.execute(text(f"DELETE FROM {table} WHERE send_id = :s"), {"s": found})
            conn.execute(text("DELETE FROM sends WHERE send_id = :s"), {"s": found})
    settle(engine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=10_000_000)
    parser.add_argument("--engine", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("SIYU_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="a PostgreSQL server; the run loads a throw-away database on it",
    )
    parser.add_argument("--keep", action="store_true", help="keep the loaded database")
    parser.add_argument("--reuse", help="a store loaded by an earlier --keep run (its URL)")
    parser.add_argument(
        "--holdout-bp", type=int, default=0, help="a global holdout of N basis points"
    )
    args = parser.parse_args()
    d = Draws(args.members)
    expected = d.expected()
    figures: dict[str, Any] = {"engine": args.engine, "members": args.members}
    with database(args) as (url, loaded):
        # one connection (one backend, whose CPU time is read) for everything timed
        engine = make_engine(url, pool_size=1, max_overflow=0)
        figures["engine"] = engine.dialect.name  # --reuse: the URL's, whatever --engine says
        if loaded:
            upgrade(engine)  # a store kept by an older run gets the newer tables
            forget(engine)
        else:
            upgrade(engine)
            started = time.perf_counter()
            figures["rows"] = load(engine, d)
            settle(engine)
            figures["load_s"] = round(time.perf_counter() - started, 1)
        sends.save(
            engine,
            GROUP,
            sends.Send.model_validate(
                {
                    "code": "BENCH",
                    "channel": CHANNEL,
                    "content": {"template": "TPL-1", "params": {"thing1": "春季上新"}},
                    "target": {"segment": "everyone"},
                    "scheduled_at": T.replace(tzinfo=UTC).isoformat(),
                }
            ),
        )
        with engine.begin() as conn:  # a fixed salt: the same people held out every run
            conn.execute(text("DELETE FROM global_holdouts WHERE group_id = :g"), {"g": GROUP})
            if args.holdout_bp:
                conn.execute(
                    text("""INSERT INTO global_holdouts (group_id, share_bp, salt, updated_at)
                            VALUES (:g, :bp, 'bench-holdout-18', :t)""").bindparams(
                        bindparam("t", type_=DateTime())
                    ),
                    {"g": GROUP, "bp": args.holdout_bp, "t": T},
                )
        clock = Clock(engine)
        steps: dict[str, float] = {}
        cpu: dict[str, float | None] = {}
        steps["floor"], cpu["floor"], floored = clock.timed(lambda: floor(engine, d.n))
        assert floored == d.n, (floored, d.n)
        steps["select"], cpu["select"], selected = clock.timed(lambda: classify(engine, "BENCH"))
        steps["plan"], cpu["plan"], planned = clock.timed(
            lambda: plan(engine, GROUP, "BENCH", now=T - timedelta(hours=1))
        )
        steps["floor_again"], cpu["floor_again"], _ = clock.timed(lambda: floor(engine, d.n))
        figures["wall_s"] = {k: round(v, 2) for k, v in steps.items()}
        figures["cpu_s"] = {k: None if v is None else round(v, 2) for k, v in cpu.items()}
        base = (steps["floor"] + steps["floor_again"]) / 2
        figures["ratio_plan_to_floor"] = round(steps["plan"] / base, 1)
        if cpu["plan"] and cpu["floor"] and cpu["floor_again"]:
            base_cpu = (cpu["floor"] + cpu["floor_again"]) / 2
            figures["cpu_ratio_plan_to_floor"] = round(cpu["plan"] / base_cpu, 1)
        figures["counts"] = dict(sorted(planned.counts.items()))
        figures["shares"] = {k: round(v / d.n, 4) for k, v in figures["counts"].items()}
        figures["sizes_mb"] = sizes(engine)
        engine.dispose()
    print(json.dumps(figures, ensure_ascii=False, indent=1))
    wrong = []
    if args.holdout_bp:  # the held out come out of the planned, a share of them
        held = planned.counts.get("global_holdout", 0)
        reachable = expected["planned"]
        share, want = held / reachable, args.holdout_bp / 10_000
        if abs(share - want) > 4 * np.sqrt(want * (1 - want) / reachable):
            wrong.append(f"global_holdout: {share:.4f} of the reachable, set {want:.4f}")
        expected = Counter({**expected, "planned": reachable - held, "global_holdout": held})
        figures["holdout_bp"] = args.holdout_bp
    if Counter(planned.counts) != expected:
        wrong.append(f"plan counts {dict(planned.counts)} != loaded {dict(expected)}")
    if selected != expected:
        wrong.append(f"SELECT counts {dict(selected)} != loaded {dict(expected)}")
    for reason, share in SHARES.items():
        got = planned.counts.get(reason, 0) / d.n
        if abs(got - share) > 0.01 + 0.05 * share + 3 / np.sqrt(d.n):
            wrong.append(f"{reason}: {got:.4f} of members, loaded ~{share:.4f}")
    if wrong:
        sys.exit("FAILED: " + "; ".join(wrong))
    print(
        f"| {figures['engine']} | {d.n:,} | {steps['floor']:.1f} / {steps['floor_again']:.1f} "
        f"| {steps['select']:.1f} | {steps['plan']:.1f} | {figures['ratio_plan_to_floor']} "
        f"| {cpu['plan'] or 0:.1f} | {figures.get('cpu_ratio_plan_to_floor')} |"
    )


if __name__ == "__main__":
    main()
