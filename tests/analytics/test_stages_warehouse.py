"""Stages from the landed store: every active member (prospects too), the same on DuckDB
(the warehouse file) and Spark (the Parquet warehouse), written back to the store."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from ibis import BaseBackend
from sqlalchemy import Engine, text
from tests.analytics import reference
from tests.analytics.store_brand import import_and_resolve, write_brand
from tests.conftest import Store

from siyu.analytics.engines import engine_name
from siyu.analytics.landing import land
from siyu.analytics.lifecycle import stages_from_warehouse, write_member_stages
from siyu.analytics.stages import StageConfig
from siyu.config import DEFAULT_STRONG_TYPES
from siyu.demo.config import GeneratorConfig
from siyu.demo.generate import generate
from siyu.errors import ValidationError
from siyu.identity.resolve import resolve_all
from siyu.importer.service import ensure_group, import_directory
from siyu.privacy import Vault
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade


def _member_of(engine: Engine, group_id: str) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT order_id, member_id FROM orders WHERE group_id = :g"), {"g": group_id}
        ).all()
        m3 = conn.execute(
            text("SELECT member_id FROM members WHERE group_id = :g AND source_ref = 'M3'"),
            {"g": group_id},
        ).scalar_one()
    return {**{r.order_id: int(r.member_id) for r in rows}, "M3": int(m3)}


def _written(engine: Engine, group_id: str) -> dict[int, tuple[str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT member_id, stage, orders FROM member_stages WHERE group_id = :g"),
            {"g": group_id},
        ).all()
    return {int(r.member_id): (r.stage, int(r.orders)) for r in rows}


def test_stages_from_the_warehouse_are_written_back_and_replaced(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    # given the small brand landed: M1 (O1), M2 (O2, O5), M3 (a cancelled order), T-1 (O4)
    import_and_resolve(store.engine, vault, store.group_id, write_brand(tmp_path / "brand"))
    warehouse = tmp_path / "siyu.duckdb"
    land(store.engine, store.group_id, warehouse)
    member = _member_of(store.engine, store.group_id)
    # when stages are computed with knee 2, at risk after 1 day, lapsed after 3
    config = StageConfig(knee=2, at_risk_days=1, lapsed_days=3)
    report = stages_from_warehouse(warehouse, store.group_id, config)
    written = write_member_stages(store.engine, store.group_id, report.members)
    # then as of the last order (03-05 08:00) every member has the hand-counted stage
    expected = {
        member["O1"]: ("at_risk", 1),  # 3 days 22 hours: 3 whole days, more than 1
        member["O2"]: ("loyal", 2),  # O2 and O5: the knee, 0 days ago
        member["M3"]: ("prospect", 0),  # only a cancelled order
        member["O4"]: ("new_1", 1),  # 1 day 19 hours
    }
    assert _written(store.engine, store.group_id) == expected
    assert written == 4 == report.payload["members"]
    # when they are computed again with other thresholds
    again = stages_from_warehouse(warehouse, store.group_id, StageConfig(knee=2))
    write_member_stages(store.engine, store.group_id, again.members)
    # then the group's rows are replaced, not added to
    assert _written(store.engine, store.group_id) == {
        member["O1"]: ("new_1", 1),
        member["O2"]: ("loyal", 2),
        member["M3"]: ("prospect", 0),
        member["O4"]: ("new_1", 1),
    }


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A generated brand (four months) imported into SQLite, resolved by OneID and landed
    both as a DuckDB file and as Parquet."""
    root = tmp_path_factory.mktemp("landed")
    data = root / "brand"
    generate(data, GeneratorConfig(members=1_500, seed=31, days=120))
    engine = make_engine(f"sqlite:///{root / 'siyu.db'}")
    upgrade(engine)
    ensure_group(engine, "g1")
    vault = Vault(bytes(range(32)))
    import_directory(engine, vault, "g1", data, root / "rejects")
    resolve_all(engine, "g1", DEFAULT_STRONG_TYPES)
    land(engine, "g1", root / "siyu.duckdb")
    land(engine, "g1", root / "lake", "parquet")
    with engine.connect() as conn:
        orders = conn.execute(
            text(
                "SELECT order_id, member_id, ordered_at, paid_fen AS amount_fen, status FROM orders"
            )
        ).all()
        members = conn.execute(
            text("SELECT member_id FROM members WHERE status = 'active'")
        ).scalars()
        members_ids = tuple(int(m) for m in members)
    engine.dispose()
    import pandas as pd

    frame = pd.DataFrame([r._asdict() for r in orders])
    frame["ordered_at"] = pd.to_datetime(frame.ordered_at)
    return {"root": root, "orders": frame, "members": members_ids}


def test_every_engine_gives_the_reference_stages(con: BaseBackend, landed: dict[str, Any]) -> None:
    # given the landed brand: DuckDB reads its file, Spark the Parquet warehouse
    root = landed["root"]
    location = root / "siyu.duckdb" if engine_name(con) == "duckdb" else root / "lake"
    if engine_name(con) == "spark":  # Spark cannot read a DuckDB file, and says so
        with pytest.raises(ValidationError, match=r"warehouse: .* only the duckdb engine reads"):
            stages_from_warehouse(root / "siyu.duckdb", "g1", con=con)
    config = StageConfig(knee=3, at_risk_days=20, lapsed_days=45)
    # when stages and two months of moves are computed
    report = stages_from_warehouse(location, "g1", config, months=2, con=con)
    # then every active member has the reference's stage, from the store's own rows
    t_end = datetime.fromisoformat(report.payload["as_of"])
    expected = reference.stages(landed["orders"], t_end, 3, 20, 45, landed["members"])
    got = dict(
        zip(
            report.members["member_id"].to_pylist(),
            report.members["stage"].to_pylist(),
            strict=True,
        )
    )
    assert got == {m: s for m, (_, _, s) in expected.items()}
    # and the moves are the reference's
    times = [datetime.fromisoformat(m["to"]) for m in report.payload["transitions"]]
    moves = reference.transitions(
        landed["orders"], [_month_before(times[0]), *times], 3, 20, 45, landed["members"]
    )
    for matrix, at in zip(report.payload["transitions"], times, strict=True):
        for before, row in matrix["matrix"].items():
            for after, n in row.items():
                assert n == moves.get((at, before, after), 0), (matrix["month"], before, after)


def _month_before(end: datetime) -> datetime:
    from siyu.analytics.stages import month_ends

    return month_ends(end, 1)[0]
