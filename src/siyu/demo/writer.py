"""Parquet schemas of the file contract and a sink that appends one chunk at a time.

Column names, order and types follow docs/data-format.md exactly: timestamps are
timestamp('s') in naive UTC, money int64 fen, flags bool. Required columns are declared
non-nullable so a reader sees the contract in the file itself.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import pyarrow as pa
import pyarrow.parquet as pq

TS = pa.timestamp("s")
STR = pa.string()


def _schema(*cols: tuple[str, pa.DataType, bool]) -> pa.Schema:
    return pa.schema([pa.field(name, typ, nullable=not required) for name, typ, required in cols])


SCHEMAS: dict[str, pa.Schema] = {
    "members": _schema(
        ("member_ref", STR, True),
        ("brand_id", STR, True),
        ("registered_at", TS, True),
        ("channel", STR, True),
        ("card", STR, False),
        ("phone", STR, False),
        ("name", STR, False),
        ("gender", STR, False),
        ("birth_date", pa.date32(), False),
        ("city", STR, False),
        ("home_store_id", STR, False),
        ("given_name", STR, False),
        ("family_name", STR, False),
        ("email", STR, False),
        ("address", STR, False),
        ("postcode", STR, False),
    ),
    "identities": _schema(
        ("type", STR, True),
        ("value", STR, True),
        ("channel", STR, True),
        ("observed_at", TS, True),
        ("verified", pa.bool_(), False),
        ("linked_type", STR, False),
        ("linked_value", STR, False),
        ("brand_id", STR, False),
        ("scope", STR, False),
        ("linked_scope", STR, False),
    ),
    "orders": _schema(
        ("order_id", STR, True),
        ("brand_id", STR, True),
        ("channel", STR, True),
        ("buyer_type", STR, True),
        ("buyer_value", STR, True),
        ("buyer_scope", STR, False),
        ("ordered_at", TS, True),
        ("total_fen", pa.int64(), True),
        ("paid_fen", pa.int64(), True),
        ("discount_fen", pa.int64(), False),
        ("status", STR, False),
        ("paid_at", TS, False),
        ("store_id", STR, False),
        ("guide_id", STR, False),
        ("coupon_code", STR, False),
    ),
    "order_lines": _schema(
        ("order_id", STR, True),
        ("line_no", pa.int32(), True),
        ("sku", STR, True),
        ("qty", pa.int32(), True),
        ("unit_price_fen", pa.int64(), True),
        ("amount_fen", pa.int64(), True),
    ),
    "refunds": _schema(
        ("refund_id", STR, True),
        ("order_id", STR, True),
        ("refunded_at", TS, True),
        ("amount_fen", pa.int64(), True),
        ("line_no", pa.int32(), False),
        ("qty", pa.int32(), False),
        ("reason", STR, False),
    ),
    "events": _schema(
        ("event_id", STR, True),
        ("type", STR, True),
        ("channel", STR, True),
        ("identity_type", STR, True),
        ("identity_value", STR, True),
        ("identity_scope", STR, False),
        ("occurred_at", TS, True),
        ("sku", STR, False),
        ("store_id", STR, False),
        ("guide_id", STR, False),
        ("order_id", STR, False),
        ("scene", STR, False),
    ),
    "truth/identity_truth": _schema(
        ("type", STR, True),
        ("value", STR, True),
        ("person_id", pa.int64(), True),
        ("brand_id", STR, False),  # a card's issuing brand: card numbers repeat across brands
    ),
    "truth/members": _schema(
        ("member_ref", STR, True),
        ("brand_id", STR, True),
        ("person_id", pa.int64(), True),
        ("record", STR, True),
        ("phone_error", STR, True),
        ("name_form", STR, True),
        ("birth_form", STR, True),
        ("city_form", STR, True),
    ),
    "truth/persons": _schema(
        ("person_id", pa.int64(), True),
        ("household_id", pa.int64(), True),
        ("city", STR, True),
        ("gender", STR, True),
        ("birth_date", pa.date32(), False),
        ("name", STR, True),
        ("buyer", pa.bool_(), True),
        ("n_orders", pa.int32(), True),
        ("n_orders_uncensored", pa.int32(), True),
        ("censored", pa.bool_(), True),
        ("first_order_at", TS, False),
        ("last_order_at", TS, False),
        ("phone", STR, True),
        ("second_phone", STR, False),
        ("phone_changed_at", TS, False),
        ("brands", STR, True),
        ("cards", STR, False),
        ("channels", STR, True),
    ),
}


# Low-cardinality columns: dictionary-encoded. Ids and values are (nearly) unique, so
# trying a dictionary on them only costs time.
DICTIONARY_COLUMNS = frozenset(
    {
        "brand_id", "channel", "type", "linked_type", "buyer_type", "identity_type", "status",
        "store_id", "guide_id", "coupon_code", "sku", "city", "gender", "home_store_id", "reason",
        "scene", "brands", "cards", "channels", "postcode", "record", "phone_error", "name_form",
        "birth_form", "city_form",
    }
)  # fmt: skip


def file_name(name: str) -> str:
    """Relative path of a Parquet output, e.g. 'truth/persons.parquet'."""
    return f"{name}.parquet"


class Sink:
    """One ParquetWriter per output file, opened up front so empty outputs still exist."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.rows: dict[str, int] = {}
        self._writers: dict[str, pq.ParquetWriter] = {}

    def __enter__(self) -> Sink:
        for name, schema in SCHEMAS.items():
            path = self.out_dir / file_name(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            dictionary = [f.name for f in schema if f.name in DICTIONARY_COLUMNS]
            self._writers[name] = pq.ParquetWriter(
                path, schema, compression="zstd", use_dictionary=dictionary
            )
            self.rows[file_name(name)] = 0
        return self

    def write(self, name: str, columns: dict[str, pa.Array]) -> None:
        """Append one chunk of rows, given as columns in any order."""
        schema = SCHEMAS[name]
        table = pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)
        if table.num_rows:
            self._writers[name].write_table(table)
            self.rows[file_name(name)] += table.num_rows

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for writer in self._writers.values():
            writer.close()
