"""Each buyer's CLV written back by the snapshot (`member_clv`), on SQLite and PostgreSQL:
the values are those of a direct fit on the same summary, the tasks the snapshot makes are
worth them; when the fit cannot run no row is left and the payload says why."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import ibis
import pytest
from sqlalchemy import text
from tests.guides.conftest import Brand

from siyu.analytics.clv import clv_summary, fit_clv
from siyu.analytics.engines import connect, to_pandas
from siyu.analytics.landing import land
from siyu.analytics.snapshot import _clv, compute_snapshots, save_snapshots
from siyu.analytics.stages import StageConfig
from siyu.analytics.warehouse import open_warehouse


def clv_rows(brand: Brand) -> dict[int, tuple[float, float, int, int]]:
    with brand.store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT member_id, expected_purchases, p_alive, clv_fen, horizon_days "
                "FROM member_clv WHERE group_id = :g"
            ),
            {"g": brand.store.group_id},
        ).all()
    return {int(r[0]): (float(r[1]), float(r[2]), int(r[3]), int(r[4])) for r in rows}


def test_the_snapshot_writes_each_buyers_clv_and_the_tasks_are_worth_it(
    brand: Brand, tmp_path: Path
) -> None:
    # given the brand's orders landed in a warehouse
    warehouse = tmp_path / "wh.duckdb"
    land(brand.store.engine, brand.store.group_id, warehouse)
    # when the snapshot is computed (knee 4, the stages as the fixture wrote them) and saved
    config = StageConfig(knee=4, window_days=120)
    payloads = compute_snapshots(
        brand.store.engine, brand.store.group_id, warehouse, config, write_stages=False
    )
    save_snapshots(brand.store.engine, brand.store.group_id, payloads)
    # then every buyer has a row whose values are a direct 52-week fit's on the same summary
    con = connect("duckdb")
    try:
        wh = open_warehouse(con, warehouse, brand.store.group_id)
        t_end = wh.data_end()
        summary = to_pandas(con, clv_summary(wh.purchases(), t_end))
    finally:
        con.disconnect()
    direct = fit_clv(summary, 7, 52)
    assert direct.clv_fen is not None
    rows = clv_rows(brand)
    assert (
        sorted(rows) == sorted(int(m) for m in direct.member_ids) == sorted(brand.members.values())
    )
    for i, member in enumerate(direct.member_ids):
        purchases, alive, fen, horizon = rows[int(member)]
        assert purchases == pytest.approx(float(direct.expected_purchases[i]), abs=1e-6)
        assert alive == pytest.approx(float(direct.p_alive[i]), abs=1e-6)
        assert (fen, horizon) == (int(direct.clv_fen[i]), 364)
    # and the payload says what was fitted and written
    assert payloads["clv"]["written"] == len(rows)
    assert "not_written" not in payloads["clv"]
    assert payloads["clv"]["fit"]["clv_fen"] == int(direct.clv_fen.sum())
    # and the tasks the snapshot made are worth each member's CLV
    names = {v: k for k, v in brand.members.items()}
    values = {m: v for m, _, _, _, v, _ in brand.task_rows()}
    assert values == {names[m]: rows[m][2] for m in rows if names[m] in values}
    assert set(values) == {"N3", "R1", "R2", "L1"}


def test_without_enough_repeat_buyers_no_clv_is_left_and_the_payload_says_why(
    brand: Brand,
) -> None:
    # given CLV rows of an earlier run
    with brand.store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO member_clv (group_id, member_id, expected_purchases, p_alive, "
                "clv_fen, horizon_days, computed_at) VALUES (:g, :m, 1.0, 0.5, 9999, 364, :t)"
            ),
            {"g": brand.store.group_id, "m": brand.members["R1"], "t": datetime(2024, 1, 1)},
        )
    # when a run's purchases have a single repeat buyer (Gamma-Gamma needs two)
    con = connect("duckdb")
    try:
        purchases = ibis.memtable(
            {
                "member_id": [1, 1, 2, 3],
                "ordered_at": [datetime(2024, m, 1, 10) for m in (1, 3, 2, 4)],
                "amount_fen": [5_000, 6_000, 3_000, 4_000],
            }
        )
        payload = _clv(
            con, purchases, datetime(2024, 6, 1), brand.store.engine, brand.store.group_id
        )
    finally:
        con.disconnect()
    # then no member has a CLV (the tasks fall back) and the payload says why
    assert clv_rows(brand) == {}
    assert payload["written"] == 0
    assert "at least 2 repeat buyers who paid, found 1" in payload["not_written"]
