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
