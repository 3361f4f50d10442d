"""`siyu warehouse land|status` and `siyu analyze stages` as people run them (SQLite store)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pytest
from sqlalchemy import text
from tests.analytics.data import orders_table
from tests.analytics.store_brand import import_and_resolve, write_brand
from typer.testing import CliRunner

from siyu.cli import app
from siyu.importer.service import ensure_group
from siyu.privacy import Vault
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade

runner = CliRunner()
KEY = bytes(range(32))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A SQLite store holding the small brand, and the settings that point at it."""
    url = f"sqlite:///{tmp_path / 'siyu.db'}"
    engine = make_engine(url)
    upgrade(engine)
    ensure_group(engine, "shop")
    import_and_resolve(engine, Vault(KEY), "shop", write_brand(tmp_path / "brand"))
    engine.dispose()
    return {
        "SIYU_DATABASE_URL": url,
        "SIYU_SECRET_KEY": KEY.hex(),
        "SIYU_GROUP": "shop",
        "SIYU_WAREHOUSE": str(tmp_path / "siyu.duckdb"),
        "SIYU_LANG": "en",
        "COLUMNS": "120",
    }


def run(env: dict[str, str], *args: str) -> Any:
    return runner.invoke(app, list(args), env=env)


def payload(env: dict[str, str], *args: str) -> dict[str, Any]:
    result = run(env, *args, "--json")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, "--json prints one line and nothing else"
    parsed: dict[str, Any] = json.loads(lines[0])
    return parsed


def test_land_then_stages_written_back(env: dict[str, str], tmp_path: Path) -> None:
    # when the store is landed into SIYU_WAREHOUSE, twice
    first = payload(env, "warehouse", "land")
    second = payload(env, "warehouse", "land")
    # then the first lands every row (5 orders, 2 lines, 1 refund, 3 events) and the
    # second nothing
    rows = {name: t["rows"] for name, t in first["tables"].items()}
    assert {k: rows[k] for k in ("orders", "order_lines", "refunds", "events")} == {
        "orders": 5,
        "order_lines": 2,
        "refunds": 1,
        "events": 3,
    }
    assert second["rows"] == 0
    # and status reports what is there
    status = run(env, "warehouse", "status")
    assert status.exit_code == 0, status.output
    state = json.loads(status.stdout)
    assert state["tables"]["orders"] == {
        "rows": 5,
        "first_day": "2024-03-01",
        "latest_day": "2024-03-05",
    }
    assert state["last_run"]["rows"] == 0
    # no identity has moved since its facts were landed: none is looked up
    assert state["identity_moves"] == 0
    assert second["identity_moves"]["how"] == "incremental"
    # when stages are computed from the warehouse with a given knee
    out = tmp_path / "stages.csv"
    got = payload(
        env, "analyze", "stages", "--knee", "2", "--at-risk-days", "1", "--lapsed-days", "3",
        "--out", str(out),
    )  # fmt: skip
    # then the four members are staged, written to the store and to the file
    sizes = {s["stage"]: s["members"] for s in got["stages"]}
    assert sizes == {"prospect": 1, "new_1": 1, "loyal": 1, "at_risk": 1, "lapsed": 0}
    assert got["written"] == 4 and got["knee_source"] == "given"
    engine = make_engine(env["SIYU_DATABASE_URL"])
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT stage FROM member_stages ORDER BY stage")).scalars()
        assert list(stored) == ["at_risk", "loyal", "new_1", "prospect"]
    engine.dispose()
    assert pacsv.read_csv(out).num_rows == 4
    # and without --json people get the tables
    shown = run(env, "analyze", "stages", "--knee", "2", "--no-write")
    assert shown.exit_code == 0 and "Moves in 2024-03" in shown.stdout


def test_parquet_landing_and_stages_from_it(env: dict[str, str], tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    landed = payload(env, "warehouse", "land", "--format", "parquet", "--out", str(lake))
    assert landed["format"] == "parquet" and landed["rows"] > 0
    assert (lake / "orders" / "shop" / "2024-03-05.parquet").is_file()
    got = payload(env, "analyze", "stages", "--warehouse", str(lake), "--knee", "2", "--no-write")
    assert got["members"] == 4 and "written" not in got


def test_stages_from_an_orders_file(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    rows = [("o1", "a", "2024-01-01T10:00:00", 100), ("o2", "a", "2024-01-20T10:00:00", 100)]
    pacsv.write_csv(orders_table([*rows, ("o3", "b", "2024-01-21T10:00:00", 5)]), path)
    got = payload(env, "analyze", "stages", "--orders", str(path), "--knee", "2")
    assert {s["stage"]: s["members"] for s in got["stages"]}["loyal"] == 1
    assert "written" not in got  # member ids of a file are not the store's


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("warehouse", "land", "--format", "parquet"), "out: --format parquet needs --out"),
        (("warehouse", "land", "--format", "csv"), "format: must be one of duckdb, parquet"),
        (("warehouse", "land", "--since", "2024-13-01"), "since: must be a date YYYY-MM-DD"),
        (("warehouse", "land", "--group", "nope"), "group: no brand group 'nope'"),
        (("analyze", "stages", "--lapsed-days", "10"), "lapsed_days: must be more than"),
        (("analyze", "stages", "--warehouse", "missing.duckdb"), "warehouse: missing.duckdb does"),
    ],
)
def test_bad_input_exits_2_naming_the_field(
    env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    result = run(env, *args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_a_file_that_is_not_a_warehouse_is_named(env: dict[str, str], tmp_path: Path) -> None:
    import duckdb

    text_file, empty = tmp_path / "notes.txt", tmp_path / "empty.duckdb"
    text_file.write_text("not a database")
    duckdb.connect(str(empty)).close()
    for path, message in ((text_file, "is not a DuckDB file"), (empty, "is it a siyu warehouse?")):
        result = run(env, "analyze", "kpis", "--warehouse", str(path))
        assert result.exit_code == 2, result.output
        assert message in " ".join(result.output.split())


def test_kpis_from_the_warehouse(env: dict[str, str]) -> None:
    # given the landed brand: O1, O2, O5 at the till with guide G1, O4 on Tmall, O3 cancelled
    payload(env, "warehouse", "land")
    got = payload(env, "analyze", "kpis")
    # then the KPIs count the four paid orders of three members
    assert got["totals"] == {"orders": 4, "sales_fen": 15_900, "members": 3}
    assert [(c["channel"], c["orders"], c["sales_fen"], c["members"]) for c in got["channels"]] == [
        ("pos", 3, 13_900, 2),
        ("tmall", 1, 2_000, 1),
    ]
    assert got["guides"]["overall"]["guide_sales_fen"] == 13_900
    funnel = {f["channel"]: [s["members"] for s in f["steps"]] for f in got["funnel"]}
    assert funnel == {"miniprogram": [1, 0, 0, 0], "tmall": [1, 1, 0, 0]}
    # the till's buyers all held a card (registered in January) before ordering in March
    enrollment = got["enrollment"]
    assert (enrollment["till_orders"], enrollment["non_member_orders"]) == (3, 0)
    assert enrollment["enrollment_rate"] is None
    # the three till orders were at S1, the stores' city read from the store's catalog
    assert (got["same_city"]["store_orders"], got["same_city"]["order_share"]) == (3, 1.0)
    # and people get tables
    shown = run(env, "analyze", "kpis")
    assert shown.exit_code == 0 and "guide share of sales: 87.4%" in shown.stdout
