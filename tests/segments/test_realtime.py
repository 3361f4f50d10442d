"""Real-time segments on SQLite and PostgreSQL: a pass re-evaluates the members whose facts
arrived (or whose follow-up hold just closed) from the store, writes only their enters and
leaves, and agrees with a full evaluation on the warehouse as of the same time."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from tests.brandfiles import write
from tests.guides.conftest import Brand, brand  # noqa: F401
from tests.segments.test_stored import define, history_of, members_of

from siyu.analytics.engines import connect
from siyu.analytics.landing import land
from siyu.analytics.warehouse import open_warehouse
from siyu.config import DEFAULT_STRONG_TYPES
from siyu.identity.resolve import resolve_all
from siyu.importer.service import import_directory
from siyu.segments import stored
from siyu.segments.evaluate import evaluate_segments
from siyu.segments.realtime import longest_hold, run_realtime
from siyu.segments.rules import parse_document

ABANDONED = {
    "version": 1,
    "rule": {
        "event_then_not": {
            "event": {"type": "add_to_cart"},
            "not_followed_by": {"order": {}},
            "within_hours": 24,
            "since_days": 7,
        }
    },
}


def carts(brand: Brand, rows: list[tuple[str, str]]) -> None:  # noqa: F811
    """A cart event of each (member, time), imported as any event is."""
    directory = brand.files / f"events-{rows[0][1][:13]}"
    write(
        directory / "events.csv",
        [
            {
                "event_id": f"cart-{ref}-{at}",
                "type": "add_to_cart",
                "channel": "miniprogram",
                "identity_type": "card",
                "identity_value": f"C-{ref}",
                "identity_scope": "B1",
                "occurred_at": at,
                "sku": "K1",
            }
            for ref, at in rows
        ],
    )
    import_directory(
        brand.store.engine, brand.vault, brand.store.group_id, directory, directory / "r"
    )
    resolve_all(brand.store.engine, brand.store.group_id, DEFAULT_STRONG_TYPES)


def realtime(brand: Brand, slug: str) -> None:  # noqa: F811
    with brand.store.engine.begin() as conn:
        stored.update_segment(conn, brand.store.group_id, slug, by="t", refresh="realtime")


def test_a_pass_takes_new_facts_and_closing_holds_and_agrees_with_the_warehouse(
    brand: Brand,  # noqa: F811
    tmp_path: Path,
) -> None:
    define(brand, "abandoned", ABANDONED)
    realtime(brand, "abandoned")
    assert longest_hold(parse_document(ABANDONED).rule).total_seconds() == 24 * 3600
    # F1 carts and never pays; N3 carts and pays 2 h later; Y1 carts the next morning
    carts(brand, [("F1", "2025-01-02T10:00:00"), ("N3", "2025-01-02T08:00:00")])
    brand.order("N3", "N3-paid", "2025-01-02", 3_000, None)  # orders are at 10:00
    carts(brand, [("Y1", "2025-01-03T09:00:00")])
    g = brand.store.group_id
    # when a pass runs at noon on the 3rd: F1's day has passed unpaid; Y1's has not
    (first,) = run_realtime(brand.store.engine, g, now=datetime(2025, 1, 3, 12))
    assert (first.considered, first.entered, first.left, first.size) == (3, 1, 0, 1)
    assert members_of(brand, "abandoned") == {"F1"}
    # when the next pass runs the morning after, with no new fact: Y1's hold has closed
    (second,) = run_realtime(brand.store.engine, g, now=datetime(2025, 1, 4, 10))
    assert (second.entered, second.left) == (1, 0)
    assert members_of(brand, "abandoned") == {"F1", "Y1"}
    assert history_of(brand, "abandoned") == [("F1", "enter"), ("Y1", "enter")]
    # a full evaluation on the warehouse as of the same time finds the same members
    warehouse = tmp_path / "wh.duckdb"
    land(brand.store.engine, g, warehouse)
    backend = connect("duckdb")
    try:
        wh = open_warehouse(backend, warehouse, g)
        (full,) = evaluate_segments(
            brand.store.engine, backend, wh, ["abandoned"], as_of=datetime(2025, 1, 4, 10)
        )
    finally:
        backend.disconnect()
    assert (full.size, full.entered, full.left) == (2, 0, 0)


def test_a_pass_leaves_everyone_else_alone(brand: Brand, tmp_path: Path) -> None:  # noqa: F811
    define(brand, "abandoned", ABANDONED)
    realtime(brand, "abandoned")
    g = brand.store.group_id
    carts(brand, [("F1", "2025-01-02T10:00:00")])
    run_realtime(brand.store.engine, g, now=datetime(2025, 1, 3, 12))
    assert members_of(brand, "abandoned") == {"F1"}
    # nothing new for a week: F1's cart ages out of since_days, but no fact of F1 arrived,
    # so the pass does not touch F1 (the nightly full evaluation will)
    (later,) = run_realtime(brand.store.engine, g, now=datetime(2025, 1, 12, 12))
    assert (later.considered, later.entered, later.left) == (0, 0, 0)
    assert members_of(brand, "abandoned") == {"F1"}
    # a segment that is not real-time is never touched by a pass
    define(brand, "nightly", ABANDONED)
    assert [p.slug for p in run_realtime(brand.store.engine, g)] == ["abandoned"]
