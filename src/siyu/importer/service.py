"""Import files into the store, accounting for every row: read = accepted + rejected.

A file is read through once before anything is applied (`check_file`): one that cannot be
read as a whole is a single clear error and changes nothing. Then each batch is one
transaction, so an import stopped half-way leaves whole batches, and running it again adds
only what is missing (every loader is idempotent).
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa
from sqlalchemy import Connection, Engine, insert, select

from siyu.catalog.models import brand_groups
from siyu.errors import ValidationError
from siyu.identity.follow import follow
from siyu.identity.ingest import IdentifierEncoder
from siyu.importer.batch import Batch, Context, Scope
from siyu.importer.fields import Limits
from siyu.importer.kinds import IMPORT_ORDER, KINDS, Kind
from siyu.importer.models import import_runs
from siyu.importer.readers import (
    FORMATS,
    RawBatch,
    as_text,
    cell_texts,
    check_file,
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
    # What the kind wrote beside its records (members: new identities and links, records
    # merged into the members already holding their identifiers, members moved to a new
    # card); empty for kinds that write nothing else.
    outcomes: dict[str, int] = field(default_factory=dict)


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
    earliest: datetime | None = None,
    checked: bool = False,
) -> ImportReport:
    """Import one file of one kind; rejected rows go to `rejects_dir` with their reasons.
    Business times before `earliest` (default 2000-01-01) are rejected. A file that cannot
    be read as a whole raises ValidationError before anything is applied."""
    kind = _kind(kind_name)
    path = Path(path)
    if not path.is_file():
        raise ValidationError("file", f"{path}: no such file")
    if not checked:
        check_file(path)
    started = datetime.now(UTC).replace(tzinfo=None)
    clock = time.perf_counter()
    report = ImportReport(kind.name, str(path))
    ctx = Context(group_id, IdentifierEncoder(vault), limits=Limits.starting_now(earliest))
    with engine.connect() as conn:
        ctx.refresh(conn)  # reference codes, once per file: facts never add brands or stores
    total = total_rows(path)
    rejects_path = rejects_dir / f"{path.stem}.{kind.name}.rejects.csv"
    with (
        _RejectsWriter(rejects_path, [f.name for f in kind.fields]) as rejects,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="siyu-import") as worker,
    ):
        # Pipeline: while the database writes batch N (psycopg releases the GIL while it
        # waits), a worker thread reads, converts and checks batch N+1.
        batches = read_batches(path, batch_rows)
        pending = worker.submit(_prepare, batches, kind, ctx)
        while (prepared := _result(pending, path)) is not None:
            pending = worker.submit(_prepare, batches, kind, ctx)
            raw, batch = prepared
            report.read += raw.table.num_rows + len(raw.malformed)
            report.rejected += len(raw.malformed)
            if batch is not None:
                _load_batch(engine, ctx, kind, batch, report)
            rejects.write(raw, batch)
            if progress is not None:
                progress(report.read, total)
        report.rejects_path = str(rejects.path) if rejects.count else None
    _settle(engine, ctx, report)
    if report.inserted and kind.analyse:
        # a table grown from nothing minutes ago keeps the statistics of the empty table
        # until autovacuum comes: right after importing UCI Online Retail's 22,190
        # invoices the QR scene report was planned as if orders held a row (27 s, not 0.07).
        # Files only: the API's small batches (`import_rows`) are autovacuum's to follow,
        # and an ANALYZE per request would sample the tables on every ingest call.
        with engine.begin() as conn:
            dialect_of(conn).refresh_statistics(conn, *kind.analyse)
    report.seconds = time.perf_counter() - clock
    _record_run(engine, group_id, report, path, started)
    return report


def _settle(engine: Engine, ctx: Context, report: ImportReport) -> None:
    """Balances follow the members the import merged (as after any OneID merge), once the
    batches have committed; settling is safe to repeat, so a crash before it is repaired
    by the next OneID operation."""
    report.outcomes = dict(ctx.outcomes)
    if report.outcomes.get("merged"):
        follow(engine, ctx.group_id)


def _result(
    pending: Future[tuple[RawBatch, Batch | None] | None], path: Path
) -> tuple[RawBatch, Batch | None] | None:
    try:
        return pending.result()
    except (UnicodeDecodeError, csv.Error, pa.ArrowException) as exc:
        # check_file read the file whole; it changed while being imported
        raise ValidationError("file", f"{path.name}: could not be read ({exc})") from None


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
    return raw, _validate(kind, ctx, raw.table, numbers=raw.numbers)


def _load_batch(
    engine: Engine,
    ctx: Context,
    kind: Kind,
    batch: Batch,
    report: ImportReport,
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


def import_directory(
    engine: Engine,
    vault: Vault,
    group_id: str,
    directory: Path,
    rejects_dir: Path,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    on_file: Callable[[str, Path], Progress | None] | None = None,
    earliest: datetime | None = None,
) -> list[ImportReport]:
    """Import every known kind found in `directory` (`orders.parquet`, `members.csv`, ...)
    in dependency order. Every file is read through first: if one cannot be read, nothing
    of the directory is applied."""
    found = list(_files_by_kind(Path(directory)))
    if not found:
        raise ValidationError(
            "directory",
            f"{directory}: no importable files (expected e.g. members.csv, orders.parquet; "
            f"kinds: {', '.join(IMPORT_ORDER)})",
        )
    for _, path in found:
        check_file(path)
    reports = []
    for kind_name, path in found:
        progress = on_file(kind_name, path) if on_file else None
        reports.append(
            import_file(
                engine,
                vault,
                group_id,
                kind_name,
                path,
                rejects_dir,
                batch_rows,
                progress,
                earliest,
                checked=True,
            )
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
    scope: Scope | None = None,
) -> RowsImport:
    """Import rows held in memory (the batch API) with the rules and loaders of
    `import_file`, as one batch in one transaction. A row naming a field the kind does not
    have is rejected; `screen` may reject rows before the kind's own checks; `scope` limits
    the records a row may refer to (a channel key refunds its channel's orders only)."""
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
    ctx = Context(group_id, IdentifierEncoder(vault), scope=scope or Scope())
    with engine.begin() as conn:
        ctx.refresh(conn)
        batch = _validate(kind, ctx, table, screened, list(range(len(rows))), "item")
        stored = _stored(conn, kind, group_id, rows)
        if batch.ok.any():
            report.inserted = kind.load(conn, ctx, batch)
    report.read = len(batch)
    report.accepted = int(batch.ok.sum())
    report.rejected = report.read - report.accepted
    _settle(engine, ctx, report)
    report.seconds = time.perf_counter() - clock
    return RowsImport(report, list(batch.errors), stored)


def _validate(
    kind: Kind,
    ctx: Context,
    table: pa.Table,
    screen: Screen | None = None,
    numbers: list[int] | None = None,
    unit: str = "line",
) -> Batch:
    """Every rule that needs no write: types, the caller's screen, references to catalog
    codes, identifiers, a record repeated with other content."""
    ctx.encoder.clear()
    batch = Batch.convert(table, kind.fields, ctx.limits)
    batch.numbers, batch.unit = numbers or list(range(1, len(batch) + 1)), unit
    if screen is not None:
        screen(batch)
    kind.check(ctx, batch)
    batch.reject_conflicting_duplicates(kind.record_key, kind.fields)
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
    """Writes rejected rows so they can be fixed and imported again: `reject_row` (the
    file line, or the row index of a Parquet file), `reject_reason` ("field: rule"), the
    kind's fields as read, and `reject_raw` (the row's text as read: the CSV record, the
    JSON line; a Parquet row as a JSON object). Importing the file as the same kind reads
    the fields and ignores the reject_* columns. UTF-8 with a byte-order mark, so that
    Excel opens Chinese text right. Created lazily, in file order within each batch."""

    def __init__(self, path: Path, fields: list[str]) -> None:
        self.path = path
        self.count = 0
        self._fields = fields
        self._fh: TextIO | None = None
        self._writer: csv.DictWriter[str] | None = None
        if path.exists():
            path.unlink()  # a previous run's rejects would mislead

    def __enter__(self) -> _RejectsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fh is not None:
            self._fh.close()

    def _open(self) -> csv.DictWriter[str]:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("w", encoding="utf-8-sig", newline="")
            self._writer = csv.DictWriter(
                self._fh,
                fieldnames=["reject_row", "reject_reason", *self._fields, "reject_raw"],
                extrasaction="ignore",
            )
            self._writer.writeheader()
        return self._writer

    def write(self, raw: RawBatch, batch: Batch | None) -> None:
        entries: list[tuple[int, str, Mapping[str, str | None], str]] = [
            (m.line, m.rule, m.fields, m.text) for m in raw.malformed
        ]
        bad = [] if batch is None else [i for i, e in enumerate(batch.errors) if e is not None]
        if batch is not None and bad:
            taken = raw.table.take(bad)
            columns = {n: cell_texts(taken.column(n)) for n in taken.column_names}
            for k, i in enumerate(bad):
                values = {n: v[k] for n, v in columns.items()}
                if raw.texts is not None:
                    text = raw.texts[i]
                else:
                    given = {n: v for n, v in values.items() if v is not None}
                    text = json.dumps(given, ensure_ascii=False)
                entries.append((raw.numbers[i], batch.errors[i] or "", values, text))
        if not entries:
            return
        writer = self._open()
        for number, reason, given_values, text in sorted(entries, key=lambda e: e[0]):
            row = {f: given_values.get(f) or "" for f in self._fields}
            row.update(reject_row=str(number), reject_reason=reason, reject_raw=text)
            writer.writerow(row)
            self.count += 1
