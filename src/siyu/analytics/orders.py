"""The orders the analytics read: columns, types and rules, checked before any engine runs.

One row per order, or per order line: rows sharing an order id are one order, at its
earliest time, for the sum of their amounts. Required: `order_id`, `member_id`,
`ordered_at` (ISO-8601; naive times are UTC, offsets are converted to UTC) and
`amount_fen` (integer fen, >= 0). Any other column is kept as a dimension (brand_id,
channel, city, ...). If a `status` column exists, cancelled orders are dropped: they were
never paid, so they are not purchases.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from siyu.errors import ValidationError

REQUIRED = ("order_id", "member_id", "ordered_at", "amount_fen")
TIME = pa.timestamp("us")
DAY_SECONDS = 86_400


def data_end(
    orders: ir.Table, t_end: datetime | ir.TimestampScalar | None = None
) -> ir.TimestampScalar:
    """T_end as an Ibis scalar: `t_end` if given, else the latest `ordered_at`."""
    if t_end is None:
        return orders.ordered_at.max().as_scalar()
    if isinstance(t_end, datetime):
        return ibis.timestamp(t_end)
    return t_end


def per_order(orders: ir.Table, distinct: bool = False, **columns: str) -> ir.Table:
    """One row per (member_id, order_id) at the time of its earliest row, with `columns`
    aggregated as named ("min" or "sum"): an order file of lines has several rows per order.
    `distinct=True` says the table already is one row per order (the warehouse's orders,
    `kpis.order_facts`), so nothing is aggregated: at 100M orders that aggregation is the
    most expensive step of every analysis, and a full recompute does it once."""
    for name, how in columns.items():
        if how not in ("min", "sum"):
            raise ValueError(f"{name}: aggregate with 'min' or 'sum', not {how!r}")
    if distinct:
        return orders.select("member_id", "order_id", "ordered_at", *columns)
    return orders.group_by(["member_id", "order_id"]).aggregate(
        ordered_at=orders.ordered_at.min(),
        **{name: getattr(orders[name], how)() for name, how in columns.items()},
    )


def parse_as_of(text: str) -> datetime:
    """An as-of time from ISO-8601 text: a date means the end of that day (its orders
    count); a time with an offset is converted to naive UTC like the data."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(
            "as_of", f"must be an ISO-8601 date or timestamp, got {text!r}"
        ) from None
    if len(text.strip()) == 10:  # YYYY-MM-DD
        return value.replace(hour=23, minute=59, second=59, microsecond=999_999)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def epoch_seconds(ts: ir.TimestampValue) -> ir.IntegerValue:
    """Whole seconds since 1970 (UTC). Whole first: Spark's unix_timestamp truncates,
    DuckDB's epoch keeps the fraction, and day counts must agree."""
    return ts.epoch_seconds().floor().cast("int64")


def read_orders(source: Path | pa.Table) -> pa.Table:
    """Orders from a CSV or Parquet file or an Arrow table, checked and normalised:
    ids as strings, `ordered_at` as naive UTC timestamp[us], `amount_fen` as int64."""
    table = _read_file(source) if isinstance(source, Path) else source
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise ValidationError(
            missing[0],
            f"column is missing; orders need {', '.join(REQUIRED)} "
            f"(found: {', '.join(table.column_names) or 'none'})",
        )
    columns = {name: table[name].combine_chunks() for name in table.column_names}
    for name in REQUIRED:
        _no_nulls(name, columns[name])
    columns["order_id"] = _as_string(columns["order_id"])
    columns["member_id"] = _as_string(columns["member_id"])
    columns["ordered_at"] = _as_time(columns["ordered_at"])
    columns["amount_fen"] = _as_fen(columns["amount_fen"])
    for name, col in columns.items():
        if pa.types.is_dictionary(col.type):
            columns[name] = col.cast(col.type.value_type)
    out = pa.table(columns)
    if "status" in out.column_names:
        out = out.filter(pc.fill_null(pc.not_equal(out["status"], "cancelled"), True))
    return out


def _read_file(path: Path) -> pa.Table:
    if not path.is_file():
        raise ValidationError("orders", f"no such file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pq.read_table(path)
    if suffix != ".csv":
        raise ValidationError("orders", f"must be a .csv or .parquet file, got {path.name}")
    with path.open(encoding="utf-8") as fh:
        header = fh.readline().strip().lstrip("\ufeff")
    names = [n.strip() for n in header.split(",")] if header else []
    try:
        # everything as text first: the rules below give better errors than Arrow's parser
        return pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=True,
                null_values=[""],
            ),
        )
    except pa.ArrowInvalid as exc:
        raise ValidationError("orders", f"{path.name} is not a readable CSV file: {exc}") from exc


def _no_nulls(name: str, col: pa.Array) -> None:
    if col.null_count:
        row = pc.index(pc.is_null(col), True).as_py()
        raise ValidationError(name, f"must not be empty; row {row + 1} has no value")


def _as_string(col: pa.Array) -> pa.Array:
    # ids are text chosen by the source system; numbers become their decimal spelling
    return col.cast(pa.string())


def _as_time(col: pa.Array) -> pa.Array:
    if pa.types.is_timestamp(col.type):
        if col.type.tz is not None:
            # a zone-aware timestamp holds UTC instants; dropping the zone keeps them
            col = col.cast(pa.timestamp(col.type.unit, "UTC"))
        return col.cast(pa.timestamp("us"))
    if pa.types.is_date(col.type):
        return col.cast(pa.timestamp("us"))
    if not pa.types.is_string(col.type) and not pa.types.is_large_string(col.type):
        raise ValidationError("ordered_at", f"must be a timestamp or ISO-8601 text, got {col.type}")
    for target in (TIME, pa.timestamp("us", "UTC")):
        try:
            return pc.cast(col, target).cast(TIME)
        except pa.ArrowInvalid:
            continue
    # mixed spellings (some with offsets, some dates only): Python's parser takes them all
    parsed: list[datetime] = []
    for row, text in enumerate(col.to_pylist()):
        try:
            value = datetime.fromisoformat(text.strip())
        except ValueError:
            raise ValidationError(
                "ordered_at", f"must be an ISO-8601 timestamp; row {row + 1} has {text!r}"
            ) from None
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        parsed.append(value)
    return pa.array(parsed, TIME)


def _as_fen(col: pa.Array) -> pa.Array:
    if pa.types.is_floating(col.type) or pa.types.is_decimal(col.type):
        raise ValidationError(
            "amount_fen", f"must be integer fen (1/100 CNY), got a {col.type} column"
        )
    if pa.types.is_integer(col.type):
        fen = col.cast(pa.int64())
    elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        try:
            fen = pc.cast(pc.utf8_trim_whitespace(col), pa.int64())
        except pa.ArrowInvalid:
            ok = pc.match_substring_regex(col, r"^\s*[+-]?\d+\s*$")
            row = pc.index(ok, False).as_py()
            raise ValidationError(
                "amount_fen",
                f"must be integer fen (1/100 CNY); row {row + 1} has {col[row].as_py()!r}",
            ) from None
    else:
        raise ValidationError("amount_fen", f"must be integer fen (1/100 CNY), got {col.type}")
    negative = pc.less(fen, 0)
    if pc.any(negative).as_py():
        row = pc.index(negative, True).as_py()
        raise ValidationError("amount_fen", f"must be >= 0; row {row + 1} has {fen[row].as_py()}")
    return fen
