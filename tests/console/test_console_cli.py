"""The console's command `siyu analyze snapshot` (lands, computes, stores); `siyu serve`
without the chart bundle is in test_console_off.py."""

from __future__ import annotations

import json
from pathlib import Path

from tests.console.conftest import SECRET, Brand
from typer.testing import CliRunner

from siyu.cli import app


def env(brand: Brand, warehouse: Path) -> dict[str, str]:
    return {
        "SIYU_DATABASE_URL": brand.engine.url.render_as_string(hide_password=False),
        "SIYU_SECRET_KEY": SECRET.hex(),
        "SIYU_GROUP": brand.group,
        "SIYU_WAREHOUSE": str(warehouse),
    }


def test_snapshot_lands_first_and_stores_every_kind(brand: Brand, tmp_path: Path) -> None:
    # given a store and no warehouse yet
    warehouse = tmp_path / "wh.duckdb"
    runner = CliRunner()
    # when the snapshot is asked for without landing: a clear error naming the fix
    refused = runner.invoke(app, ["analyze", "snapshot", "--no-land"], env=env(brand, warehouse))
    assert refused.exit_code == 2
    assert "siyu warehouse land" in refused.output
    # when it may land first (the default)
    before = brand.one("SELECT COUNT(*) FROM analytics_snapshots WHERE group_id = :g")
    knee = brand.demo.lifecycle.knee_found if brand.demo.lifecycle else None
    done = runner.invoke(
        app,
        ["analyze", "snapshot", "--json", "--no-write-stages", "--knee", str(knee)],
        env=env(brand, warehouse),
    )
    # then it lands the warehouse and stores one more snapshot of every kind
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    kinds = ["clv", "guides", "kpis", "lifecycle", "rfm", "sales", "stores"]
    assert summary["kinds"] == kinds
    assert summary["knee"] == knee
    assert warehouse.is_file()
    after = brand.one("SELECT COUNT(*) FROM analytics_snapshots WHERE group_id = :g")
    assert after == min(before + len(kinds), 5 * len(kinds))
