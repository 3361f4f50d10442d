"""Landing: copy the operational store's facts into the warehouse, incrementally.

Facts are append-only in the store (a correction is a new row, a refund; never an
update), so a day partition of a fact table is landed when the store and the warehouse
disagree on how many rows it holds, and then landed whole (replaced). That is the
watermark, per table and day, read back from the landed data itself:

- a second run after new orders lands only the days that gained rows, and a run with
  nothing new lands nothing;
- late or back-filled facts (a second brand's two years imported after the first
  landing) are found, which a single "max(ordered_at) landed" watermark would miss;
- a run interrupted anywhere is finished by the next (a day is replaced in one
  transaction, or one file renamed into place).

Identities and members change in place: OneID moves identities between members. They are
small beside the facts and landed whole whenever their fingerprint (rows, max id,
checksum of member, times and flags) differs. Facts keep the buyer's identity, and the
warehouse readers join it to the identity's current member at query time
(`warehouse.Warehouse.orders`), so a re-resolution is one snapshot, not a rewrite of
every order. Each run ends by bringing the identity moves up to date (`moves`): the few
identities whose facts may name another member than the snapshot's, which is all the
readers then need to join.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine

from siyu.analytics.schema import FACTS, SNAPSHOTS, TABLES, day_number, day_of
from siyu.analytics.sinks import DuckDBSink, ParquetSink, Sink
from siyu.analytics.store_read import StoreReader
from siyu.errors import ValidationError

Format = Literal["duckdb", "parquet"]
FORMATS = ("duckdb", "parquet")
# progress(table, rows to land) -> advance(rows landed)
Progress = Callable[[str, int], Callable[[int], None]]


@dataclass(frozen=True)
class TableLanding:
    """What one run did to one table."""

    table: str
    kind: Literal["fact", "snapshot"]
    partitions: int  # day partitions in the store (facts); 1 for a snapshot
    changed: int  # partitions landed this run (0 or 1 for a snapshot)
    rows: int  # rows landed this run
    seconds: float
    latest_day: str | None = None  # the newest day partition (facts)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "partitions": self.partitions,
            "changed": self.changed,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
        }
        if self.kind == "fact":
            out["latest_day"] = self.latest_day
        return out


@dataclass(frozen=True)
class MovesUpdate:
    """How a run brought the identity moves up to date."""

    how: Literal["incremental", "full"]
    looked_up: int  # moved identities the readers look up (Parquet)
    rewritten: int  # fact rows given their identity's new member in place (DuckDB)
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "how": self.how,
            "looked_up": self.looked_up,
            "rewritten": self.rewritten,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class LandReport:
    warehouse: str
    format: Format
    group_id: str
    tables: list[TableLanding] = field(default_factory=list)
    moves: MovesUpdate | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(tzinfo=None))
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def to_json(self) -> dict[str, Any]:
        return {
            "warehouse": self.warehouse,
            "format": self.format,
            "group": self.group_id,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "tables": {t.table: t.to_json() for t in self.tables},
            "identity_moves": None if self.moves is None else self.moves.to_json(),
        }


def open_sink(target: Path, fmt: str) -> Sink:
    """The warehouse to land into: a DuckDB file or a Parquet directory."""
    if fmt == "duckdb":
        return DuckDBSink(target)
    if fmt == "parquet":
        return ParquetSink(target)
    raise ValidationError("format", f"must be one of {', '.join(FORMATS)}, got {fmt!r}")


def land(
    engine: Engine,
    group_id: str,
    target: Path,
    fmt: str = "duckdb",
    since: date | None = None,
    full: bool = False,
    batch_rows: int = 100_000,
    progress: Progress | None = None,
    tables: Sequence[str] | None = None,
) -> LandReport:
    """Land one brand group's facts and snapshots from the store into `target`.

    `since` limits the comparison (and so the landing) to day partitions from that day
    on, for very large stores; `full` lands every partition and snapshot again; `tables`
    lands only those (default: all of `schema.TABLES`)."""
    if batch_rows < 1:
        raise ValidationError("batch_rows", f"must be >= 1, got {batch_rows}")
    chosen = set(TABLES) if tables is None else set(tables)
    unknown = sorted(chosen - set(TABLES))
    if unknown:
        raise ValidationError(
            "tables", f"unknown table {unknown[0]!r}; the warehouse has {', '.join(TABLES)}"
        )
    started = time.perf_counter()
    since_day = None if since is None else day_number(since)
    reader = StoreReader(engine, group_id, since_day)
    if not reader.group_exists():
        raise ValidationError("group", f"no brand group {group_id!r} in the store")
    sink = open_sink(target, fmt)
    report = LandReport(sink.location, "parquet" if fmt == "parquet" else "duckdb", group_id)
    tick = progress or (lambda _table, _total: lambda _rows: None)
    try:
        moves = _MovesKeeper(sink, group_id, rebuild=full)
        # facts first: the snapshots landed after them then know every buyer they name
        for fact in (f for f in FACTS if f.name in chosen):
            t0 = time.perf_counter()
            # a table landed again whole: its every day is checked as landed this run
            sink.drop_outdated(fact, group_id)
            in_store = reader.fact_counts(fact)
            landed = sink.fact_counts(fact, group_id, since_day)
            every = set(in_store) | set(landed)
            days = every if full else {d for d in every if in_store.get(d) != landed.get(d)}
            advance = tick(fact.name, sum(in_store.get(d, 0) for d in days))
            rows = 0
            if days:
                moves.days[fact.name] = days
                batches = reader.fact_rows(fact, days, batch_rows, days >= set(in_store))
                rows = sink.replace_days(fact, group_id, days, batches, advance)
            latest = day_of(max(in_store)).isoformat() if in_store else None
            report.tables.append(
                TableLanding(
                    fact.name,
                    "fact",
                    len(in_store),
                    len(days),
                    rows,
                    time.perf_counter() - t0,
                    latest,
                )
            )
        for snap in (s for s in SNAPSHOTS if s.name in chosen):
            t0 = time.perf_counter()
            if sink.drop_outdated(snap, group_id) and snap.name == "identities":
                moves.rebuild = True  # the snapshot before this run is gone
            fingerprint = reader.fingerprint(snap)
            changed = full or fingerprint != sink.fingerprint(snap, group_id)
            rows = 0
            if changed:
                if snap.name == "identities":
                    moves.keep_previous()
                advance = tick(snap.name, fingerprint[0])
                rows = sink.replace_snapshot(
                    snap, group_id, reader.snapshot_rows(snap, batch_rows), advance
                )
            report.tables.append(
                TableLanding(snap.name, "snapshot", 1, int(changed), rows, time.perf_counter() - t0)
            )
        report.moves = moves.update()
        report.seconds = time.perf_counter() - started
        sink.record_run(group_id, report.to_json())
    finally:
        sink.close()
    return report


class _MovesKeeper:
    """Keeps the identity moves true through one landing run (`moves`): invalidated before
    the run changes anything, written after its last change, incrementally when the run
    started from valid moves (a run that lands nothing rewrites them from themselves)."""

    def __init__(self, sink: Sink, group_id: str, rebuild: bool) -> None:
        self.sink, self.group_id = sink, group_id
        # from every fact: when the moves are not valid, and on a full landing, where it
        # also forgets identities whose facts were all landed again since they moved
        self.rebuild = rebuild or not sink.moves_valid(group_id)
        self.days: dict[str, set[int]] = {}
        sink.invalidate_moves(group_id)

    def keep_previous(self) -> None:
        if not self.rebuild:
            self.sink.keep_previous_identities(self.group_id)

    def update(self) -> MovesUpdate:
        t0 = time.perf_counter()
        days = None if self.rebuild else self.days
        looked_up, rewritten = self.sink.update_moves(self.group_id, days)
        how: Literal["incremental", "full"] = "full" if days is None else "incremental"
        return MovesUpdate(how, looked_up, rewritten, time.perf_counter() - t0)
