"""Read CSV, JSON Lines and Parquet in batches of raw rows, never the whole file at once.

Rows a parser cannot even split (a CSV line with the wrong number of fields, a JSON line
that is not JSON) are not fatal: they come back as `Malformed` so the import can count
and report them like any other rejected row.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from siyu.errors import ValidationError

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}


@dataclass(frozen=True)
class Malformed:
    line: int | None
    rule: str
    text: str


@dataclass
class RawBatch:
    table: pa.Table
    malformed: list[Malformed]


def file_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValidationError(
            "file", f"{path.name}: extension must be one of {', '.join(sorted(FORMATS))}"
        )
    return fmt


def total_rows(path: Path) -> int | None:
    """Rows in the file when cheap to know (Parquet metadata), for the progress bar."""
    if file_format(path) == "parquet":
        return int(pq.ParquetFile(path).metadata.num_rows)
    return None


def read_batches(path: Path, batch_rows: int) -> Iterator[RawBatch]:
    fmt = file_format(path)
    if fmt == "parquet":
        pf = pq.ParquetFile(path)
        for record_batch in pf.iter_batches(batch_size=batch_rows):
            yield RawBatch(pa.Table.from_batches([record_batch]), [])
    elif fmt == "csv":
        yield from _csv_batches(path, batch_rows)
    else:
        yield from _jsonl_batches(path, batch_rows)


def _csv_batches(path: Path, batch_rows: int) -> Iterator[RawBatch]:
    with path.open("r", encoding="utf-8-sig", newline="") as fh:
        header = fh.readline()
    names = [n.strip() for n in next(csv.reader([header]))]
    malformed: list[Malformed] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        malformed.append(
            Malformed(
                row.number,
                f"row has {row.actual_columns} fields, the header has {row.expected_columns}",
                row.text[:500],
            )
        )
        return "skip"

    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=16 << 20, use_threads=False),
        parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
        # Everything as text: types are decided by the import's own fields, with errors
        # per row, not by Arrow's inference for the whole column.
        convert_options=pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names}, strings_can_be_null=True
        ),
    )
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    for record_batch in reader:
        pending.append(record_batch)
        pending_rows += record_batch.num_rows
        if pending_rows >= batch_rows:
            yield RawBatch(pa.Table.from_batches(pending), malformed[:])
            malformed.clear()
            pending, pending_rows = [], 0
    if pending or malformed:
        table = pa.Table.from_batches(pending, schema=reader.schema)
        yield RawBatch(table, malformed[:])


def _jsonl_batches(path: Path, batch_rows: int) -> Iterator[RawBatch]:
    rows: list[dict[str, object]] = []
    malformed: list[Malformed] = []
    with path.open("r", encoding="utf-8-sig") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                malformed.append(Malformed(number, f"not valid JSON ({exc.msg})", line[:500]))
                continue
            if not isinstance(obj, dict):
                malformed.append(Malformed(number, "each line must be a JSON object", line[:500]))
                continue
            # Text, as for CSV: the import's fields decide types and report per row.
            rows.append({k: None if v is None else as_text(v) for k, v in obj.items()})
            if len(rows) >= batch_rows:
                yield RawBatch(pa.Table.from_pylist(rows), malformed[:])
                rows, malformed = [], []
    if rows or malformed:
        yield RawBatch(pa.Table.from_pylist(rows) if rows else pa.table({}), malformed)


def as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
