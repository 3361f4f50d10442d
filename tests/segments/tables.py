"""Small segment tables (members, orders, lines, products, events, memberships) as Arrow,
registered on an engine as `SegmentTables`."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from ibis import BaseBackend

from siyu.analytics.engines import load_arrow
from siyu.segments.compile import SegmentTables

TIME = pa.timestamp("us")
SCHEMAS = {
    "members": {
        "member_id": pa.string(),
        "status": pa.string(),
        "stage": pa.string(),
        "tier": pa.string(),
        "points": pa.int64(),
        "registered_at": TIME,
    },
    "orders": {
        "order_id": pa.string(),
        "member_id": pa.string(),
        "ordered_at": TIME,
        "amount_fen": pa.int64(),
        "status": pa.string(),
        "brand_id": pa.string(),
        "channel": pa.string(),
    },
    # as written by a test; `register` gives each line its order's member, time and status
    "order_lines": {"order_id": pa.string(), "sku": pa.string()},
    "products": {"sku": pa.string(), "category": pa.string()},
    "events": {
        "member_id": pa.string(),
        "type": pa.string(),
        "occurred_at": TIME,
        "sku": pa.string(),
    },
    "memberships": {"segment": pa.string(), "member_id": pa.string()},
}


def arrow(name: str, rows: list[tuple[Any, ...]]) -> pa.Table:
    schema = pa.schema(SCHEMAS[name])
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in schema.names]
    return pa.table(
        {
            n: pa.array(list(c), schema.field(n).type)
            for n, c in zip(schema.names, columns, strict=True)
        },
        schema=schema,
    )


def register(
    con: BaseBackend, data: dict[str, list[tuple[Any, ...]]], prefix: str = "seg"
) -> SegmentTables:
    """Every table of `data` (rows in SCHEMAS order) loaded into `con`; the order lines
    carry their order's member, time and status, as the warehouse lands them."""
    loaded = {
        name: load_arrow(con, table, f"{prefix}_{name}")
        for name, table in arrow_tables(data).items()
    }
    return SegmentTables(**loaded)


def arrow_tables(data: dict[str, list[tuple[Any, ...]]]) -> dict[str, pa.Table]:
    """Every table of `data` as Arrow, the order lines with their orders' columns."""
    tables = {name: arrow(name, rows) for name, rows in data.items()}
    if "order_lines" in tables:
        tables["order_lines"] = with_orders(tables["order_lines"], tables["orders"])
    return tables


def with_orders(lines: pa.Table, orders: pa.Table) -> pa.Table:
    """`lines` (order_id, sku, ...) with their order's member_id, ordered_at and status
    (lines of an order not in `orders` are dropped, as the store's foreign key would)."""
    wanted = orders.select(["order_id", "member_id", "ordered_at", "status"])
    return lines.join(wanted, "order_id", join_type="inner")
