"""A throw-away PostgreSQL database for one benchmark run, dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text

from siyu.store.engine import make_engine


@contextmanager
def temporary_database(server_url: str) -> Iterator[str]:
    """Create a database on the server of `server_url`, yield its URL, drop it."""
    admin = create_engine(make_engine(server_url).url, isolation_level="AUTOCOMMIT")
    name = f"siyu_bench_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def pgbench_tps(url: str, script: str, clients: int, seconds: int) -> float:
    """Transactions per second of a custom pgbench script (C, prepared statements): the
    in-run baseline of the benchmarks that compare siyu with the raw database."""
    import os
    import re
    import subprocess
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as fh:
        fh.write(script)
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    try:
        out = subprocess.run(
            [
                "pgbench",
                "-n",
                "-M",
                "prepared",
                "-c",
                str(clients),
                "-j",
                "2",
                "-T",
                str(seconds),
                "-f",
                fh.name,
                dsn,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(fh.name)
    found = re.search(r"tps = ([\d.]+)", out)
    if found is None:
        raise RuntimeError(f"pgbench printed no tps:\n{out}")
    return float(found.group(1))
