"""Typed fields of an import file and their vectorised conversion.

Each column is converted in one Arrow call when every value is good (the common case);
only a column that fails falls back to converting value by value, so that each bad row
gets its own error naming the field and the rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TIMESTAMP = pa.timestamp("s")
_INT = re.compile(r"[+-]?\d+")
_TRUE = {"true", "1", "t", "yes", "y"}
_FALSE = {"false", "0", "f", "no", "n"}

# The time rules (docs/data-format.md, "Dates and times"): a business time (registration,
# order, payment, refund, event, observation) is not before EARLIEST (configurable per
# import) and not in the future beyond CLOCK_SKEW; a birth date is between BIRTH_EARLIEST
# and today; any other date or time (a store's opening) lies within SANE.
EARLIEST = datetime(2000, 1, 1)
CLOCK_SKEW = timedelta(minutes=10)
BIRTH_EARLIEST = date(1900, 1, 1)
SANE = (datetime(1900, 1, 1), datetime(2100, 1, 1))


@dataclass(frozen=True)
class Limits:
    """The dates and times rows may carry, fixed when an import starts."""

    now: datetime  # UTC, naive, as stored
    earliest: datetime = EARLIEST

    @classmethod
    def starting_now(cls, earliest: datetime | None = None) -> Limits:
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        return cls(now, earliest or EARLIEST)


@dataclass(frozen=True)
class Field:
    """One column: its name, kind, whether it is required, and the rule in words."""

    name: str
    kind: str  # text | int | fen | timestamp | date | bool | enum
    required: bool = False
    max_len: int = 200
    minimum: int | None = None
    choices: Collection[str] = ()
    default: Any = None
    # For a timestamp: "business" (a fact's time: the floor and the clock apply); for a
    # date: "birth". Other dates and times only have to lie within SANE.
    when: str = ""

    @property
    def arrow_type(self) -> pa.DataType:
        return {
            "text": pa.string(),
            "enum": pa.string(),
            "int": pa.int64(),
            "fen": pa.int64(),
            "timestamp": TIMESTAMP,
            "date": pa.date32(),
            "bool": pa.bool_(),
        }[self.kind]


@dataclass
class Converted:
    """A converted column and, per row, the rule it broke (None where it is fine)."""

    array: pa.Array
    errors: list[str | None]


def convert(
    field: Field, column: pa.Array | None, n_rows: int, limits: Limits | None = None
) -> Converted:
    """Convert one raw column (any Arrow type, or missing) to the field's type."""
    if column is None:
        column = pa.nulls(n_rows, pa.string())
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        # Blank strings mean "not given", as in most spreadsheets' CSV exports.
        stripped = pc.utf8_trim_whitespace(column)
        column = pc.if_else(pc.equal(stripped, ""), pa.scalar(None, pa.string()), stripped)
    array = _fast(field, column)
    errors: list[str | None]
    if array is None:
        array, errors = _slow(field, column)
    else:
        errors = [None] * n_rows
    if field.default is not None:
        array = array.fill_null(pa.scalar(field.default, field.arrow_type))
    _check_rules(field, array, errors)
    if field.kind in ("timestamp", "date"):
        _check_time(field, array, errors, limits or Limits.starting_now())
    if any(e is not None for e in errors):
        # A broken value never travels further (a year-0 date cannot even become Python's).
        bad = pa.array([e is not None for e in errors])
        array = pc.if_else(bad, pa.scalar(None, array.type), array)
    return Converted(array, errors)


def _fast(field: Field, column: pa.Array) -> pa.Array | None:
    try:
        if field.kind == "timestamp":
            return _cast_timestamp(column)
        if field.kind == "bool" and not pa.types.is_boolean(column.type):
            return None  # words like "yes" need the slow path's vocabulary
        if field.kind in ("int", "fen") and pa.types.is_floating(column.type):
            return None  # 12.5 must be rejected, not truncated
        return column.cast(field.arrow_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None


def _cast_timestamp(column: pa.Array) -> pa.Array:
    if pa.types.is_timestamp(column.type):
        if column.type.tz is not None:
            column = column.cast(pa.timestamp(column.type.unit, tz="UTC"))
            column = pc.local_timestamp(column)  # UTC wall clock, naive
        return column.cast(TIMESTAMP)
    if pa.types.is_date(column.type):
        return column.cast(TIMESTAMP)
    return column.cast(TIMESTAMP)


def _slow(field: Field, column: pa.Array) -> tuple[pa.Array, list[str | None]]:
    parse = _PARSERS[field.kind]
    values: list[Any] = []
    errors: list[str | None] = []
    for raw in column.to_pylist():
        if raw is None:
            values.append(None)
            errors.append(None)
            continue
        try:
            values.append(parse(raw, field))
            errors.append(None)
        except (ValueError, TypeError, OverflowError) as exc:
            values.append(None)
            errors.append(str(exc))
    return pa.array(values, type=field.arrow_type), errors


def _parse_int(raw: Any, field: Field) -> int:
    if isinstance(raw, bool):
        raise ValueError("must be an integer")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        if raw.is_integer():
            return int(raw)
        unit = " (integer fen, 1/100 CNY)" if field.kind == "fen" else ""
        raise ValueError(f"must be an integer{unit}")
    text = str(raw).strip()
    if not _INT.fullmatch(text):
        unit = " (integer fen, 1/100 CNY; no decimal point)" if field.kind == "fen" else ""
        raise ValueError(f"must be an integer{unit}")
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise ValueError("is out of range for a 64-bit integer")
    return value


def _parse_timestamp(raw: Any, field: Field) -> datetime:
    if isinstance(raw, datetime):
        parsed = raw
    elif isinstance(raw, date):
        parsed = datetime(raw.year, raw.month, raw.day)
    else:
        try:
            parsed = datetime.fromisoformat(str(raw).strip())
        except ValueError:
            raise ValueError("must be an ISO-8601 timestamp like 2025-03-01T10:15:00") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed.replace(microsecond=0)


def _parse_date(raw: Any, field: Field) -> date:
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(str(raw).strip())
    except ValueError:
        raise ValueError("must be a date like 1990-04-01") from None


def _parse_bool(raw: Any, field: Field) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("must be true or false")


def _parse_text(raw: Any, field: Field) -> str:
    return str(raw)


_PARSERS: dict[str, Callable[[Any, Field], Any]] = {
    "text": _parse_text,
    "enum": _parse_text,
    "int": _parse_int,
    "fen": _parse_int,
    "timestamp": _parse_timestamp,
    "date": _parse_date,
    "bool": _parse_bool,
}


def _flag(errors: list[str | None], mask: pa.Array, rule: str) -> None:
    for i in np.flatnonzero(mask.to_numpy(zero_copy_only=False)):
        if errors[i] is None:
            errors[i] = rule


def _check_time(field: Field, array: pa.Array, errors: list[str | None], limits: Limits) -> None:
    def outside(low: Any, high: Any, rule: str, strict_high: bool = False) -> None:
        lo = pc.less(array, pa.scalar(low, array.type))
        hi = (pc.greater_equal if strict_high else pc.greater)(array, pa.scalar(high, array.type))
        _flag(errors, pc.fill_null(pc.or_(lo, hi), False), rule)

    if field.kind == "date" and field.when == "birth":
        # Today anywhere: the date in the first time zone to reach it (UTC+14).
        today = (limits.now + timedelta(hours=14)).date()
        outside(BIRTH_EARLIEST, today, f"must be between {BIRTH_EARLIEST} and today")
    elif field.kind == "timestamp" and field.when == "business":
        floor = limits.earliest
        _flag(
            errors,
            pc.fill_null(pc.less(array, pa.scalar(floor, array.type)), False),
            f"must not be before {floor.date() if floor.time() == datetime.min.time() else floor}",
        )
        minutes = int(CLOCK_SKEW.total_seconds() // 60)
        ahead = pc.greater(array, pa.scalar(limits.now + CLOCK_SKEW, array.type))
        _flag(
            errors,
            pc.fill_null(ahead, False),
            f"must not be in the future (more than {minutes} minutes ahead)",
        )
    else:
        low, high = SANE
        if field.kind == "date":
            low, high = low.date(), high.date()  # type: ignore[assignment]
        outside(low, high, "must be between 1900-01-01 and 2099-12-31", strict_high=True)


def _check_rules(field: Field, array: pa.Array, errors: list[str | None]) -> None:
    """Required, length, range and choice rules, vectorised; first broken rule wins."""

    def flag(mask: pa.Array, rule: str) -> None:
        _flag(errors, mask, rule)

    if field.required:
        flag(array.is_null(), "is required")
    if field.kind in ("text", "enum"):
        # PostgreSQL cannot store NUL, and no identifier or code contains control characters.
        flag(
            pc.fill_null(pc.match_substring_regex(array, r"[\x00-\x08\x0b\x0c\x0e-\x1f]"), False),
            "must not contain control characters",
        )
        flag(
            pc.fill_null(pc.greater(pc.utf8_length(array), field.max_len), False),
            f"must be at most {field.max_len} characters",
        )
    if field.kind == "enum" and field.choices:
        allowed = pa.array(sorted(field.choices))
        bad = pc.and_(pc.invert(pc.is_in(array, value_set=allowed)), array.is_valid())
        flag(bad, f"must be one of: {', '.join(sorted(field.choices))}")
    if field.kind == "fen":
        flag(pc.fill_null(pc.less(array, 0), False), "must be >= 0 (integer fen)")
    elif field.minimum is not None:
        flag(pc.fill_null(pc.less(array, field.minimum), False), f"must be >= {field.minimum}")
