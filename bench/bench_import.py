"""Bulk import throughput: order rows per second into SQLite and PostgreSQL.

The baseline, measured in the same run on the same rows, is the raw load with no
validation, no identity handling and no constraints: `COPY` into an unlogged table with no
indexes on PostgreSQL, `executemany` into a bare table on SQLite. The ratio says what
siyu's validation, identity upserts and idempotent inserts cost on top of the database's
own ceiling.

    python bench/bench_import.py --rows 1000000 [--pg-url postgresql://...]
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
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("SIYU_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        write_reference(data / "ref")
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
