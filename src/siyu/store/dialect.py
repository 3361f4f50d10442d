"""The few SQL spellings that differ between SQLite and PostgreSQL, one class per dialect.

Domain code asks `dialect_of(conn)` for a capability (a row lock, an advisory lock, one
statement per batch) instead of testing the dialect's name, so every difference between
the two stores is written here once. On SQLite every transaction starts with BEGIN
IMMEDIATE (see `store.engine`): a writer holds the one write lock from its first read, so
row and advisory locks have nothing to add there and spell as nothing.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, ClassVar, TypeVar

import numpy as np
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    FromClause,
    Insert,
    Join,
    Select,
    Table,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles

from siyu.errors import ConfigError

# The brand group bound as a parameter in a SELECT list. PostgreSQL must be told its type
# when the same parameter also appears in a WHERE clause (else "inconsistent types").
GROUP = "CAST(:g AS VARCHAR(64))"

Query = TypeVar("Query", bound=Select[Any])


class _StagedJoin(Join):
    """A join whose left side (a staged batch) the database must loop over first; see
    `Dialect.staged_join`."""

    inherit_cache = True


@compiles(_StagedJoin, "sqlite")
def _sqlite_staged_join(element: _StagedJoin, compiler: Any, **kw: Any) -> str:
    kw["asfrom"] = True
    left = element.left._compiler_dispatch(compiler, **kw)
    right = element.right._compiler_dispatch(compiler, **kw)
    assert element.onclause is not None  # join_staged always gives one
    on = element.onclause._compiler_dispatch(
        compiler, **{k: v for k, v in kw.items() if k != "asfrom"}
    )
    return f"{left} CROSS JOIN {right} ON {on}"


def join_staged(staged: FromClause, stored: FromClause, on: ColumnElement[bool]) -> Join:
    """`staged JOIN stored ON on`, with the staged batch looped over first on every
    dialect (`Dialect.staged_join`)."""
    return _StagedJoin(staged, stored, on)


class Dialect(ABC):
    """What domain code needs to know about the store's SQL; one subclass per dialect."""

    name: ClassVar[str]

    row_lock: ClassVar[str] = ""
    """Suffix of a SELECT that locks the rows it reads until commit (PostgreSQL's
    `FOR UPDATE`); empty on SQLite, where BEGIN IMMEDIATE already holds the write lock."""

    row_lock_skip_locked: ClassVar[str] = ""
    """Suffix of a SELECT that locks its rows and passes over rows another transaction
    holds, so several workers share a queue (PostgreSQL); empty on SQLite (one writer)."""

    staged_join: ClassVar[str] = "JOIN"
    """The join keyword from a staged batch to a stored table, the batch looped over first:
    SQLite's planner has no statistics for a temporary table and would otherwise scan the
    batch once per stored row of the group (quadratic: 16 s instead of 0.02 s for 20,000
    rows); SQLite's `CROSS JOIN` fixes the loop order. PostgreSQL's planner chooses well."""

    supports_copy: ClassVar[bool] = False
    """Whether bulk rows travel with COPY (PostgreSQL: an order of magnitude faster than
    tuples), rather than executemany and fetched tuples (SQLite, in-process)."""

    one_statement_per_batch: ClassVar[bool] = False
    """Whether a batch of rows is written with one statement over a JSON or array
    parameter (PostgreSQL: parsed and planned once, one round trip) rather than a
    statement per row (SQLite: in-process, a statement is a function call)."""

    def lock_rows_in_order(self, *columns: str) -> str:
        """`ORDER BY columns` plus the row lock: rows locked in key order, so two
        transactions locking overlapping rows cannot deadlock."""
        return f"ORDER BY {', '.join(columns)}{self.row_lock}"

    def with_row_lock(self, query: Query) -> Query:
        """A Core SELECT that locks its rows (see `row_lock`); unchanged on SQLite."""
        return query

    def advisory_lock(self, conn: Connection, name: str, key: str, shared: bool = False) -> None:
        """Hold the lock named `name:key` until the transaction ends (the shared side
        lets holders of it run together). PostgreSQL only: SQLite serialises writers."""
        return None

    @abstractmethod
    def epoch_seconds(self, column: str) -> str:
        """An expression giving a timestamp column as integer seconds since 1970 (UTC)."""

    def as_int(self, boolean_column: str) -> str:
        """A boolean column as 0/1 (the same on both; drivers read booleans differently)."""
        return f"(CASE WHEN {boolean_column} THEN 1 ELSE 0 END)"

    def any_value(self, column: str) -> str:
        """An aggregate picking one value of a group (MIN, but PostgreSQL 15 has no min(bytea))."""
        return f"MIN({column})"

    def materialized(self) -> str:
        """The keyword after `name AS` that computes a CTE once, as a table of its own
        (PostgreSQL). SQLite: none; it keeps a DISTINCT subquery apart by itself, and the
        keyword needs SQLite 3.35."""
        return ""

    @abstractmethod
    def insert_ignore(self, table: Table, index_elements: list[str] | None = None) -> Insert:
        """INSERT ... ON CONFLICT DO NOTHING (SQLAlchemy spells it per dialect)."""

    @abstractmethod
    def new_ids(self, conn: Connection, table: str, column: str, n: int) -> np.ndarray:
        """`n` unused values for the integer key `table.column`, to insert explicitly."""

    def tune_for_bulk_load(self, conn: Connection) -> None:
        """Settings for one transaction of a bulk load whose loaders are idempotent
        (PostgreSQL only: SQLite has no per-transaction memory or commit settings)."""
        return None

    def tune_for_set_statement(self, conn: Connection, work_mem: str) -> None:
        """Settings for one transaction running one statement over millions of rows
        (PostgreSQL only): sorts and hash tables of `work_mem` each, in memory rather
        than spilled to disk in batches, and no JIT (whose compile time the planner's
        row estimates of such statements set off for nothing)."""
        return None

    @contextmanager
    def grouping_by_sort(self, conn: Connection) -> Iterator[None]:
        """Statements run inside group by sorting, not by hashing (PostgreSQL; SQLite
        groups by sorting anyway). For a GROUP BY of tens of millions of rows into
        millions of groups: a hash table of that many groups is read at random, each
        row a cache miss, where a sort reads and writes in runs; the planner, which
        cannot estimate how many groups a UNION ALL holds, would choose the hash
        (docs/benchmarks.md, issue #18: 30 s against 15 s at 10M members)."""
        yield

    @abstractmethod
    def id_set_agg(self, *values: str) -> str:
        """An aggregate packing each row's `values` (integers, NULL allowed) into one
        `store.metadata.IdSet` value: a compact set of members, read back by
        `id_set_rows`. The order of its entries is not kept."""

    @abstractmethod
    def id_set_rows(self, column: str, width: int) -> tuple[str, list[str]]:
        """How to read an `IdSet` column (`alias.name`) of `width` values an entry back as
        rows: the text to write after its table in a FROM clause (one row per entry), and
        the SQL of each entry's values in the order they were packed."""

    def refresh_statistics(self, conn: Connection, *tables: str) -> None:
        """Let the planner see what was just written to `tables` (PostgreSQL's ANALYZE:
        a sample, not a scan). A temporary table is never analysed by autovacuum, and a
        table filled in the same transaction or minutes before still has the statistics
        of when it was empty, so the planner loops over it as if it held a row. SQLite:
        nothing (the staged batch is looped over first anyway, `staged_join`)."""
        return None

    @abstractmethod
    def plus_days(self, column: str, days: str) -> str:
        """An expression: the timestamp `column` plus `days` (an integer expression) days."""

    def time_param(self, value: datetime) -> Any:
        """A timestamp as a raw `text()` parameter compared with stored timestamps.
        PostgreSQL: the value itself."""
        return value

    @abstractmethod
    def sha256_hex(self, expression: str) -> str:
        """An expression: the SHA-256 of the text `expression` (UTF-8), as 64 hex digits."""

    @abstractmethod
    def hash_bucket(self, expression: str, buckets: int) -> str:
        """An expression: the first 8 bytes of the SHA-256 of the text `expression`
        (UTF-8) as an unsigned big-endian integer, modulo `buckets` (what Python's
        `int.from_bytes(sha256(text).digest()[:8], "big") % buckets` gives)."""

    @abstractmethod
    def new_id_sql(self, conn: Connection, table: str, column: str, seq: str) -> str:
        """An expression giving each row of one INSERT ... SELECT an unused value of the
        integer key `table.column`, to insert explicitly (`seq`: the rows' 1..n)."""


class SqliteDialect(Dialect):
    name = "sqlite"
    staged_join = "CROSS JOIN"

    def epoch_seconds(self, column: str) -> str:
        return f"CAST(strftime('%s', {column}) AS INTEGER)"

    def insert_ignore(self, table: Table, index_elements: list[str] | None = None) -> Insert:
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=index_elements)

    def id_set_agg(self, *values: str) -> str:
        return f"json_group_array(json_array({', '.join(values)}))"

    def id_set_rows(self, column: str, width: int) -> tuple[str, list[str]]:
        entry = f"{column.split('.')[0]}_entry"
        return (
            f"JOIN json_each({column}) AS {entry}",
            [f"json_extract({entry}.value, '$[{i}]')" for i in range(width)],
        )

    def time_param(self, value: datetime) -> Any:
        # As SQLAlchemy's DateTime stores it ('YYYY-MM-DD HH:MM:SS.ffffff'): sqlite3's own
        # adapter drops a zero fraction ('... 10:00:00'), and that text sorts before the
        # stored '... 10:00:00.000000', so `stored <= :at` failed at the very second.
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")

    def plus_days(self, column: str, days: str) -> str:
        # the stored text keeps its fraction of a second ('YYYY-MM-DD HH:MM:SS.ffffff')
        return (
            f"(strftime('%Y-%m-%d %H:%M:%S', {column}, '+' || ({days}) || ' days') "
            f"|| substr({column}, 20))"
        )

    def sha256_hex(self, expression: str) -> str:
        return f"siyu_sha256({expression})"  # Python's, registered by store.engine

    def hash_bucket(self, expression: str, buckets: int) -> str:
        return f"siyu_hash_bucket({expression}, {int(buckets)})"  # store.engine's

    def new_id_sql(self, conn: Connection, table: str, column: str, seq: str) -> str:
        # One writer at a time (BEGIN IMMEDIATE): the values above the maximum are free.
        top = conn.execute(text(f"SELECT COALESCE(MAX({column}), 0) FROM {table}")).scalar_one()
        return f"({int(top)} + {seq})"

    def new_ids(self, conn: Connection, table: str, column: str, n: int) -> np.ndarray:
        # One writer at a time (BEGIN IMMEDIATE): the values above the maximum are free.
        top = conn.execute(text(f"SELECT COALESCE(MAX({column}), 0) FROM {table}")).scalar_one()
        return np.arange(top + 1, top + 1 + n, dtype=np.int64)


class PostgresDialect(Dialect):
    name = "postgresql"
    row_lock = " FOR UPDATE"
    row_lock_skip_locked = " FOR UPDATE SKIP LOCKED"
    supports_copy = True
    one_statement_per_batch = True

    def with_row_lock(self, query: Query) -> Query:
        return query.with_for_update()

    def refresh_statistics(self, conn: Connection, *tables: str) -> None:
        if tables:
            conn.execute(text(f"ANALYZE {', '.join(tables)}"))

    def advisory_lock(self, conn: Connection, name: str, key: str, shared: bool = False) -> None:
        if "'" in name:
            raise ValueError(f"advisory lock name {name!r}: no quotes")
        function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        conn.execute(text(f"SELECT {function}(hashtext('{name}:' || :g))"), {"g": key})

    def epoch_seconds(self, column: str) -> str:
        return f"CAST(EXTRACT(EPOCH FROM {column}) AS BIGINT)"

    def any_value(self, column: str) -> str:
        # PostgreSQL 15 has no min(bytea)
        return f"(array_agg({column}))[1]"

    def materialized(self) -> str:
        # A CTE used once is folded into the query around it (PostgreSQL >= 12); with few
        # statistics the planner may then re-run it for every outer row.
        return "MATERIALIZED"

    def insert_ignore(self, table: Table, index_elements: list[str] | None = None) -> Insert:
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=index_elements)

    def id_set_agg(self, *values: str) -> str:
        # a two-dimensional BIGINT[]: one sub-array of the values per row
        return f"array_agg(ARRAY[{', '.join(values)}])"

    def id_set_rows(self, column: str, width: int) -> tuple[str, list[str]]:
        entry = f"{column.split('.')[0]}_entry"
        return (
            f"CROSS JOIN LATERAL generate_subscripts({column}, 1) AS {entry}(i)",
            [f"{column}[{entry}.i][{i}]" for i in range(1, width + 1)],
        )

    def plus_days(self, column: str, days: str) -> str:
        return f"({column} + ({days}) * INTERVAL '1 day')"

    def sha256_hex(self, expression: str) -> str:
        return f"encode(sha256(convert_to({expression}, 'UTF8')), 'hex')"

    def hash_bucket(self, expression: str, buckets: int) -> str:
        # The first 8 bytes as a bigint (signed: bit(64) wraps above 2^63), made unsigned
        # by adding 2^64 modulo 2^64 in numeric, with the digest taken once and no
        # subquery: 1.2 us a row, against 2.0 us for two 32-bit halves of the digest
        # taken once in a scalar subquery (the digest alone is 0.7 us).
        two_64 = 2**64
        first8 = f"substring(sha256(convert_to({expression}, 'UTF8')) from 1 for 8)"
        signed = f"('x' || encode({first8}, 'hex'))::bit(64)::bigint"
        return f"CAST((({signed}::numeric + {two_64}) % {two_64} % {int(buckets)}) AS BIGINT)"

    def new_id_sql(self, conn: Connection, table: str, column: str, seq: str) -> str:
        # From the key's own sequence: concurrent writers never get the same values.
        return f"nextval(pg_get_serial_sequence('{table}', '{column}'))"

    def new_ids(self, conn: Connection, table: str, column: str, n: int) -> np.ndarray:
        # From the key's own sequence: concurrent writers never get the same values.
        ids = (
            conn.execute(
                text(
                    f"SELECT nextval(pg_get_serial_sequence('{table}', '{column}')) "
                    "FROM generate_series(1, :n)"
                ),
                {"n": n},
            )
            .scalars()
            .all()
        )
        return np.array(ids, dtype=np.int64)

    def tune_for_bulk_load(self, conn: Connection) -> None:
        # Sorts of a 100k-row batch fit in memory; and a batch need not wait for its WAL
        # flush: after a crash, running the load again restores any batch lost.
        conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")

    def tune_for_set_statement(self, conn: Connection, work_mem: str) -> None:
        if not re.fullmatch(r"\d+[kMG]B", work_mem):
            raise ValueError(f"work_mem {work_mem!r}: a size like '256MB'")
        conn.exec_driver_sql(f"SET LOCAL work_mem = '{work_mem}'")
        conn.exec_driver_sql("SET LOCAL jit = off")

    @contextmanager
    def grouping_by_sort(self, conn: Connection) -> Iterator[None]:
        before = conn.exec_driver_sql("SHOW enable_hashagg").scalar()
        conn.exec_driver_sql("SET LOCAL enable_hashagg = off")
        yield
        # not in a finally: after an error the transaction is aborted and takes the
        # setting with it
        conn.exec_driver_sql(f"SET LOCAL enable_hashagg = {'on' if before == 'on' else 'off'}")


_DIALECTS: dict[str, Dialect] = {d.name: d for d in (SqliteDialect(), PostgresDialect())}


def dialect_of(conn_or_engine: Connection | Engine) -> Dialect:
    """The store dialect of a connection or engine (one shared instance per dialect)."""
    name = conn_or_engine.dialect.name
    try:
        return _DIALECTS[name]
    except KeyError:
        raise ConfigError(f"store dialect {name!r} is not supported (sqlite, postgresql)") from None
