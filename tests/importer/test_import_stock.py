"""Stock set up by import: locations, where each channel ships from, opening counts. Every
row is accounted for, bad rows are rejected with field and rule, a second import changes
nothing."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import text
from tests.brandfiles import write, write_reference
from tests.conftest import Store

from siyu.importer.service import import_directory, import_file
from siyu.privacy import Vault

LOCATIONS = [
    {"location_id": "S1", "kind": "store", "store_id": "S1", "city": "上海"},
    {"location_id": "W1", "kind": "warehouse", "city": "上海", "lat_e6": "31100000",
     "lon_e6": "121300000"},
]  # fmt: skip
CHANNELS = [
    {"channel": "tmall", "location_id": "W1", "safety_stock": "2"},
    {"channel": "tmall", "location_id": "S1", "safety_stock": "2"},
    {"channel": "miniprogram", "location_id": "S1"},
]
COUNTS = [
    {"location_id": "S1", "sku": "K1", "on_hand": "7", "counted_at": "2024-03-01T08:00:00"},
    {"location_id": "W1", "sku": "K1", "on_hand": "40", "counted_at": "2024-03-01T08:00:00"},
]


def _rows(store: Store, sql: str) -> list[tuple[object, ...]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), {"g": store.group_id})]


def _rejects(path: str | None) -> list[dict[str, str]]:
    assert path is not None
    with open(path, encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_locations_channels_and_counts_are_imported_once(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    # given a brand's reference files and its stock files
    d = tmp_path / "brand"
    write_reference(d)
    write(d / "stock_locations.csv", LOCATIONS)
    write(d / "channel_locations.csv", CHANNELS)
    write(d / "stock.csv", COUNTS)
    # when the directory is imported
    reports = {r.kind: r for r in import_directory(store.engine, vault, store.group_id, d, d)}
    # then each kind is there, in dependency order, every row accepted
    assert list(reports)[-3:] == ["stock_locations", "channel_locations", "stock"]
    assert [(reports[k].accepted, reports[k].inserted) for k in list(reports)[-3:]] == [
        (2, 2),
        (3, 3),
        (2, 2),
    ]
    assert _rows(
        store,
        "SELECT location_id, kind, store_id, lat_e6 FROM stock_locations WHERE group_id = :g "
        "ORDER BY location_id",
    ) == [("S1", "store", "S1", None), ("W1", "warehouse", None, 31_100_000)]
    assert _rows(store, "SELECT channel, units FROM channel_safety_stock WHERE group_id = :g") == [
        ("tmall", 2)
    ]
    levels = "SELECT location_id, on_hand FROM stock_levels WHERE group_id = :g ORDER BY 1"
    assert _rows(store, levels) == [("S1", 7), ("W1", 40)]
    # and the counts announced the channels' ATP: tmall ships 7 + 40 - 2
    atp = _rows(store, "SELECT payload FROM outbox WHERE group_id = :g ORDER BY event_id")
    assert '{"channel": "tmall", "sku": "K1", "atp": 45}' in {str(p[0]) for p in atp}
    # when it is imported again, nothing changes
    again = import_directory(store.engine, vault, store.group_id, d, d)
    assert [
        r.inserted for r in again if r.kind in reports and r.kind.startswith(("stock", "ch"))
    ] == [
        0,
        0,
        0,
    ]
    assert _rows(store, levels) == [("S1", 7), ("W1", 40)]
    assert store.count("stock_movements") == 2
    # when a later count comes, it sets on hand to what was counted
    later = write(
        tmp_path / "recount.csv",
        [{"location_id": "S1", "sku": "K1", "on_hand": "3", "counted_at": "2024-03-02T08:00:00"}],
    )
    done = import_file(store.engine, vault, store.group_id, "stock", later, tmp_path)
    assert done.inserted == 1 and _rows(store, levels) == [("S1", 3), ("W1", 40)]


def test_bad_stock_rows_are_rejected_with_field_and_rule(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    # given the reference data and one good location
    d = tmp_path / "brand"
    write_reference(d)
    import_directory(store.engine, vault, store.group_id, d, d)
    good = write(tmp_path / "ok.csv", LOCATIONS[:1])
    import_file(store.engine, vault, store.group_id, "stock_locations", good, tmp_path)
    # when locations break the rules
    bad = write(
        tmp_path / "locations.csv",
        [
            {"location_id": "X1", "kind": "store", "store_id": "S9", "city": "上海"},
            {"location_id": "X2", "kind": "store", "city": "上海"},
            {"location_id": "X3", "kind": "warehouse", "store_id": "S1", "city": "上海"},
            {"location_id": "X4", "kind": "warehouse", "city": "上海", "lat_e6": "91000000",
             "lon_e6": "0"},
            {"location_id": "X5", "kind": "warehouse", "city": "上海", "lat_e6": "1"},
            {"location_id": "X6", "kind": "shelf", "city": "上海"},
            {"location_id": "X7", "kind": "warehouse", "city": "上海"},
            {"location_id": "X7", "kind": "warehouse", "city": "北京"},
        ],
    )  # fmt: skip
    report = import_file(store.engine, vault, store.group_id, "stock_locations", bad, tmp_path)
    # then every row is accounted for, each reject naming its field and rule
    assert (report.read, report.accepted, report.rejected) == (8, 1, 7)
    reasons = [r["reject_reason"] for r in _rejects(report.rejects_path)]
    assert reasons == [
        "store_id: no store 'S9' in this brand group",
        "store_id: a store location names its store",
        "store_id: a warehouse belongs to no store (only HQ moves its stock)",
        "lat_e6: microdegrees from -90000000 to 90000000",
        "lon_e6: lat_e6 and lon_e6 come together",
        "kind: must be one of: store, warehouse",
        "city: differs from file row 7 with the same location_id",
    ]
    # when channel rows name an unknown location or disagree on the safety stock
    channels = write(
        tmp_path / "channels.csv",
        [
            {"channel": "tmall", "location_id": "NOPE"},
            {"channel": "tmall", "location_id": "S1", "safety_stock": "2"},
            {"channel": "tmall", "location_id": "X7", "safety_stock": "3"},
            {"channel": "nowhere", "location_id": "S1"},
        ],
    )
    report = import_file(
        store.engine, vault, store.group_id, "channel_locations", channels, tmp_path
    )
    assert (report.accepted, report.rejected, report.inserted) == (1, 3, 1)
    reasons = [r["reject_reason"] for r in _rejects(report.rejects_path)]
    assert reasons[:2] == [
        "location_id: no stock location of this id",
        "safety_stock: differs from file row 2 with the same channel",
    ]
    assert reasons[2].startswith("channel: ")
    # when counts name an unknown product or location, or disagree
    counts = write(
        tmp_path / "counts.csv",
        [
            {"location_id": "S1", "sku": "NOPE", "on_hand": "1", "counted_at": "2024-03-01"},
            {"location_id": "NOPE", "sku": "K1", "on_hand": "1", "counted_at": "2024-03-01"},
            {"location_id": "S1", "sku": "K1", "on_hand": "-1", "counted_at": "2024-03-01"},
            {"location_id": "S1", "sku": "K1", "on_hand": "4", "counted_at": "2024-03-01"},
            {"location_id": "S1", "sku": "K1", "on_hand": "5", "counted_at": "2024-03-01"},
        ],
    )
    report = import_file(store.engine, vault, store.group_id, "stock", counts, tmp_path)
    assert (report.accepted, report.rejected, report.inserted) == (1, 4, 1)
    reasons = [r["reject_reason"] for r in _rejects(report.rejects_path)]
    assert reasons == [
        "sku: no product 'NOPE' in this brand group",
        "location_id: no stock location of this id",
        "on_hand: must be >= 0",
        "on_hand: differs from file row 4 with the same location_id",
    ]


def test_a_count_below_what_is_reserved_is_rejected(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    from siyu.inventory import reservations

    # given 5 units of K1 at S1, 3 of them reserved for an online order
    d = tmp_path / "brand"
    write_reference(d)
    write(d / "stock_locations.csv", LOCATIONS[:1])
    write(d / "stock.csv", [{**COUNTS[0], "on_hand": "5"}])
    import_directory(store.engine, vault, store.group_id, d, d)
    reservations.reserve(store.engine, store.group_id, "T-1", "tmall", [("K1", 3)])
    # when a count of 2 is imported, it is rejected and nothing changes
    recount = write(
        tmp_path / "recount.csv",
        [{"location_id": "S1", "sku": "K1", "on_hand": "2", "counted_at": "2024-03-02T00:00:00"}],
    )
    report = import_file(store.engine, vault, store.group_id, "stock", recount, tmp_path)
    assert (report.accepted, report.rejected) == (0, 1)
    assert _rejects(report.rejects_path)[0]["reject_reason"] == (
        "on_hand: below the 3 units reserved for open orders"
    )
    assert _rows(store, "SELECT on_hand, reserved FROM stock_levels WHERE group_id = :g") == [
        (5, 3)
    ]
