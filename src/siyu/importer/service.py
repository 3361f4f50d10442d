"""Import files into the store, accounting for every row: read = accepted + rejected.

Each batch is one transaction, so an import stopped half-way leaves whole batches, and
running it again adds only what is missing (every loader is idempotent).
"""

from __future__ import annotations

import csv
import hashlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa
from sqlalchemy import Connection, Engine, insert, select

from siyu.catalog.models import brand_groups
from siyu.errors import ValidationError
from siyu.identity.ingest import IdentifierEncoder
from siyu.importer.batch import Batch, Context
from siyu.importer.kinds import IMPORT_ORDER, KINDS, Kind
from siyu.importer.models import import_runs
from siyu.importer.readers import (
    FORMATS,
    Malformed,
    RawBatch,
    as_text,
    read_batches,
    total_rows,
)
from siyu.privacy import Vault
from siyu.store.dialect import dialect_of

Progress = Callable[[int, int | None], None]
Screen = Callable[[Batch], None]  # rejects rows by a rule of the caller (a key's scope)
DEFAULT_BATCH_ROWS = 100_000


@dataclass
class ImportReport:
    kind: str
    path: str
    read: int = 0
    accepted: int = 0
    rejected: int = 0
    inserted: int = 0
    rejects_path: str | None = None
    seconds: float = 0.0


def ensure_group(engine: Engine, group_id: str, name: str | None = None) -> None:
    with engine.begin() as conn:
        exists = conn.execute(
            select(brand_groups.c.group_id).where(brand_groups.c.group_id == group_id)
        ).first()
        if exists is None:
            conn.execute(
                insert(brand_groups).values(
                    group_id=group_id, name=name or group_id, created_at=_now()
                )
            )


def import_file(
    engine: Engine,
    vault: Vault,
    group_id: str,
    kind_name: str,
    path: Path,
    rejects_dir: Path,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    progress: Progress | None = None,
) -> ImportReport:
    """Import one file of one kind; rejected rows go to `rejects_dir` with their reasons."""
    kind = _kind(kind_name)
    path = Path(path)
    if not path.is_file():
        raise ValidationError("file", f"{path}: no such file")
    started = datetime.now(UTC).replace(tzinfo=None)
    clock = time.perf_counter()
    report = ImportReport(kind.name, str(path))
    ctx = Context(group_id, IdentifierEncoder(vault))
    with engine.connect() as conn:
        ctx.refresh(conn)  # reference codes, once per file: facts never add brands or stores
    total = total_rows(path)
    with (
        _RejectsWriter(rejects_dir / f"{path.stem}.{kind.name}.rejects.csv") as rejects,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="siyu-import") as worker,
    ):
        # Pipeline: while the database writes batch N (psycopg releases the GIL while it
        # waits), a worker thread reads, converts and checks batch N+1.
        batches = read_batches(path, batch_rows)
        pending = worker.submit(_prepare, batches, kind, ctx)
        while (prepared := pending.result()) is not None:
            pending = worker.submit(_prepare, batches, kind, ctx)
            raw, batch = prepared
            report.read += raw.table.num_rows + len(raw.malformed)
            for bad in raw.malformed:
                rejects.write_malformed(bad)
            report.rejected += len(raw.malformed)
            if batch is not None:
                _load_batch(engine, ctx, kind, batch, report, rejects)
            if progress is not None:
                progress(report.read, total)
        report.rejects_path = str(rejects.path) if rejects.count else None
    report.seconds = time.perf_counter() - clock
    _record_run(engine, group_id, report, path, started)
    return report


def _prepare(
    batches: Iterator[RawBatch], kind: Kind, ctx: Context
) -> tuple[RawBatch, Batch | None] | None:
    """Read the next batch and apply every rule that needs no database: types, references
    to catalog codes, identifiers. None when the file is done."""
    raw = next(batches, None)
    if raw is None:
        return None
    if raw.table.num_rows == 0:
        return raw, None
    return raw, _validate(kind, ctx, raw.table)


def _load_batch(
    engine: Engine,
    ctx: Context,
    kind: Kind,
    batch: Batch,
    report: ImportReport,
    rejects: _RejectsWriter,
) -> None:
    """One transaction per batch: an interrupted import is finished by running it again."""
    if batch.ok.any():
        with engine.begin() as conn:
            # every loader is idempotent: running the import again restores a lost batch
            dialect_of(conn).tune_for_bulk_load(conn)
            report.inserted += kind.load(conn, ctx, batch)
    ok = int(batch.ok.sum())
    report.accepted += ok
    report.rejected += len(batch) - ok
    rejects.write_batch(batch, report.accepted + report.rejected - len(batch))


def import_directory(
    engine: Engine,
    vault: Vault,
    group_id: str,
    directory: Path,
    rejects_dir: Path,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    on_file: Callable[[str, Path], Progress | None] | None = None,
) -> list[ImportReport]:
    """Import every known kind found in `directory` (`orders.parquet`, `members.csv`, ...)
    in dependency order."""
    found = list(_files_by_kind(Path(directory)))
    if not found:
        raise ValidationError(
            "directory",
            f"{directory}: no importable files (expected e.g. members.csv, orders.parquet; "
            f"kinds: {', '.join(IMPORT_ORDER)})",
        )
    reports = []
    for kind_name, path in found:
        progress = on_file(kind_name, path) if on_file else None
        reports.append(
            import_file(engine, vault, group_id, kind_name, path, rejects_dir, batch_rows, progress)
        )
    return reports


@dataclass
class RowsImport:
    """What an import of rows from memory did, row by row."""

    report: ImportReport
    # Per row: "field: rule" for the first rule it broke, None when it was accepted.
    errors: list[str | None]
    # Per row: its id (the kind's key) was stored before this import, so nothing was new.
    stored: list[bool]


def import_rows(
    engine: Engine,
    vault: Vault,
    group_id: str,
    kind_name: str,
    rows: Sequence[Mapping[str, Any]],
    screen: Screen | None = None,
) -> RowsImport:
    """Import rows held in memory (the batch API) with the rules and loaders of
    `import_file`, as one batch in one transaction. A row naming a field the kind does not
    have is rejected; `screen` may reject rows before the kind's own checks."""
    kind = _kind(kind_name)
    clock = time.perf_counter()
    names = [f.name for f in kind.fields]
    table = pa.table(
        {n: pa.array([_as_text(row.get(n)) for row in rows], pa.string()) for n in names}
    )

    def screened(batch: Batch) -> None:
        for i, row in enumerate(rows):
            unknown = sorted(set(row) - set(names))
            if unknown:
                batch.reject(i, unknown[0], f"unknown field; known: {', '.join(names)}")
        if screen is not None:
            screen(batch)

    report = ImportReport(kind.name, "<rows>")
    ctx = Context(group_id, IdentifierEncoder(vault))
    with engine.begin() as conn:
        ctx.refresh(conn)
        batch = _validate(kind, ctx, table, screened)
        stored = _stored(conn, kind, group_id, rows)
        if batch.ok.any():
            report.inserted = kind.load(conn, ctx, batch)
    report.read = len(batch)
    report.accepted = int(batch.ok.sum())
    report.rejected = report.read - report.accepted
    report.seconds = time.perf_counter() - clock
    return RowsImport(report, list(batch.errors), stored)


def _validate(kind: Kind, ctx: Context, table: pa.Table, screen: Screen | None = None) -> Batch:
    """Every rule that needs no write: types, the caller's screen, references to catalog
    codes, identifiers."""
    ctx.encoder.clear()
    batch = Batch.convert(table, kind.fields)
    if screen is not None:
        screen(batch)
    kind.check(ctx, batch)
    return batch


def _stored(
    conn: Connection, kind: Kind, group_id: str, rows: Sequence[Mapping[str, Any]]
) -> list[bool]:
    """Which rows' ids the store already holds (all False for a kind without a key)."""
    if kind.key is None:
        return [False] * len(rows)
    key = kind.key
    ids = [row.get(key.name) for row in rows]
    wanted = sorted({str(i) for i in ids if i is not None})
    found = set(
        conn.execute(select(key).where(key.table.c.group_id == group_id, key.in_(wanted))).scalars()
    )
    return [i is not None and str(i) in found for i in ids]


def _as_text(value: object) -> str | None:
    return None if value is None else as_text(value)


def _files_by_kind(directory: Path) -> Iterator[tuple[str, Path]]:
    for kind_name in IMPORT_ORDER:
        for suffix in FORMATS:
            path = directory / f"{kind_name}{suffix}"
            if path.is_file():
                yield kind_name, path


def _kind(name: str) -> Kind:
    if name not in KINDS:
        raise ValidationError("kind", f"unknown kind {name!r}; known: {', '.join(KINDS)}")
    return KINDS[name]


def _record_run(
    engine: Engine, group_id: str, report: ImportReport, path: Path, started: datetime
) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(import_runs).values(
                group_id=group_id,
                kind=report.kind,
                path=str(path),
                sha256=_sha256(path),
                rows_read=report.read,
                rows_accepted=report.accepted,
                rows_rejected=report.rejected,
                records_inserted=report.inserted,
                rejects_path=report.rejects_path,
                started_at=started,
                finished_at=_now(),
            )
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


class _RejectsWriter:
    """Writes rejected rows with their row number and reason; creates the file lazily."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._fh: TextIO | None = None
        self._writer: csv.DictWriter[str] | None = None
        self._columns: list[str] = []
        if path.exists():
            path.unlink()  # a previous run's rejects would mislead

    def __enter__(self) -> _RejectsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()

    def _open(self, columns: list[str]) -> csv.DictWriter[str]:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("w", encoding="utf-8", newline="")
            self._columns = ["row", "reason", *columns]
            self._writer = csv.DictWriter(
                self._fh,
                fieldnames=self._columns,
                extrasaction="ignore",
            )
            self._writer.writeheader()
        return self._writer

    def write_malformed(self, bad: Malformed) -> None:
        writer = self._open(["raw"])
        writer.writerow({"row": bad.line or "", "reason": bad.rule, "raw": bad.text})
        self.count += 1

    def write_batch(self, batch: Batch, rows_before: int) -> None:
        bad = [i for i, e in enumerate(batch.errors) if e is not None]
        if not bad:
            return
        writer = self._open(batch.raw.column_names)
        raw = batch.raw.take(bad).to_pylist()
        for i, values in zip(bad, raw, strict=True):
            row = {k: ("" if v is None else v) for k, v in values.items()}
            row.update(row=rows_before + i + 1, reason=batch.errors[i])
            writer.writerow(row)
            self.count += 1
