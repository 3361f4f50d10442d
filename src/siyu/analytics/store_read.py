"""The store side of landing: partition counts, snapshot fingerprints and rows as Arrow.

Reads go through the driver connection, not a SQLAlchemy transaction: on SQLite the
engine opens every transaction with BEGIN IMMEDIATE (the write lock), and a landing that
held it would stall imports for its whole length; a plain SELECT in WAL mode reads a
snapshot and blocks no writer. PostgreSQL streams rows with COPY ... TO STDOUT, parsed by
Arrow's CSV reader in blocks (an order of magnitude faster than fetching tuples, and the
memory stays one block).

Times: SQLite keeps them as ISO text ('2024-01-02 10:00:00.000000'), which Arrow parses
and whose first ten characters are the day; PostgreSQL sends integer microseconds since
1970, so no DateStyle setting stands between it and the warehouse. The day partition is
an integer (days since 1970) to every caller, whatever the dialect.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from sqlalchemy import Engine

from siyu.analytics.schema import PARTITION, Col, Fact, Snapshot, day_number, day_of
from siyu.store.dialect import dialect_of

DAY_MICROS = 86_400_000_000
MAX_RANGES = 8  # OR-ed day ranges per fetch; beyond, one wider range filtered in Arrow
# The fingerprint's checksum: key mod P1 times (weighted watched values) mod P2. Each term
# stays below 2^30, so the sum fits in 64 bits up to billions of rows on every engine.
P1, P2 = 1021, 1_000_003
WEIGHTS = (3, 5, 7, 11, 13)


def micros(column: str) -> str:
    """A PostgreSQL timestamp as integer microseconds since 1970 (naive times are UTC);
    EXTRACT returns an exact numeric (PostgreSQL >= 14), so this is exact."""
    return f"CAST(EXTRACT(EPOCH FROM {column}) * 1000000 AS BIGINT)"


class StoreReader:
    """Queries for one brand group of one store (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine, group_id: str, since_day: int | None = None) -> None:
        self.engine = engine
        # PostgreSQL streams rows with COPY: times travel as integer microseconds and days
        # as integers, and its driver (psycopg) takes %-style parameters; SQLite fetches
        # tuples with times and days as ISO text (see the module docstring).
        self.copy = dialect_of(engine).supports_copy
        self.group_id = group_id
        self.since_day = since_day

    def group_exists(self) -> bool:
        sql = "SELECT COUNT(*) FROM brand_groups WHERE group_id = :g"
        return bool(self.query(sql)[0][0])

    # --- facts -------------------------------------------------------------------------

    def fact_counts(self, fact: Fact) -> dict[int, int]:
        """Rows per day partition (days before `since_day` left out)."""
        day = self._day(fact.time)
        sql = f"SELECT {day}, COUNT(*) FROM {fact.source} WHERE {self._scope(fact)} GROUP BY 1"
        return {self._day_number(d): int(n) for d, n in self.query(sql)}

    def fact_rows(
        self, fact: Fact, days: set[int], batch_rows: int, every_day: bool = False
    ) -> Iterator[pa.Table]:
        """Every row of the given day partitions, in Arrow batches of `fact.schema()`.
        `every_day` says the days are all the store has (a first landing): no day filter,
        which SQLite would otherwise evaluate once per range for every row."""
        if not days:
            return
        day = self._day(fact.time)
        select = ", ".join([*(self._column(c.source or fact.alias, c) for c in fact.columns), day])
        sql = f"SELECT {select} FROM {fact.source} WHERE {self._scope(fact)}"
        if not every_day:
            ranges = " OR ".join(
                f"{day} BETWEEN {self._day_literal(lo)} AND {self._day_literal(hi)}"
                for lo, hi in _ranges(sorted(days))
            )
            sql += f" AND ({ranges})"
        columns = (*fact.columns, Col(PARTITION, "int" if self.copy else "text"))
        wanted = pa.array(sorted(days), pa.int32()).cast(pa.date32())
        for raw in self._stream(sql, columns, batch_rows):
            typed = _typed(raw, fact.columns, partition=True)
            # the ranges may cover days that did not change: those stay as they are
            typed = typed.filter(pc.is_in(typed[PARTITION], value_set=wanted))
            if typed.num_rows:
                yield typed

    # --- snapshots ---------------------------------------------------------------------

    def fingerprint(self, snap: Snapshot) -> tuple[int, int, int]:
        """(rows, max key, checksum of the watched columns); `sinks` computes the same
        integers from the landed snapshot."""
        a = snap.alias
        sql = (
            f"SELECT COUNT(*), COALESCE(MAX({a}.{snap.key}), 0), "
            f"COALESCE(SUM({checksum_term(snap, self._value)}), 0) "
            f"FROM {snap.source} WHERE {a}.group_id = :g"
        )
        rows, top, check = self.query(sql)[0]
        return int(rows), int(top), int(check)

    def snapshot_rows(self, snap: Snapshot, batch_rows: int) -> Iterator[pa.Table]:
        yield from self.select_rows(
            snap.source, snap.alias, [(snap.alias, c) for c in snap.columns], batch_rows
        )

    def select_rows(
        self, source: str, alias: str, columns: Sequence[tuple[str, Col]], batch_rows: int
    ) -> Iterator[pa.Table]:
        """Rows of `source` (a FROM clause; `alias` carries the group_id) as Arrow tables of
        `columns`, each (the alias it is read from, the column): the group's per-member
        tables that are not landed (segments.sources) read the way landing does."""
        cols = [c for _, c in columns]
        select = ", ".join(self._column(a, c) for a, c in columns)
        sql = f"SELECT {select} FROM {source} WHERE {alias}.group_id = :g"
        for raw in self._stream(sql, cols, batch_rows):
            yield _typed(raw, cols, partition=False)

    # --- SQL ---------------------------------------------------------------------------

    def _day(self, column: str) -> str:
        if self.copy:
            return f"({micros(column)} / {DAY_MICROS})"
        return f"substr({column}, 1, 10)"

    def _day_literal(self, number: int) -> str:
        return str(number) if self.copy else f"'{day_of(number)}'"

    def _day_number(self, value: Any) -> int:
        if self.copy:
            return int(value)
        return day_number(date.fromisoformat(value))

    def _scope(self, fact: Fact) -> str:
        where = f"{fact.alias}.group_id = :g"
        if self.since_day is not None:
            where += f" AND {self._day(fact.time)} >= {self._day_literal(self.since_day)}"
        return where

    def _column(self, alias: str, col: Col) -> str:
        ref = f"{alias}.{col.name}"
        if col.kind == "time" and self.copy:
            return micros(ref)
        if col.kind == "bool":
            return f"(CASE WHEN {ref} THEN 1 ELSE 0 END)"
        return ref

    def _value(self, ref: str, kind: str) -> str:
        # whole seconds: what both dialects and DuckDB agree on to the unit
        if kind == "time":
            seconds = f"{micros(ref)} / 1000000" if self.copy else f"strftime('%s', {ref})"
            return f"COALESCE(CAST({seconds} AS BIGINT), 0)"
        if kind == "bool":
            return f"(CASE WHEN {ref} THEN 1 ELSE 0 END)"
        return f"COALESCE({ref}, 0)"

    def store_cities(self) -> pa.Table:
        """The group's stores and their cities (catalog reference data, not landed: the
        same-city KPI joins it at query time)."""
        rows = self.query("SELECT store_id, city FROM stores WHERE group_id = :g")
        return pa.table(
            {
                "store_id": pa.array([r[0] for r in rows], pa.string()),
                "city": pa.array([r[1] for r in rows], pa.string()),
            }
        )

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of a query with `:g` bound to the group (a short read, no write lock)."""
        raw = self.engine.raw_connection()
        try:
            cursor = raw.cursor()
            if self.copy:
                # psycopg reads % as a placeholder: the modulo of the checksum is %%
                cursor.execute(sql.replace("%", "%%").replace(":g", "%(g)s"), {"g": self.group_id})
            else:
                cursor.execute(sql, {"g": self.group_id})
            rows = [tuple(r) for r in cursor.fetchall()]
            cursor.close()
            return rows
        finally:
            raw.rollback()
            raw.close()

    def _stream(self, sql: str, columns: Sequence[Col], batch_rows: int) -> Iterator[pa.Table]:
        # what travels: text as text; integers, booleans and PostgreSQL times as integers;
        # SQLite times and days as their ISO text (see the module docstring)
        schema = pa.schema(
            [
                (
                    c.name,
                    pa.string()
                    if c.kind == "text" or (c.kind == "time" and not self.copy)
                    else pa.int64(),
                )
                for c in columns
            ]
        )
        raw = self.engine.raw_connection()
        try:
            if self.copy:
                yield from self._copy(raw, sql, schema, batch_rows)
            else:
                cursor = raw.cursor()
                cursor.execute(sql, {"g": self.group_id})
                while rows := cursor.fetchmany(batch_rows):
                    data = list(zip(*rows, strict=True))
                    yield pa.table(
                        [pa.array(c, f.type) for c, f in zip(data, schema, strict=True)],
                        schema=schema,
                    )
                cursor.close()
        finally:
            raw.rollback()
            raw.close()

    def _copy(self, raw: Any, sql: str, schema: pa.Schema, batch_rows: int) -> Iterator[pa.Table]:
        from psycopg import sql as pgsql

        dbapi = raw.driver_connection
        query = sql.replace(":g", pgsql.Literal(self.group_id).as_string(dbapi))
        with dbapi.cursor() as cursor, cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT csv)") as cp:
            stream = io.BufferedReader(_CopyStream(cp), buffer_size=1 << 20)
            if not stream.peek(1):
                return
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(column_names=schema.names, block_size=1 << 22),
                convert_options=pacsv.ConvertOptions(
                    column_types=schema, strings_can_be_null=True, quoted_strings_can_be_null=False
                ),
            )
            pending: list[pa.RecordBatch] = []
            size = 0
            for batch in reader:
                pending.append(batch)
                size += batch.num_rows
                if size >= batch_rows:
                    yield pa.Table.from_batches(pending, schema)
                    pending, size = [], 0
            if pending:
                yield pa.Table.from_batches(pending, schema)


def checksum_term(snap: Snapshot, value: Any) -> str:
    """The per-row checksum of a snapshot, with `value(ref, kind)` rendering a watched
    column as an integer in the engine at hand (store or warehouse)."""
    a = snap.alias
    weighted = " + ".join(
        f"{w} * {value(f'{a}.{c}', snap.kind(c))}"
        for w, c in zip(WEIGHTS, snap.watched, strict=False)
    )
    return f"({a}.{snap.key} % {P1}) * (({weighted}) % {P2})"


class _CopyStream(io.RawIOBase):
    """A readable file over psycopg's COPY chunks, for Arrow's streaming CSV reader."""

    def __init__(self, copy: Any) -> None:
        self._copy = copy
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._rest:
            chunk = self._copy.read()
            if not chunk:
                return 0
            self._rest = bytes(chunk)
        n = min(len(buffer), len(self._rest))
        buffer[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        return n


def _ranges(days: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted days as at most MAX_RANGES inclusive ranges, closing the smallest gaps first."""
    runs: list[list[int]] = []
    for d in days:
        if runs and d == runs[-1][1] + 1:
            runs[-1][1] = d
        else:
            runs.append([d, d])
    while len(runs) > MAX_RANGES:
        gaps = [runs[i + 1][0] - runs[i][1] for i in range(len(runs) - 1)]
        i = gaps.index(min(gaps))
        runs[i : i + 2] = [[runs[i][0], runs[i + 1][1]]]
    return [(lo, hi) for lo, hi in runs]


def _typed(raw: pa.Table, columns: Sequence[Col], partition: bool) -> pa.Table:
    """Back to the warehouse's types: times (from text or microseconds), booleans, dates."""
    arrays: list[pa.Array | pa.ChunkedArray] = []
    names: list[str] = []
    for col in columns:
        data = raw[col.name]
        if col.kind == "time":
            data = data.cast(pa.timestamp("us"))
        elif col.kind == "bool":
            data = data.cast(pa.bool_())
        arrays.append(data)
        names.append(col.name)
    if partition:
        day = raw[PARTITION]
        if pa.types.is_integer(day.type):
            day = day.cast(pa.int32())
        arrays.append(day.cast(pa.date32()))
        names.append(PARTITION)
    return pa.table(arrays, names=names)
