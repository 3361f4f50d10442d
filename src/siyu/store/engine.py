"""Build the SQLAlchemy engine for the configured store and bring its schema up to date."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from siyu.errors import ConfigError


def normalise_url(url: str) -> str:
    """Pin the drivers we support: psycopg 3 for PostgreSQL, the stdlib for SQLite."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"SIYU_DATABASE_URL: backend {parsed.get_backend_name()!r} is not supported "
            "(use sqlite:///path.db or postgresql://...)"
        )
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the settings siyu relies on for each dialect."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        return _sqlite_engine(url, **kwargs)
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take over transaction control from pysqlite so that every transaction starts
        # with BEGIN IMMEDIATE: a writer then holds the write lock from its first read,
        # which is how SQLite settles races (no read-then-upgrade deadlocks).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        try:
            cur.execute("SELECT exp(0)")
        except Exception:
            # SQLite builds without its math functions: the affinity score's decay
            # (orders.scoring) needs exp(), so it is supplied from Python's.
            dbapi_conn.create_function("exp", 1, math.exp, deterministic=True)
        # The SHA-256 of a text, which PostgreSQL has built in (Dialect.sha256_hex): the
        # request digests of postings made by the set (guides.commission_postings).
        dbapi_conn.create_function("siyu_sha256", 1, _sha256_hex, deterministic=True)
        # ... and the bucket of a text by it (Dialect.hash_bucket): the global holdout's
        # members among a planning's millions (campaigns.assignment.bucket_sql)
        dbapi_conn.create_function("siyu_hash_bucket", 2, _hash_bucket, deterministic=True)
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _sha256_hex(value: str | None) -> str | None:
    return None if value is None else hashlib.sha256(value.encode()).hexdigest()


def _hash_bucket(value: str | None, buckets: int) -> int | None:
    if value is None:
        return None
    return int.from_bytes(hashlib.sha256(value.encode()).digest()[:8], "big") % buckets
