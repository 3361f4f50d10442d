"""After an import, PostgreSQL's planner sees the rows it wrote: the tables a kind fills in
bulk are analysed once the file is in, instead of keeping the empty table's statistics
until autovacuum comes (a report planned over "one order" then ran a hundred times
slower). SQLite has no statistics to refresh."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from tests.brandfiles import write, write_reference

from siyu.importer.service import ensure_group, import_directory
from siyu.privacy import Vault

pytestmark = pytest.mark.postgres

TABLES = ("members", "identities", "identity_links", "orders")


def _analysed(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT relname, analyze_count FROM pg_stat_user_tables WHERE relname = ANY(:t)"),
            {"t": list(TABLES)},
        ).all()
    return {str(r[0]): int(r[1]) for r in rows}


def test_an_import_leaves_the_planner_what_it_wrote(
    pg_engine: Engine, vault: Vault, tmp_path: Path
) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    ensure_group(pg_engine, group)
    d = tmp_path / "brand"
    write_reference(d)
    write(
        d / "members.csv",
        [
            {"member_ref": f"M{i}", "brand_id": "B1", "registered_at": "2024-01-01",
             "channel": "pos", "card": f"c{i:04d}"}
            for i in range(50)
        ],
    )  # fmt: skip
    write(
        d / "orders.csv",
        [
            {"order_id": f"O{i}", "brand_id": "B1", "channel": "pos", "buyer_type": "card",
             "buyer_value": f"c{i % 50:04d}", "ordered_at": "2024-01-02T10:00:00",
             "total_fen": "9900", "paid_fen": "9900"}
            for i in range(200)
        ],
    )  # fmt: skip
    before = _analysed(pg_engine)
    # when the directory is imported
    reports = import_directory(pg_engine, vault, group, d, tmp_path / "rejects")
    assert {r.kind: r.inserted for r in reports}["orders"] == 200
    # then each table it filled was analysed (once per file that wrote to it, at least)
    after = _analysed(pg_engine)
    assert all(after[t] > before.get(t, 0) for t in TABLES), (before, after)
    # and importing the same files again, which writes nothing, analyses nothing
    import_directory(pg_engine, vault, group, d, tmp_path / "rejects")
    assert _analysed(pg_engine) == after
