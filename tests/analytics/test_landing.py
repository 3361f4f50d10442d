"""Landing the store into the warehouse: complete, idempotent, incremental, following OneID,
and never carrying personal data. Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text
from tests.analytics.store_brand import (
    NAMES,
    PHONES,
    T1,
    event,
    import_and_resolve,
    line,
    order,
    write_brand,
)
from tests.brandfiles import write
from tests.conftest import Store

from siyu.analytics.engines import connect
from siyu.analytics.landing import land
from siyu.analytics.schema import ALL, PERSONAL
from siyu.analytics.warehouse import open_warehouse
from siyu.config import DEFAULT_STRONG_TYPES
from siyu.errors import ValidationError
from siyu.identity.resolve import resolve_all
from siyu.importer.service import import_directory
from siyu.privacy import Vault

STORE_COUNTS = {
    "orders": "SELECT COUNT(*) FROM orders WHERE group_id = :g",
    "order_lines": "SELECT COUNT(*) FROM order_lines WHERE group_id = :g",
    "refunds": "SELECT COUNT(*) FROM refunds WHERE group_id = :g",
    "events": "SELECT COUNT(*) FROM events WHERE group_id = :g",
    "identities": "SELECT COUNT(*) FROM identities WHERE group_id = :g",
    "members": "SELECT COUNT(*) FROM members WHERE group_id = :g",
}


def _store_counts(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {
            t: int(conn.execute(text(sql), {"g": store.group_id}).scalar_one())
            for t, sql in STORE_COUNTS.items()
        }


def _landed_counts(path: Path, group_id: str) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            t: int(
                con.execute(f"SELECT COUNT(*) FROM {t} WHERE group_id = ?", [group_id]).fetchone()[
                    0
                ]  # type: ignore[index]
            )
            for t in STORE_COUNTS
        }
    finally:
        con.close()


def _store_orders(store: Store) -> list[tuple[Any, ...]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT order_id, member_id, status, paid_fen FROM orders "
                "WHERE group_id = :g ORDER BY order_id"
            ),
            {"g": store.group_id},
        ).all()
    return [tuple(r) for r in rows]


def _warehouse_orders(location: Path, group_id: str) -> list[tuple[Any, ...]]:
    con = connect("duckdb")
    try:
        wh = open_warehouse(con, location, group_id)
        df = con.execute(
            wh.orders().select("order_id", "member_id", "status", "paid_fen").order_by("order_id")
        )
        return [
            (r.order_id, int(r.member_id), r.status, int(r.paid_fen))
            for r in df.itertuples(index=False)
        ]
    finally:
        con.disconnect()


@pytest.fixture
def brand(store: Store, vault: Vault, tmp_path: Path) -> Store:
    import_and_resolve(store.engine, vault, store.group_id, write_brand(tmp_path / "brand"))
    return store


def test_first_landing_copies_every_row_and_a_second_lands_nothing(
    brand: Store, tmp_path: Path
) -> None:
    # given a store with the brand imported and resolved
    warehouse = tmp_path / "siyu.duckdb"
    seen: dict[str, int] = {}

    def progress(table: str, total: int) -> Any:
        seen[table] = total
        return lambda _rows: None

    # when it is landed
    first = land(brand.engine, brand.group_id, warehouse, progress=progress)
    # then the warehouse holds exactly the store's rows, and the orders with their members
    assert _landed_counts(warehouse, brand.group_id) == _store_counts(brand)
    assert first.rows == sum(_store_counts(brand).values())
    assert seen == _store_counts(brand)
    assert _warehouse_orders(warehouse, brand.group_id) == _store_orders(brand)
    orders = {t.table: t for t in first.tables}["orders"]
    assert (orders.partitions, orders.changed, orders.latest_day) == (4, 4, "2024-03-05")
    # when it is landed again with nothing new
    second = land(brand.engine, brand.group_id, warehouse)
    # then nothing is landed, and the warehouse is unchanged
    assert second.rows == 0
    assert all(t.changed == 0 for t in second.tables)
    assert _landed_counts(warehouse, brand.group_id) == _store_counts(brand)


def test_new_and_back_filled_days_land_and_nothing_else(
    brand: Store, vault: Vault, tmp_path: Path
) -> None:
    # given a landed warehouse
    warehouse = tmp_path / "siyu.duckdb"
    land(brand.engine, brand.group_id, warehouse)
    # when a new day's order arrives, an old day is back-filled (an order before the first
    # landing's earliest day, and a line of an order of 2024-03-01), and events
    more = tmp_path / "more"
    write(
        more / "orders.csv",
        [
            order("O6", "2024-03-09T10:00:00", 4_000),
            order("O0", "2024-02-20T10:00:00", 700, ("card", "C003")),
        ],
    )
    write(more / "order_lines.csv", [line("O1", 2, 100)])
    write(more / "events.csv", [event("E4", "view", "2024-03-09T09:00:00", ("card", "C001"))])
    import_directory(brand.engine, vault, brand.group_id, more, tmp_path / "rejects")
    again = land(brand.engine, brand.group_id, warehouse)
    # then only the days that gained rows are landed, each one whole
    by_table = {t.table: t for t in again.tables}
    assert (by_table["orders"].changed, by_table["orders"].rows) == (2, 2)
    # 2024-03-01 holds O1 (now two lines) and O2 (one line): the day is replaced whole
    assert (by_table["order_lines"].changed, by_table["order_lines"].rows) == (1, 3)
    assert (by_table["events"].changed, by_table["events"].rows) == (1, 1)
    assert (by_table["refunds"].changed, by_table["refunds"].rows) == (0, 0)
    # and the warehouse matches the store again, with nothing landed twice
    assert _landed_counts(warehouse, brand.group_id) == _store_counts(brand)
    assert _warehouse_orders(warehouse, brand.group_id) == _store_orders(brand)
    assert land(brand.engine, brand.group_id, warehouse).rows == 0


def tie_tmall_buyer_to_m1(brand: Store, vault: Vault, tmp_path: Path) -> None:
    """Import a link of the Tmall buyer T-1 to M1's card and run OneID again."""
    link = tmp_path / "link"
    write(
        link / "identities.csv",
        [
            {
                "type": "card",
                "value": "C001",
                "scope": "B1",
                "channel": "tmall",
                "observed_at": "2024-03-10T10:00:00",
                "verified": "true",
                "linked_type": T1[0],
                "linked_value": T1[1],
            }
        ],
    )
    import_directory(brand.engine, vault, brand.group_id, link, tmp_path / "rejects")
    resolve_all(brand.engine, brand.group_id, DEFAULT_STRONG_TYPES)


def test_orders_follow_oneid_after_a_re_resolution(
    brand: Store, vault: Vault, tmp_path: Path
) -> None:
    # given a landed warehouse where the Tmall buyer T-1 is a member of its own
    warehouse = tmp_path / "siyu.duckdb"
    land(brand.engine, brand.group_id, warehouse)
    before = dict((o[0], o[1]) for o in _warehouse_orders(warehouse, brand.group_id))
    assert before["O4"] != before["O1"]
    # when an identity link ties T-1 to M1's card and OneID runs again
    tie_tmall_buyer_to_m1(brand, vault, tmp_path)
    again = land(brand.engine, brand.group_id, warehouse)
    # then no fact is landed again, only the identities and members snapshots
    changed = {t.table for t in again.tables if t.changed}
    assert changed == {"identities", "members"}
    # and the warehouse's orders carry the store's current member: T-1's order is M1's
    after = _warehouse_orders(warehouse, brand.group_id)
    assert after == _store_orders(brand)
    assert dict((o[0], o[1]) for o in after)["O4"] == before["O1"]


def test_parquet_warehouse_holds_the_same_rows_and_repairs_a_lost_file(
    brand: Store, tmp_path: Path
) -> None:
    # given the store landed as DuckDB and as Parquet
    duck, directory = tmp_path / "siyu.duckdb", tmp_path / "lake"
    land(brand.engine, brand.group_id, duck)
    report = land(brand.engine, brand.group_id, directory, "parquet")
    # then both hold the same orders, with the current members
    assert _warehouse_orders(directory, brand.group_id) == _warehouse_orders(duck, brand.group_id)
    assert report.rows == sum(_store_counts(brand).values())
    assert land(brand.engine, brand.group_id, directory, "parquet").rows == 0
    # when a day's file is lost
    (directory / "orders" / brand.group_id / "2024-03-01.parquet").unlink()
    # then the next run lands that day (two orders) and nothing else
    repaired = {t.table: t for t in land(brand.engine, brand.group_id, directory, "parquet").tables}
    assert (repaired["orders"].changed, repaired["orders"].rows) == (1, 2)
    assert sum(t.rows for t in repaired.values()) == 2
    assert _warehouse_orders(directory, brand.group_id) == _store_orders(brand)


def test_since_limits_the_comparison_to_recent_days(brand: Store, tmp_path: Path) -> None:
    # given an empty warehouse, when only days from 2024-03-03 on are landed
    from datetime import date

    warehouse = tmp_path / "siyu.duckdb"
    report = {
        t.table: t
        for t in land(brand.engine, brand.group_id, warehouse, since=date(2024, 3, 3)).tables
    }
    # then O4 (03-03) and O5 (03-05) are there, not O1-O3
    assert (report["orders"].partitions, report["orders"].rows) == (2, 2)
    assert [o[0] for o in _warehouse_orders(warehouse, brand.group_id)] == ["O4", "O5"]


def test_no_personal_data_reaches_the_warehouse(brand: Store, tmp_path: Path) -> None:
    # given the brand's phones and names in the store (encrypted there)
    duck, directory = tmp_path / "siyu.duckdb", tmp_path / "lake"
    # when it is landed in both formats
    land(brand.engine, brand.group_id, duck)
    land(brand.engine, brand.group_id, directory, "parquet")
    # then no phone or name (nor a refund reason that quotes them) is in any file's bytes
    files = [duck, *Path(f"{duck}.wal").parent.glob("*.wal"), *directory.rglob("*.parquet")]
    raw = b"".join(f.read_bytes() for f in files if f.is_file())
    assert raw
    for secret in (*PHONES, *NAMES, "上海"):
        assert secret.encode() not in raw, secret
    # and no table declares a personal column
    for spec in ALL:
        assert not {c.name for c in spec.columns} & PERSONAL, spec.name


def test_bad_input_names_the_field_and_rule(brand: Store, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="group: no brand group 'nope'"):
        land(brand.engine, "nope", tmp_path / "w.duckdb")
    with pytest.raises(ValidationError, match="format: must be one of duckdb, parquet"):
        land(brand.engine, brand.group_id, tmp_path / "w", "csv")
    with pytest.raises(ValidationError, match=r"warehouse: .* is a directory"):
        land(brand.engine, brand.group_id, tmp_path)
    with pytest.raises(ValidationError, match="tables: unknown table 'payments'"):
        land(brand.engine, brand.group_id, tmp_path / "w.duckdb", tables=["payments"])
    with pytest.raises(ValidationError, match="batch_rows: must be >= 1"):
        land(brand.engine, brand.group_id, tmp_path / "w.duckdb", batch_rows=0)


def _lines_against_orders(location: Path, group_id: str) -> tuple[list[Any], list[Any]]:
    """Each landed line's (order, member, status, time) and its order's, as read through
    `Warehouse.lines` and `Warehouse.orders` (both with the current member)."""
    con = connect("duckdb")
    try:
        wh = open_warehouse(con, location, group_id)
        lines = con.execute(
            wh.lines().select("order_id", "member_id", "status", "ordered_at").order_by("order_id")
        )
        orders = con.execute(wh.orders().select("order_id", "member_id", "status", "ordered_at"))
        by_order = {r[0]: tuple(r) for r in orders.itertuples(index=False)}
        return [tuple(r) for r in lines.itertuples(index=False)], [
            by_order[r.order_id] for r in lines.itertuples(index=False)
        ]
    finally:
        con.disconnect()


@pytest.mark.parametrize("fmt", ["duckdb", "parquet"])
def test_lines_carry_their_orders_buyer_time_and_status_through_oneid(
    brand: Store, vault: Vault, tmp_path: Path, fmt: str
) -> None:
    # given a landed warehouse, where the Tmall buyer T-1's order has a line
    extra = tmp_path / "extra"
    write(extra / "order_lines.csv", [line("O4", 1, 2_000)])
    import_directory(brand.engine, vault, brand.group_id, extra, tmp_path / "rejects")
    warehouse = tmp_path / ("siyu.duckdb" if fmt == "duckdb" else "lake")
    land(brand.engine, brand.group_id, warehouse, fmt)
    # then every line has its order's member, status and time
    lines, orders = _lines_against_orders(warehouse, brand.group_id)
    assert len(lines) == _store_counts(brand)["order_lines"] > 0
    assert lines == orders
    # when T-1 is tied to M1 and OneID runs again
    before = dict((o[0], o[1]) for o in _warehouse_orders(warehouse, brand.group_id))
    assert before["O4"] != before["O1"]
    tie_tmall_buyer_to_m1(brand, vault, tmp_path)
    again = land(brand.engine, brand.group_id, warehouse, fmt)
    assert {t.table for t in again.tables if t.changed} == {"identities", "members"}
    # then the lines, not landed again, follow their orders to the surviving member
    lines, orders = _lines_against_orders(warehouse, brand.group_id)
    assert lines == orders
    assert {ln[1] for ln in lines if ln[0] == "O4"} == {before["O1"]}


def test_a_table_landed_by_an_older_siyu_is_landed_again_whole(
    brand: Store, tmp_path: Path
) -> None:
    # given a DuckDB and a Parquet warehouse whose order lines lack the orders' columns,
    # as an older siyu landed them
    duck, lake = tmp_path / "siyu.duckdb", tmp_path / "lake"
    land(brand.engine, brand.group_id, duck)
    land(brand.engine, brand.group_id, lake, "parquet")
    old = ("buyer_identity_id", "member_id", "status", "ordered_at")
    con = duckdb.connect(str(duck))
    for column in old:
        con.execute(f"ALTER TABLE order_lines DROP COLUMN {column}")
    con.close()
    for file in (lake / "order_lines" / brand.group_id).glob("*.parquet"):
        pq.write_table(pq.read_table(file).drop_columns(list(old)), file)
    # then reading it says what to do, naming the table and a missing column
    for location in (duck, lake):
        con = connect("duckdb")
        with pytest.raises(ValidationError, match=r"order_lines has no column .* land it again"):
            open_warehouse(con, location, brand.group_id)
        con.disconnect()
    # when each is landed again
    for location, fmt in ((duck, "duckdb"), (lake, "parquet")):
        report = {t.table: t for t in land(brand.engine, brand.group_id, location, fmt).tables}
        # then the order lines are landed whole, and nothing else
        lines = report["order_lines"]
        in_store = _store_counts(brand)["order_lines"]
        assert (lines.changed, lines.rows) == (lines.partitions, in_store)
        assert {t for t, r in report.items() if r.rows} == {"order_lines"}
        got, want = _lines_against_orders(location, brand.group_id)
        assert got == want
