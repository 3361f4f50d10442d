"""Read CSV, JSON Lines and Parquet in batches of raw rows, never the whole file at once.

`check_file` reads the whole file once before anything is applied, so a file that cannot
be read as a whole (not UTF-8, empty, truncated or corrupt) is one clear error naming the
file and the line, and no batch of it reaches the store.

Rows a parser cannot even split (a CSV line with the wrong number of fields, a JSON line
that is not JSON) are not fatal: they come back as `Malformed` so the import can count
and report them like any other rejected row.

Every row carries its number, as the rejects file reports it: the file line where the row
starts for CSV and JSON Lines (the header is line 1 of a CSV file, so its first row is
line 2; blank lines count), the 1-based row index for Parquet.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from siyu.errors import ValidationError

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
# Cells that mean "no value" in CSV exports (spreadsheets, database dumps): Arrow's list.
_CSV_NULLS = pa.array(
    [
        *("#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND"),
        *("1.#QNAN", "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null"),
    ]
)
_CHUNK = 1 << 20
_MAX_FIELD = 16 << 20  # a CSV cell up to 16 MB (Python's default stops at 128 KB)


@dataclass(frozen=True)
class Malformed:
    line: int
    rule: str
    text: str
    # What could be split, by column (a CSV row's fields in order), for the rejects file.
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class RawBatch:
    table: pa.Table
    malformed: list[Malformed]
    # Per table row: its number (file line for CSV/JSONL, row index for Parquet).
    numbers: list[int] = field(default_factory=list)
    # Per table row: the text as read (the CSV record, the JSON line); None for Parquet.
    texts: list[str] | None = None


def file_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValidationError(
            "file", f"{path.name}: extension must be one of {', '.join(sorted(FORMATS))}"
        )
    return fmt


def check_file(path: Path) -> None:
    """Raise a ValidationError naming the file (and line) unless the whole file can be read:
    not empty, UTF-8 text for CSV/JSONL (a JSONL file not cut off mid-object), a complete
    Parquet file whose every page decodes."""
    fmt = file_format(path)
    if path.stat().st_size == 0:
        raise _file_error(path, "the file is empty")
    if fmt == "parquet":
        _check_parquet(path)
        return
    tail = _check_text(path)
    if fmt == "csv":
        _check_header(path)
    elif tail.strip():
        # The last line has no line break: a complete object, or a file cut off mid-write.
        try:
            json.loads(tail)
        except ValueError:
            line = _count_lines(path)
            raise _file_error(
                path, f"line {line}: the file ends in the middle of a JSON object (truncated?)"
            ) from None


def _file_error(path: Path, problem: str) -> ValidationError:
    return ValidationError("file", f"{path.name}: {problem}")


def _check_text(path: Path) -> str:
    """Check the bytes are UTF-8 and not all blank; return the text after the last line
    break (empty when the file ends with one)."""
    lines_before = 0
    carry = b""
    tail = b""
    content = False
    first = True
    with path.open("rb") as fh:
        while True:
            block = fh.read(_CHUNK)
            at_end = not block
            data = carry + block
            if first and data.startswith(b"\xef\xbb\xbf"):
                data = data[3:]
            first = False
            try:
                data.decode("utf-8")
                carry = b""
            except UnicodeDecodeError as exc:
                if not at_end and exc.reason == "unexpected end of data":
                    carry, data = data[exc.start :], data[: exc.start]  # split mid-character
                else:
                    line = lines_before + data.count(b"\n", 0, exc.start) + 1
                    raise _file_error(
                        path,
                        f"line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); save the "
                        "file as UTF-8 (in Excel: CSV UTF-8)",
                    ) from None
            content = content or bool(data.strip())
            lines_before += data.count(b"\n")
            cut = data.rfind(b"\n")
            tail = data[cut + 1 :] if cut >= 0 else tail + data
            if at_end:
                break
    if not content:
        raise _file_error(path, "the file is empty")
    return tail.decode("utf-8")


def _count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(block.count(b"\n") for block in iter(lambda: fh.read(_CHUNK), b"")) + 1


def _check_header(path: Path) -> None:
    names = _header(path)[0]
    seen: set[str] = set()
    for name in names:
        if name in seen and not name.startswith("column_"):
            raise _file_error(path, f"line 1: the header names the column {name!r} twice")
        seen.add(name)


def _header(path: Path) -> tuple[list[str], int]:
    """The CSV header's column names (blank names become column_N) and its line."""
    csv.field_size_limit(_MAX_FIELD)
    with path.open("r", encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        for record in reader:
            if record:
                names = [n.strip() or f"column_{i + 1}" for i, n in enumerate(record)]
                return names, reader.line_num
    return [], 0


def _check_parquet(path: Path) -> None:
    try:
        pf = pq.ParquetFile(path)
        for _ in pf.iter_batches(batch_size=65_536):
            pass
    except (pa.ArrowException, OSError) as exc:
        raise _file_error(
            path, f"not a readable Parquet file; it may be truncated or corrupt ({exc})"
        ) from None


def total_rows(path: Path) -> int | None:
    """Rows in the file when cheap to know (Parquet metadata), for the progress bar."""
    if file_format(path) == "parquet":
        return int(pq.ParquetFile(path).metadata.num_rows)
    return None


def read_batches(path: Path, batch_rows: int) -> Iterator[RawBatch]:
    fmt = file_format(path)
    if fmt == "parquet":
        yield from _parquet_batches(path, batch_rows)
    elif fmt == "csv":
        yield from _csv_batches(path, batch_rows)
    else:
        yield from _jsonl_batches(path, batch_rows)


def _parquet_batches(path: Path, batch_rows: int) -> Iterator[RawBatch]:
    done = 0
    for record_batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
        n = record_batch.num_rows
        numbers = list(range(done + 1, done + n + 1))
        yield RawBatch(pa.Table.from_batches([record_batch]), [], numbers)
        done += n


def _csv_batches(path: Path, batch_rows: int) -> Iterator[RawBatch]:
    names, header_line = _header(path)
    consumed: list[str] = []
    with path.open("r", encoding="utf-8-sig", newline="") as fh:

        def lines() -> Iterator[str]:
            for line in fh:
                consumed.append(line)
                yield line

        reader = csv.reader(lines())
        records: list[list[str]] = []
        numbers: list[int] = []
        texts: list[str] = []
        malformed: list[Malformed] = []
        line_before = 0
        for record in reader:
            start, line_before = line_before + 1, reader.line_num
            raw = "".join(consumed).rstrip("\r\n")
            consumed.clear()
            if start <= header_line or not record:
                continue  # the header, and blank lines
            if len(record) != len(names):
                malformed.append(
                    Malformed(
                        start,
                        f"row has {len(record)} fields, the header has {len(names)}",
                        raw,
                        dict(zip(names, record, strict=False)),
                    )
                )
            else:
                records.append(record)
                numbers.append(start)
                texts.append(raw)
            if len(records) >= batch_rows:
                yield RawBatch(_csv_table(names, records), malformed, numbers, texts)
                records, numbers, texts, malformed = [], [], [], []
        if records or malformed:
            yield RawBatch(_csv_table(names, records), malformed, numbers, texts)


def _csv_table(names: list[str], records: list[list[str]]) -> pa.Table:
    """Everything as text: types are decided by the import's own fields, with errors per
    row, not by inference for the whole column."""
    columns = list(zip(*records, strict=True)) if records else [()] * len(names)
    arrays = []
    for values in columns:
        array = pa.array(values, pa.string())
        arrays.append(pc.if_else(pc.is_in(array, value_set=_CSV_NULLS), None, array))
    return pa.table(arrays, names=names)


def _jsonl_batches(path: Path, batch_rows: int) -> Iterator[RawBatch]:
    rows: list[dict[str, object]] = []
    numbers: list[int] = []
    texts: list[str] = []
    malformed: list[Malformed] = []
    with path.open("r", encoding="utf-8-sig") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            text = line.rstrip("\r\n")
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                malformed.append(Malformed(number, f"not valid JSON ({exc.msg})", text))
                continue
            if not isinstance(obj, dict):
                malformed.append(Malformed(number, "each line must be a JSON object", text))
                continue
            # Text, as for CSV: the import's fields decide types and report per row.
            rows.append({k: None if v is None else as_text(v) for k, v in obj.items()})
            numbers.append(number)
            texts.append(text)
            if len(rows) >= batch_rows:
                yield RawBatch(_json_table(rows), malformed, numbers, texts)
                rows, numbers, texts, malformed = [], [], [], []
    if rows or malformed:
        yield RawBatch(_json_table(rows), malformed, numbers, texts)


def _json_table(rows: list[dict[str, object]]) -> pa.Table:
    names = list(dict.fromkeys(k for row in rows for k in row))
    return pa.table({n: pa.array([row.get(n) for row in rows], pa.string()) for n in names})


def as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def cell_texts(column: pa.Array | pa.ChunkedArray) -> list[str | None]:
    """A raw column's values as text for the rejects file, whatever their type (a Parquet
    date of year 0 included, which Python's date cannot hold)."""
    try:
        return list(column.cast(pa.string()).to_pylist())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        out: list[str | None] = []
        for value in column:
            try:
                v = value.as_py()
                out.append(None if v is None else as_text(v))
            except (ValueError, OverflowError):
                out.append(str(value))
        return out
