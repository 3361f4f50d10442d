"""What the warehouse holds: the tables landed from the operational store, column by column.

One list, read by the store side (which SQL to run), the warehouse side (which DuckDB and
Arrow types) and the readers (the schema of a table with no rows yet). Only columns that
are not personal are listed, so nothing else can be landed: identities carry type, brand,
channel, times and member, never `value`, `value_enc` or `value_masked`; members carry no
name, gender, birth date or city; events no free-form `properties`; refunds no `reason`.

Facts (orders, lines, refunds, events) are append-only in the store and are landed by day
partitions: the UTC day of the fact (an order line takes its order's day). Snapshots
(identities, members) change in place, since OneID moves identities between members, and
are landed whole when their fingerprint changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import pyarrow as pa

Kind = Literal["text", "int", "time", "bool"]

ARROW: dict[Kind, pa.DataType] = {
    "text": pa.string(),
    "int": pa.int64(),
    "time": pa.timestamp("us"),
    "bool": pa.bool_(),
}
DUCKDB: dict[Kind, str] = {
    "text": "VARCHAR",
    "int": "BIGINT",
    "time": "TIMESTAMP",
    "bool": "BOOLEAN",
}
PARTITION = "day"  # the partition column every fact table has (DATE: the fact's UTC day)
EPOCH = date(1970, 1, 1)  # day partitions are numbered in days since then


def day_of(number: int) -> date:
    """The date of a day partition number."""
    return EPOCH + timedelta(days=number)


def day_number(day: date) -> int:
    """The partition number of a date."""
    return (day - EPOCH).days


@dataclass(frozen=True)
class Col:
    name: str
    kind: Kind
    source: str | None = None  # the alias it is read from in the store, if not the fact's


@dataclass(frozen=True)
class Fact:
    """An append-only fact table, landed by the UTC day of `time` (an `alias.column`)."""

    name: str
    source: str  # FROM clause in the store
    alias: str  # the alias whose group_id scopes the rows
    time: str  # alias.column whose day is the partition
    columns: tuple[Col, ...]
    # the column naming the identity whose member the row's `member_id` was landed with:
    # OneID may move that identity later (`warehouse.Warehouse._current`)
    identity: str | None = None

    def schema(self) -> pa.Schema:
        return pa.schema(
            [(c.name, ARROW[c.kind]) for c in self.columns] + [(PARTITION, pa.date32())]
        )


@dataclass(frozen=True)
class Snapshot:
    """A table that changes in place, landed whole when its fingerprint changes.

    The fingerprint is (rows, max key, a weighted checksum of `watched` columns), computed
    with the same integer arithmetic in the store and in the warehouse."""

    name: str
    source: str
    alias: str
    key: str
    columns: tuple[Col, ...]
    watched: tuple[str, ...]

    def schema(self) -> pa.Schema:
        return pa.schema([(c.name, ARROW[c.kind]) for c in self.columns])

    def kind(self, column: str) -> Kind:
        return next(c.kind for c in self.columns if c.name == column)


def _cols(spec: str) -> tuple[Col, ...]:
    """ "a b:int c:time o.d" -> columns (text unless a kind is given; `o.d` is read from
    the source's alias `o`, not the fact's own)."""
    out = []
    for item in spec.split():
        ref, _, kind = item.partition(":")
        source, _, name = ref.rpartition(".")
        out.append(Col(name, kind or "text", source or None))  # type: ignore[arg-type]
    return tuple(out)


FACTS: tuple[Fact, ...] = (
    Fact(
        "orders",
        "orders o",
        "o",
        "o.ordered_at",
        _cols(
            "group_id order_id brand_id channel store_id guide_id buyer_identity_id:int "
            "member_id:int status ordered_at:time paid_at:time total_fen:int discount_fen:int "
            "paid_fen:int"
        ),
        "buyer_identity_id",
    ),
    Fact(
        "order_lines",
        "order_lines l JOIN orders o ON o.group_id = l.group_id AND o.order_id = l.order_id",
        "l",
        "o.ordered_at",
        # a line carries its order's buyer, time and status, so what reads lines by member
        # and time (segments' `bought`, the category tags) never joins the 82M orders back
        _cols(
            "group_id order_id line_no:int sku qty:int unit_price_fen:int amount_fen:int "
            "o.buyer_identity_id:int o.member_id:int o.status o.ordered_at:time"
        ),
        "buyer_identity_id",
    ),
    Fact(
        "refunds",
        "refunds r",
        "r",
        "r.refunded_at",
        _cols("group_id refund_id order_id line_no:int qty:int refunded_at:time amount_fen:int"),
    ),
    Fact(
        "events",
        "events e",
        "e",
        "e.occurred_at",
        _cols(
            "group_id event_id type channel identity_id:int member_id:int occurred_at:time "
            "sku store_id guide_id order_id scene"
        ),
        "identity_id",
    ),
)

SNAPSHOTS: tuple[Snapshot, ...] = (
    Snapshot(
        "identities",
        "identities i",
        "i",
        "identity_id",
        _cols(
            "group_id identity_id:int type brand_id verified:bool source_channel "
            "first_seen:time member_id:int"
        ),
        ("member_id", "first_seen", "verified"),
    ),
    Snapshot(
        "members",
        "members m",
        "m",
        "member_id",
        _cols("group_id member_id:int status merged_into:int brand_id registered_at:time"),
        ("merged_into", "registered_at"),
    ),
)

ALL: tuple[Fact | Snapshot, ...] = (*FACTS, *SNAPSHOTS)
TABLES: dict[str, Fact | Snapshot] = {t.name: t for t in ALL}

# Columns that must never reach the warehouse, whatever a future spec says (tested).
PERSONAL = frozenset(
    {"value", "value_enc", "value_masked", "name_enc", "name_masked", "gender", "birth_date"}
    | {"city", "home_store_id", "properties", "reason", "source_ref", "coupon_code"}
)
