"""Bulk import throughput: order rows per second into SQLite and PostgreSQL.

The baseline, measured in the same run on the same rows, is the raw load with no
validation, no identity handling and no constraints: `COPY` into an unlogged table with no
indexes on PostgreSQL, `executemany` into a bare table on SQLite. The ratio says what
siyu's validation, identity upserts and idempotent inserts cost on top of the database's
own ceiling.

    python bench/bench_import.py --rows 1000000 [--pg-url postgresql://...]
    python bench/bench_import.py --kind members --rows 200000 --duplicates 0.02

`--kind members` times a member master instead: one row per member (card, phone, e-mail,
name parts, address, postcode), of which `--duplicates` repeat an earlier member's card and
phone under another member_ref (a duplicate record, merged at import); the re-import
then changes one member's card in every thousand (a move) and is timed as well.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from brandfiles import write_reference
from pgtemp import temporary_database
from siyu.importer.service import ensure_group, import_directory, import_file
from siyu.privacy import Vault
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade


def make_orders(path: Path, rows: int, seed: int = 7) -> pa.Table:
    """Orders from rows/4 buyers (cards, openids, Tmall ids), two years, amounts in fen."""
    rng = np.random.default_rng(seed)
    buyers = rng.integers(0, max(1, rows // 4), rows)
    kind = rng.integers(0, 3, rows)
    types = np.array(["card", "openid", "tmall_ouid"])[kind]
    channels = np.array(["pos", "miniprogram", "tmall"])[kind]
    values = np.char.add(np.array(["C", "o-", "t-"])[kind], buyers.astype(str))
    start = np.datetime64("2024-01-01T00:00:00")
    ordered = start + rng.integers(0, 730 * 86400, rows).astype("timedelta64[s]")
    total = rng.integers(100, 50_000, rows)
    table = pa.table(
        {
            "order_id": pa.array(np.char.add("O", np.arange(rows).astype(str))),
            "brand_id": pa.array(np.where(rng.random(rows) < 0.5, "B1", "B2")),
            "channel": pa.array(channels),
            "buyer_type": pa.array(types),
            "buyer_value": pa.array(values),
            "ordered_at": pa.array(ordered, pa.timestamp("s")),
            "total_fen": pa.array(total),
            "paid_fen": pa.array(total - rng.integers(0, 100, rows)),
            "store_id": pa.array(np.where(kind == 0, "S1", None)),
        }
    )
    pq.write_table(table, path)
    return table


def make_members(path: Path, rows: int, duplicates: float, seed: int = 7) -> pa.Table:
    """A member master of `rows` records; a `duplicates` share repeat an earlier record's
    card and phone under a new member_ref (the same person entered twice)."""
    rng = np.random.default_rng(seed)
    person = np.arange(rows)
    dup = rng.random(rows) < duplicates
    dup[0] = False
    person[dup] = rng.integers(0, np.maximum(1, np.flatnonzero(dup)), int(dup.sum()))
    start = np.datetime64("2020-01-01T00:00:00")
    registered = start + rng.integers(0, 1500 * 86400, rows).astype("timedelta64[s]")
    family = np.array(["王", "李", "张", "刘", "陈", "欧阳", "诸葛"])[person % 7]
    given = np.array(["伟", "芳", "娜", "敏", "静", "丽强", "磊"])[(person // 7) % 7]
    table = pa.table(
        {
            "member_ref": pa.array(np.char.add("M", np.arange(rows).astype(str))),
            "brand_id": pa.array(np.where(person % 2 == 0, "B1", "B2")),
            "registered_at": pa.array(registered, pa.timestamp("s")),
            "channel": pa.array(np.full(rows, "pos")),
            "card": pa.array(np.char.add("C", person.astype(str))),
            "phone": pa.array(np.char.add("139", np.char.zfill(person.astype(str), 8))),
            "email": pa.array(np.char.add(np.char.add("P", person.astype(str)), "@Example.com")),
            "given_name": pa.array(given),
            "family_name": pa.array(family),
            "address": pa.array(np.char.add("南京路 ", person.astype(str))),
            "postcode": pa.array(np.char.zfill((person % 999_999).astype(str), 6)),
        }
    )
    pq.write_table(table, path)
    return table


def moved_cards(table: pa.Table, path: Path) -> None:
    """The same master with every thousandth member on a new card (a card change)."""
    cards = np.array(table.column("card").to_pylist(), dtype=object)
    cards[::1000] = np.char.add(cards[::1000].astype(str), "-NEW")
    pq.write_table(table.set_column(4, "card", pa.array(cards.astype(str))), path)


def run_members(url: str, label: str, data: Path, table: pa.Table) -> dict[str, object]:
    engine = make_engine(url)
    upgrade(engine)
    group = f"bench-{uuid.uuid4().hex[:6]}"
    ensure_group(engine, group)
    vault = Vault(os.urandom(32))
    import_directory(engine, vault, group, data / "ref", data / "rejects")
    files = data / "members.parquet", data / "members_moved.parquet"
    first = import_file(engine, vault, group, "members", files[0], data / "rejects")
    again = import_file(engine, vault, group, "members", files[1], data / "rejects")
    with engine.connect() as conn:
        ghosts = conn.execute(
            text(
                "SELECT COUNT(*) FROM members m WHERE m.group_id = :g AND m.status = 'active' "
                "AND NOT EXISTS (SELECT 1 FROM identities i WHERE i.member_id = m.member_id)"
            ),
            {"g": group},
        ).scalar_one()
    engine.dispose()
    rows = table.num_rows
    return {
        "store": label,
        "rows": rows,
        "siyu_seconds": round(first.seconds, 2),
        "siyu_rows_per_s": round(rows / first.seconds),
        "reimport_rows_per_s": round(rows / again.seconds),
        "outcomes": getattr(first, "outcomes", {}),
        "reimport_outcomes": getattr(again, "outcomes", {}),
        "empty_active_members": int(ghosts),
        "accepted": first.accepted,
        "rejected": first.rejected,
    }


def baseline(url: str, table: pa.Table) -> float:
    """Seconds for the raw load of the same rows: the database's own ceiling."""
    engine = make_engine(url)
    name = f"bench_raw_{uuid.uuid4().hex[:6]}"
    cols = ", ".join(f"{c} TEXT" for c in table.column_names)
    with engine.begin() as conn:
        unlogged = "UNLOGGED " if conn.dialect.name == "postgresql" else ""
        conn.execute(text(f"CREATE {unlogged}TABLE {name} ({cols})"))
    started = time.perf_counter()
    with engine.begin() as conn:
        dbapi = conn.connection.driver_connection
        if conn.dialect.name == "postgresql":
            buf = io.BytesIO()
            pacsv.write_csv(table, buf, write_options=pacsv.WriteOptions(include_header=False))
            with dbapi.cursor() as cur, cur.copy(f"COPY {name} FROM STDIN (FORMAT csv)") as cp:
                cp.write(buf.getvalue())
        else:
            columns = [c.cast(pa.string()).to_pylist() for c in table.columns]
            marks = ", ".join("?" for _ in columns)
            dbapi.cursor().executemany(
                f"INSERT INTO {name} VALUES ({marks})", zip(*columns, strict=True)
            )
    seconds = time.perf_counter() - started
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {name}"))
    engine.dispose()
    return seconds


def run(url: str, label: str, data: Path, table: pa.Table) -> dict[str, object]:
    engine = make_engine(url)
    upgrade(engine)
    group = f"bench-{uuid.uuid4().hex[:6]}"
    ensure_group(engine, group)
    vault = Vault(os.urandom(32))
    ref = data / "ref"
    import_directory(engine, vault, group, ref, data / "rejects")
    first = import_file(engine, vault, group, "orders", data / "orders.parquet", data / "rejects")
    again = import_file(engine, vault, group, "orders", data / "orders.parquet", data / "rejects")
    engine.dispose()
    raw = baseline(url, table)
    rows = table.num_rows
    return {
        "store": label,
        "rows": rows,
        "siyu_seconds": round(first.seconds, 2),
        "siyu_rows_per_s": round(rows / first.seconds),
        "reimport_rows_per_s": round(rows / again.seconds),
        "reimport_inserted": again.inserted,
        "raw_seconds": round(raw, 2),
        "raw_rows_per_s": round(rows / raw),
        "siyu_vs_raw": round(raw / first.seconds, 3),
        "accepted": first.accepted,
        "rejected": first.rejected,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--kind", choices=("orders", "members"), default="orders")
    parser.add_argument("--duplicates", type=float, default=0.02)
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("SIYU_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        write_reference(data / "ref")
        if args.kind == "members":
            members = make_members(data / "members.parquet", args.rows, args.duplicates)
            moved_cards(members, data / "members_moved.parquet")
            found = [run_members(f"sqlite:///{data / 'bench.db'}", "SQLite", data, members)]
            with temporary_database(args.pg_url) as url:
                found.append(run_members(url, "PostgreSQL", data, members))
            print(json.dumps(found, ensure_ascii=False))
            return
        table = make_orders(data / "orders.parquet", args.rows)
        results = []
        if not args.skip_sqlite:
            results.append(run(f"sqlite:///{data / 'bench.db'}", "SQLite", data, table))
        with temporary_database(args.pg_url) as url:
            results.append(run(url, "PostgreSQL", data, table))
    print("| store | order rows | siyu rows/s | re-import rows/s | raw load rows/s | siyu / raw |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['store']} | {r['rows']:,} | {r['siyu_rows_per_s']:,} | "
            f"{r['reimport_rows_per_s']:,} | {r['raw_rows_per_s']:,} | {r['siyu_vs_raw']} |"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
