"""Async reads for the service's hot paths, behind one narrow port.

The API's read endpoints are `async` so that an indexed read does not hop to the thread
pool. On PostgreSQL the read must then not block the event loop while the server
answers: it goes through psycopg's async connection pool, so one worker overlaps many
requests' round trips. On SQLite a read is a page lookup in a local file that takes
microseconds and there is no server to wait for, so it runs inline on the sync engine.

Queries are written once with `:name` parameters, as everywhere else in siyu; `Sql`
derives the psycopg form (`%(name)s`, `IN :list` as `= ANY(%(list)s)`) and the SQLite
form (`IN :list` as one JSON parameter read by `json_each`: SQLite caps bound parameters,
at 32,766 by default, and a report's member list can name more). Rows come back with attribute
access (`row.member_id`) on both engines.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, String, TextClause, bindparam, text
from sqlalchemy.types import TypeDecorator

_PARAM = re.compile(r"(?<![:\w]):(\w+)")
_IN_LIST = re.compile(r"\bIN\s+:(\w+)", re.IGNORECASE)


class _JsonList(TypeDecorator[Any]):
    """A list bound as one JSON text parameter (for SQLite's `json_each`)."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str:
        return json.dumps(list(value))


class Sql:
    """A read query written once with `:name` parameters; `IN :name` takes a list."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        lists = _IN_LIST.findall(sql)
        self.clause: TextClause = text(sql)
        self.sqlite_clause = self.clause
        if lists:
            self.clause = self.clause.bindparams(*(bindparam(n, expanding=True) for n in lists))
            each = _IN_LIST.sub(lambda m: f"IN (SELECT value FROM json_each(:{m.group(1)}))", sql)
            self.sqlite_clause = text(each).bindparams(
                *(bindparam(n, type_=_JsonList()) for n in lists)
            )
        pg = _IN_LIST.sub(lambda m: f"= ANY(:{m.group(1)})", sql.replace("%", "%%"))
        self.pyformat = _PARAM.sub(lambda m: f"%({m.group(1)})s", pg)

    def clause_for(self, conn: Connection) -> TextClause:
        """The form for a sync connection: SQLite's takes lists of any length."""
        return self.sqlite_clause if conn.dialect.name == "sqlite" else self.clause

    def __repr__(self) -> str:
        return f"Sql({self.sql!r})"


class Reader(Protocol):
    async def first(self, query: Sql, params: Mapping[str, Any]) -> Any | None: ...

    async def all(self, query: Sql, params: Mapping[str, Any]) -> list[Any]: ...


class Reads(Protocol):
    def connection(self) -> AbstractAsyncContextManager[Reader]: ...

    async def close(self) -> None: ...


def make_reads(engine: Engine, pool_size: int = 8) -> Reads:
    if engine.dialect.name == "postgresql":
        return PostgresReads(engine, pool_size)
    return EngineReads(engine)


class EngineReads:
    """Reads on the sync engine, inline (SQLite: no server round trip to overlap)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Reader]:
        # Autocommit: no BEGIN IMMEDIATE write lock for a read.
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            yield _EngineReader(conn)

    async def close(self) -> None:
        return None


class _EngineReader:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def first(self, query: Sql, params: Mapping[str, Any]) -> Any | None:
        return self.conn.execute(query.clause_for(self.conn), dict(params)).first()

    async def all(self, query: Sql, params: Mapping[str, Any]) -> list[Any]:
        return list(self.conn.execute(query.clause_for(self.conn), dict(params)).all())


class PostgresReads:
    """psycopg's async pool, opened on first use in the worker's own event loop (a pool
    belongs to one loop, and uvicorn starts the loop after the app is built)."""

    def __init__(self, engine: Engine, pool_size: int) -> None:
        self.conninfo = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        self.pool_size = pool_size
        self._pool: Any = None
        self._opening: asyncio.Lock | None = None

    async def _open(self) -> Any:
        from psycopg.rows import namedtuple_row
        from psycopg_pool import AsyncConnectionPool

        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                pool = AsyncConnectionPool(
                    self.conninfo,
                    min_size=self.pool_size,
                    max_size=self.pool_size,
                    open=False,
                    kwargs={"autocommit": True, "row_factory": namedtuple_row},
                    name="siyu-reads",
                )
                await pool.open()
                self._pool = pool
        return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Reader]:
        pool = self._pool or await self._open()
        async with pool.connection() as conn:
            yield _PostgresReader(conn)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


class _PostgresReader:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def first(self, query: Sql, params: Mapping[str, Any]) -> Any | None:
        cursor = await self.conn.execute(query.pyformat, params)
        return await cursor.fetchone()

    async def all(self, query: Sql, params: Mapping[str, Any]) -> list[Any]:
        cursor = await self.conn.execute(query.pyformat, params)
        return list(await cursor.fetchall())
