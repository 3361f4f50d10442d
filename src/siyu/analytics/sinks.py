"""The warehouse side of landing: a DuckDB file (default) or a directory of Parquet files.

Both keep no separate bookkeeping that could drift from the data: what is landed is read
back from the data itself (rows per day partition, the snapshot fingerprints), so a run
interrupted anywhere is finished by the next one. A table whose columns are not the schema's
(landed by an older siyu) is dropped and landed again whole, by the same rule: what is not
there is landed. A DuckDB sink replaces a table's changed
days in one transaction; a Parquet sink writes one file per table, group and day (and one
per snapshot), each written aside and renamed into place.

Layout of a Parquet warehouse (what Spark reads, `warehouse.open_warehouse`):

    DIR/<table>/<group>/<YYYY-MM-DD>.parquet     facts, one file per UTC day
    DIR/<table>/<group>/snapshot.parquet         identities, members
    DIR/identity_moves/<group>/snapshot.parquet  the identities OneID moved (`moves`);
                                                 absent while a run is changing things
    DIR/_land_runs.jsonl                         one line per landing run
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from siyu.analytics.moves import KEYED, MOVES, NO_IDENTITIES, moves_sql, rewrite_sql
from siyu.analytics.schema import ALL, DUCKDB, PARTITION, Fact, Snapshot, day_number, day_of
from siyu.analytics.store_read import checksum_term
from siyu.errors import ValidationError

SNAPSHOT_FILE = "snapshot.parquet"
MOVES_STATE = "identity_moves_state"  # DuckDB: a row per group whose moves are valid
EARLIER_MOVES = "earlier.parquet.keep"  # Parquet: the moves a run started from
PREVIOUS_IDENTITIES = "previous-identities.parquet.keep"  # Parquet: the snapshot before
RUNS_FILE = "_land_runs.jsonl"
GROUP_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

Rows = Callable[[int], None]


class Sink(Protocol):
    location: str

    def drop_outdated(self, table: Fact | Snapshot, group_id: str) -> bool:
        """Drop `table` (for `group_id`) when its columns are not the schema's: the landing
        that follows then lands it whole. True when it was dropped."""
        ...

    def fact_counts(self, fact: Fact, group_id: str, since_day: int | None) -> dict[int, int]: ...

    def replace_days(
        self, fact: Fact, group_id: str, days: set[int], batches: Iterable[pa.Table], on_rows: Rows
    ) -> int: ...

    def fingerprint(self, snap: Snapshot, group_id: str) -> tuple[int, int, int]: ...

    def replace_snapshot(
        self, snap: Snapshot, group_id: str, batches: Iterable[pa.Table], on_rows: Rows
    ) -> int: ...

    def moves_valid(self, group_id: str) -> bool:
        """Whether the identity moves were written by a run that finished (`moves`)."""
        ...

    def invalidate_moves(self, group_id: str) -> None:
        """Mark the moves not to be trusted, before a run changes facts or identities; the
        earlier moves stay readable to `update_moves` in this run."""
        ...

    def keep_previous_identities(self, group_id: str) -> None:
        """Keep the identities snapshot as it is, before this run replaces it."""
        ...

    def update_moves(self, group_id: str, days: Mapping[str, set[int]] | None) -> tuple[int, int]:
        """Write the moves and mark them valid: from every fact when `days` is None, else
        from the earlier moves, the snapshot kept and the facts of `days` (fact name ->
        day partitions landed this run). Returns the moved identities readers look up, and
        the fact rows given their new member in place (a DuckDB sink does that instead)."""
        ...

    def record_run(self, group_id: str, run: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def _duck_value(ref: str, kind: str) -> str:
    # the same integers as StoreReader._value: whole seconds, 0/1, 0 for null
    if kind == "time":
        return f"COALESCE(epoch_us({ref}) // 1000000, 0)"
    if kind == "bool":
        return f"(CASE WHEN {ref} THEN 1 ELSE 0 END)"
    return f"COALESCE({ref}, 0)"


def _fingerprint_sql(snap: Snapshot, relation: str) -> str:
    a = snap.alias
    return (
        f"SELECT COUNT(*), COALESCE(MAX({a}.{snap.key}), 0), "
        f"COALESCE(SUM({checksum_term(snap, _duck_value)}), 0) FROM {relation} AS {a}"
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _days_in(days: set[int]) -> str:
    return ", ".join(f"DATE '{day_of(d)}'" for d in sorted(days))


def _duck_columns(table: Fact | Snapshot) -> list[tuple[str, str]]:
    cols = [(c.name, DUCKDB[c.kind]) for c in table.columns]
    return [*cols, (PARTITION, "DATE")] if isinstance(table, Fact) else cols


def _ddl(table: Fact | Snapshot, name: str | None = None) -> str:
    cols = [f'"{n}" {kind}' for n, kind in _duck_columns(table)]
    if isinstance(table, Fact):
        cols[-1] += " NOT NULL"
    return f"CREATE TABLE IF NOT EXISTS {name or table.name} ({', '.join(cols)})"


class DuckDBSink:
    """The warehouse as one DuckDB file (SIYU_WAREHOUSE)."""

    def __init__(self, path: Path) -> None:
        if path.is_dir():
            raise ValidationError(
                "warehouse", f"{path} is a directory; a DuckDB warehouse is a file (or use parquet)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        self.location = str(path)
        try:
            self.con = duckdb.connect(str(path))
        except duckdb.IOException as exc:  # another process holds the file
            raise ValidationError(
                "warehouse",
                f"{path} cannot be opened for writing (DuckDB allows one writer): {exc}",
            ) from exc
        for table in ALL:
            self.con.execute(_ddl(table))
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS land_runs (group_id VARCHAR, started_at TIMESTAMP, "
            "seconds DOUBLE, report VARCHAR)"
        )
        self.con.execute(
            f"CREATE TABLE IF NOT EXISTS {MOVES} (group_id VARCHAR, identity_id BIGINT, "
            "member_id BIGINT, known BOOLEAN)"
        )
        self.con.execute(
            f"CREATE TABLE IF NOT EXISTS {MOVES_STATE} (group_id VARCHAR, computed_at TIMESTAMP)"
        )
        self._kept_previous = False

    def drop_outdated(self, table: Fact | Snapshot, group_id: str) -> bool:
        found = self.con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? AND table_schema = 'main' ORDER BY ordinal_position",
            [table.name],
        ).fetchall()
        if [(n, t) for n, t in found] == _duck_columns(table):
            return False
        # one table holds every group: the others land it again on their next run too
        self.con.execute(f"DROP TABLE IF EXISTS {table.name}")
        self.con.execute(_ddl(table))
        return True

    def fact_counts(self, fact: Fact, group_id: str, since_day: int | None) -> dict[int, int]:
        where = "" if since_day is None else f" AND {PARTITION} >= DATE '{day_of(since_day)}'"
        rows = self.con.execute(
            f"SELECT datediff('day', DATE '1970-01-01', {PARTITION}), COUNT(*) FROM {fact.name} "
            f"WHERE group_id = ?{where} GROUP BY 1",
            [group_id],
        ).fetchall()
        return {int(d): int(n) for d, n in rows}

    def replace_days(
        self, fact: Fact, group_id: str, days: set[int], batches: Iterable[pa.Table], on_rows: Rows
    ) -> int:
        wanted = pa.table({"d": pa.array(sorted(days), pa.int32()).cast(pa.date32())})
        return self._replace(
            fact.name,
            [c.name for c in fact.columns] + [PARTITION],
            f"group_id = ? AND {PARTITION} IN (SELECT d FROM land_days)",
            [group_id],
            batches,
            on_rows,
            wanted,
        )

    def fingerprint(self, snap: Snapshot, group_id: str) -> tuple[int, int, int]:
        sql = _fingerprint_sql(snap, f"(SELECT * FROM {snap.name} WHERE group_id = ?)")
        rows, top, check = self.con.execute(sql, [group_id]).fetchall()[0]
        return int(rows), int(top), int(check)

    def replace_snapshot(
        self, snap: Snapshot, group_id: str, batches: Iterable[pa.Table], on_rows: Rows
    ) -> int:
        names = [c.name for c in snap.columns]
        return self._replace(snap.name, names, "group_id = ?", [group_id], batches, on_rows)

    def _replace(
        self,
        table: str,
        names: list[str],
        where: str,
        params: list[Any],
        batches: Iterable[pa.Table],
        on_rows: Rows,
        days: pa.Table | None = None,
    ) -> int:
        cols = ", ".join(f'"{n}"' for n in names)
        landed = 0
        self.con.begin()
        try:
            if days is not None:
                self.con.register("land_days", days)
            self.con.execute(f"DELETE FROM {table} WHERE {where}", params)
            for batch in batches:
                self.con.register("land_batch", batch)
                self.con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM land_batch")
                self.con.unregister("land_batch")
                landed += batch.num_rows
                on_rows(batch.num_rows)
            self.con.commit()
        except BaseException:
            self.con.rollback()
            raise
        finally:
            if days is not None:
                self.con.unregister("land_days")
        return landed

    def moves_valid(self, group_id: str) -> bool:
        found = self.con.execute(
            f"SELECT COUNT(*) FROM {MOVES_STATE} WHERE group_id = ?", [group_id]
        ).fetchone()
        return bool(found and found[0])

    def invalidate_moves(self, group_id: str) -> None:
        self.con.execute(f"DELETE FROM {MOVES_STATE} WHERE group_id = ?", [group_id])

    def keep_previous_identities(self, group_id: str) -> None:
        self.con.execute(
            "CREATE OR REPLACE TEMP TABLE previous_identities AS "
            "SELECT identity_id, member_id FROM identities WHERE group_id = ?",
            [group_id],
        )
        self._kept_previous = True

    def update_moves(self, group_id: str, days: Mapping[str, set[int]] | None) -> tuple[int, int]:
        g = _literal(group_id)
        current = f"(SELECT identity_id, member_id FROM identities WHERE group_id = {g})"
        if days is None:
            facts = {f.name: f"(SELECT * FROM {f.name} WHERE group_id = {g})" for f in KEYED}
            sql = moves_sql(facts, current)
        else:
            facts = {
                f.name: f"(SELECT * FROM {f.name} WHERE group_id = {g} AND {PARTITION} IN "
                f"({_days_in(days[f.name])}))"
                for f in KEYED
                if days.get(f.name)
            }
            previous = "previous_identities" if self._kept_previous else None
            earlier = f"(SELECT identity_id FROM {MOVES} WHERE group_id = {g})"
            sql = moves_sql(facts, current, previous, earlier)
        self.con.begin()
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE next_moves AS {sql}")
            found = self.con.execute("SELECT COUNT(*) FROM next_moves WHERE known").fetchone()
            moved, rewritten = int(found[0]) if found else 0, 0
            # the facts of identities the snapshot holds are given its member in place (a
            # few scattered rows: 1.6M of 162M lines take 3.3 s), so readers join nothing
            for fact in KEYED if moved else ():
                updated = self.con.execute(rewrite_sql(fact), [group_id]).fetchone()
                rewritten += int(updated[0]) if updated else 0
            # what is left to remember: identities the snapshot lacks, whose facts keep the
            # member they were landed with until it holds them
            self.con.execute(f"DELETE FROM {MOVES} WHERE group_id = ?", [group_id])
            self.con.execute(
                f"INSERT INTO {MOVES} SELECT ?, identity_id, member_id, known FROM next_moves "
                "WHERE NOT known",
                [group_id],
            )
            self.con.execute(f"DELETE FROM {MOVES_STATE} WHERE group_id = ?", [group_id])
            self.con.execute(
                f"INSERT INTO {MOVES_STATE} VALUES (?, current_timestamp::TIMESTAMP)", [group_id]
            )
            self.con.execute("DROP TABLE next_moves")
            self.con.commit()
        except BaseException:
            self.con.rollback()
            raise
        return 0, rewritten

    def record_run(self, group_id: str, run: dict[str, Any]) -> None:
        self.con.execute(
            "INSERT INTO land_runs VALUES (?, ?, ?, ?)",
            [group_id, run["started_at"], run["seconds"], json.dumps(run, default=str)],
        )

    def close(self) -> None:
        self.con.close()


class ParquetSink:
    """The warehouse as Parquet files under a directory (for Spark, or any reader)."""

    def __init__(self, directory: Path) -> None:
        if directory.exists() and not directory.is_dir():
            raise ValidationError("out", f"{directory} is a file; parquet needs a directory")
        directory.mkdir(parents=True, exist_ok=True)
        self.root = directory
        self.location = str(directory)
        self._kept_previous = False

    @contextmanager
    def _scratch(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """An in-memory DuckDB that spills under DIR/.tmp, removed when it closes."""
        con = duckdb.connect()
        try:
            con.execute(f"SET temp_directory = {_literal(str(self.root / '.tmp'))}")
            yield con
        finally:
            con.close()
            shutil.rmtree(self.root / ".tmp", ignore_errors=True)

    def _dir(self, table: str, group_id: str) -> Path:
        if not GROUP_RULE.match(group_id):
            raise ValidationError(
                "group",
                "must be 1-64 letters, digits, '_', '.' or '-' (starting with a letter or "
                f"digit) to name a Parquet directory, got {group_id!r}",
            )
        return self.root / table / group_id

    def drop_outdated(self, table: Fact | Snapshot, group_id: str) -> bool:
        folder = self._dir(table.name, group_id)
        files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
        wanted = table.schema().names
        # every file of a landing has the same columns: a stale one is stale throughout,
        # but one file of each kind is read in case a run was stopped between them
        if all(pq.read_schema(f).names == wanted for f in files[:1] + files[-1:]):
            return False
        shutil.rmtree(folder)
        return True

    def fact_counts(self, fact: Fact, group_id: str, since_day: int | None) -> dict[int, int]:
        counts: dict[int, int] = {}
        folder = self._dir(fact.name, group_id)
        for file in folder.glob("????-??-??.parquet") if folder.is_dir() else ():
            number = day_number(date.fromisoformat(file.stem))
            if since_day is None or number >= since_day:
                counts[number] = pq.ParquetFile(file).metadata.num_rows
        return counts

    def replace_days(
        self, fact: Fact, group_id: str, days: set[int], batches: Iterable[pa.Table], on_rows: Rows
    ) -> int:
        folder = self._dir(fact.name, group_id)
        folder.mkdir(parents=True, exist_ok=True)
        # rows come in store order, not by day: gather them in DuckDB (which spills to disk
        # past its memory limit), then write one file per day
        with self._scratch() as con:
            con.execute(_ddl(fact, "staged"))
            landed = 0
            for batch in batches:
                con.register("land_batch", batch)
                con.execute("INSERT INTO staged SELECT * FROM land_batch")
                con.unregister("land_batch")
                landed += batch.num_rows
                on_rows(batch.num_rows)
            # one COPY writes every day's file (DuckDB's hive layout: day=YYYY-MM-DD/)
            written = self.root / ".tmp" / f"{fact.name}-{os.getpid()}"
            shutil.rmtree(written, ignore_errors=True)
            written.parent.mkdir(parents=True, exist_ok=True)
            con.execute(
                f"COPY staged TO '{written}' (FORMAT parquet, PARTITION_BY ({PARTITION}), "
                "WRITE_PARTITION_COLUMNS true)"
            )
            for number in sorted(days):
                day = day_of(number).isoformat()
                final = folder / f"{day}.parquet"
                parts = sorted((written / f"{PARTITION}={day}").glob("*.parquet"))
                if not parts:  # the day has no rows in the store any more
                    final.unlink(missing_ok=True)
                    continue
                if len(parts) > 1:  # DuckDB split a large day: one file per day here
                    pq.write_table(pq.read_table(parts), parts[0])
                os.replace(parts[0], final)
        return landed

    def fingerprint(self, snap: Snapshot, group_id: str) -> tuple[int, int, int]:
        file = self._dir(snap.name, group_id) / SNAPSHOT_FILE
        if not file.is_file():
            return 0, 0, 0
        con = duckdb.connect()
        try:
            rows, top, check = con.execute(
                _fingerprint_sql(snap, f"read_parquet('{file}')")
            ).fetchall()[0]
        finally:
            con.close()
        return int(rows), int(top), int(check)

    def replace_snapshot(
        self, snap: Snapshot, group_id: str, batches: Iterable[pa.Table], on_rows: Rows
    ) -> int:
        folder = self._dir(snap.name, group_id)
        folder.mkdir(parents=True, exist_ok=True)
        aside = folder / f".{SNAPSHOT_FILE}.tmp"
        landed = 0
        with pq.ParquetWriter(aside, snap.schema()) as writer:
            for batch in batches:
                writer.write_table(batch)
                landed += batch.num_rows
                on_rows(batch.num_rows)
        os.replace(aside, folder / SNAPSHOT_FILE)
        return landed

    def moves_valid(self, group_id: str) -> bool:
        return (self._dir(MOVES, group_id) / SNAPSHOT_FILE).is_file()

    def invalidate_moves(self, group_id: str) -> None:
        folder = self._dir(MOVES, group_id)
        if (folder / SNAPSHOT_FILE).is_file():
            os.replace(folder / SNAPSHOT_FILE, folder / EARLIER_MOVES)

    def keep_previous_identities(self, group_id: str) -> None:
        snapshot = self._dir("identities", group_id) / SNAPSHOT_FILE
        if not snapshot.is_file():
            return
        kept = self._dir(MOVES, group_id) / PREVIOUS_IDENTITIES
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.unlink(missing_ok=True)
        try:  # the snapshot is replaced by a rename, so a second link keeps the old one
            os.link(snapshot, kept)
        except OSError:
            shutil.copyfile(snapshot, kept)
        self._kept_previous = True

    def update_moves(self, group_id: str, days: Mapping[str, set[int]] | None) -> tuple[int, int]:
        folder = self._dir(MOVES, group_id)
        folder.mkdir(parents=True, exist_ok=True)
        snapshot = self._dir("identities", group_id) / SNAPSHOT_FILE
        current = (
            f"(SELECT identity_id, member_id FROM read_parquet({_literal(str(snapshot))}))"
            if snapshot.is_file()
            else NO_IDENTITIES
        )
        facts: dict[str, str] = {}
        for fact in KEYED:
            fact_dir = self._dir(fact.name, group_id)
            if days is None:
                files = sorted(fact_dir.glob("????-??-??.parquet")) if fact_dir.is_dir() else []
            else:
                wanted = (fact_dir / f"{day_of(d)}.parquet" for d in days.get(fact.name, ()))
                files = [f for f in wanted if f.is_file()]
            if files:
                facts[fact.name] = f"read_parquet([{', '.join(_literal(str(f)) for f in files)}])"
        kept, earlier = folder / PREVIOUS_IDENTITIES, folder / EARLIER_MOVES
        if days is None:
            sql = moves_sql(facts, current)
        else:
            sql = moves_sql(
                facts,
                current,
                f"read_parquet({_literal(str(kept))})" if self._kept_previous else None,
                f"read_parquet({_literal(str(earlier))})" if earlier.is_file() else None,
            )
        aside = folder / f".{SNAPSHOT_FILE}.tmp"
        with self._scratch() as con:
            con.execute(f"COPY ({sql}) TO {_literal(str(aside))} (FORMAT parquet)")
        os.replace(aside, folder / SNAPSHOT_FILE)
        kept.unlink(missing_ok=True)
        earlier.unlink(missing_ok=True)
        known = pq.read_table(folder / SNAPSHOT_FILE, columns=["known"]).column("known")
        return int(pc.sum(known).as_py() or 0), 0

    def record_run(self, group_id: str, run: dict[str, Any]) -> None:
        with (self.root / RUNS_FILE).open("a", encoding="utf-8") as fh:
            fh.write(json.dumps({"group_id": group_id, **run}, default=str) + "\n")

    def close(self) -> None:
        return None
