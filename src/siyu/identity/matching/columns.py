"""The record shapes of probabilistic matching: what a caller gives, what Splink compares.

A caller (the store's loader, a labelled data set) gives `RAW_COLUMNS`; `standardise`
turns them into `STANDARD_COLUMNS`. Every column but `record_id` may be null, and a column
a caller does not have may be left out: it is read as all null, and a field no record
carries is not compared (the model has nothing to learn from it).
"""

from __future__ import annotations

import pyarrow as pa

from siyu.errors import ValidationError

UNIQUE_ID = "record_id"

RAW_COLUMNS = pa.schema(
    [
        pa.field(UNIQUE_ID, pa.int64(), nullable=False),
        pa.field("given_name", pa.string()),
        pa.field("family_name", pa.string()),
        # the full name, read only when both parts are null (split by `names.split_full_name`)
        pa.field("name", pa.string()),
        pa.field("birth_date", pa.date32()),
        pa.field("city", pa.string()),
        pa.field("postcode", pa.string()),
        pa.field("address", pa.string()),
        pa.field("email", pa.string()),
        pa.field("phone", pa.string()),  # E.164, e.g. +8613812345678
        pa.field("nickname", pa.string()),
        pa.field("device_id", pa.string()),
        # an identity number typed by hand (a national or social-security id); equality is
        # the deterministic layer's business, a near miss is weak evidence here
        pa.field("id_number", pa.string()),
    ]
)

STANDARD_COLUMNS = pa.schema(
    [
        pa.field(UNIQUE_ID, pa.int64(), nullable=False),
        pa.field("given_name", pa.string()),  # simplified, lower-case, letters only
        pa.field("family_name", pa.string()),
        pa.field("given_pinyin", pa.string()),  # toneless pinyin; latin names as they are
        pa.field("family_pinyin", pa.string()),
        pa.field("name_pinyin", pa.string()),  # family then given pinyin, for similarity
        pa.field("birth_date", pa.date32()),
        pa.field("birth_ymd", pa.string()),  # YYYYMMDD: typos and day/month swaps
        pa.field("city", pa.string()),
        pa.field("postcode", pa.string()),
        pa.field("address", pa.string()),
        pa.field("email", pa.string()),
        pa.field("email_user", pa.string()),  # the local part without a +tag
        pa.field("phone", pa.string()),  # digits only, country code first
        pa.field("nickname", pa.string()),
        pa.field("device_id", pa.string()),
        pa.field("id_number", pa.string()),
    ]
)


def conform(raw: pa.Table) -> pa.Table:
    """`raw` with exactly RAW_COLUMNS, in order: missing columns become nulls, and a
    column of the wrong type or a null record_id is refused with the field named."""
    if UNIQUE_ID not in raw.column_names:
        raise ValidationError(UNIQUE_ID, "records need a record_id column (int64)")
    unknown = sorted(set(raw.column_names) - set(RAW_COLUMNS.names))
    if unknown:
        raise ValidationError(
            unknown[0], f"is not a matching column ({', '.join(RAW_COLUMNS.names)})"
        )
    columns = []
    for field in RAW_COLUMNS:
        if field.name not in raw.column_names:
            columns.append(pa.nulls(raw.num_rows, field.type))
            continue
        column = raw.column(field.name)
        if column.type != field.type:
            if (
                pa.types.is_null(column.type)
                or (pa.types.is_integer(column.type) and pa.types.is_integer(field.type))
                or (pa.types.is_large_string(column.type) and pa.types.is_string(field.type))
            ):
                column = column.cast(field.type)
            else:
                raise ValidationError(field.name, f"must be {field.type}, got {column.type}")
        columns.append(column)
    table = pa.Table.from_arrays(columns, schema=RAW_COLUMNS.with_metadata(None))
    if table.column(UNIQUE_ID).null_count:
        raise ValidationError(UNIQUE_ID, "must not be null")
    return table
