"""`siyu demo` shows retention by order count on the members OneID found, and the knee
beside the generator's true one; the stages it derives are written back to the store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from rich.console import Console
from sqlalchemy import text
from tests.analytics import reference
from typer.testing import CliRunner

from siyu.cli import app
from siyu.config import Settings
from siyu.demo.pipeline import DemoResult, run_demo
from siyu.demo.summary import print_summary
from siyu.store.engine import make_engine


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    return run_demo(Settings(secret_key=bytes(32)), 3_000, 5, tmp_path_factory.mktemp("demo"))


def test_the_knee_found_is_the_generators(demo: DemoResult) -> None:
    got = demo.as_json()
    # then the knee found on the resolved members is the true one, with its curve
    assert got["knee_found"] == got["knee_true"] == 4
    assert got["retention_window_days"] == 120
    assert [r["k"] for r in got["retention"]] == list(range(1, 9))
    for r in got["retention"]:
        assert r["rate"] == pytest.approx(r["retained"] / r["eligible"], abs=1e-6)
    # and the analysis is timed on its own (its speed is the benches' to measure)
    assert {"analyze", "snapshot"} <= set(got["timings"])


def test_the_curve_is_the_reference_on_the_stores_orders(demo: DemoResult) -> None:
    # given the orders the demo imported, with the members OneID gave them
    engine = make_engine(demo.database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT order_id, member_id, ordered_at, paid_fen AS amount_fen, status FROM orders"
            )
        ).all()
        # as of the data's end: its newest order, event or member (the snapshot's as-of)
        newest = [
            conn.execute(text(f"SELECT MAX({column}) FROM {table}")).scalar()
            for table, column in (
                ("orders", "ordered_at"),
                ("events", "occurred_at"),
                ("members", "registered_at"),
            )
        ]
    engine.dispose()
    orders = pd.DataFrame([r._asdict() for r in rows])
    orders["ordered_at"] = pd.to_datetime(orders.ordered_at)
    t_end = max(pd.Timestamp(t) for t in newest).to_pydatetime()
    # then the demo's curve counts exactly what the member-by-member reference counts
    expected = reference.retention(orders, 120, 8, t_end)
    got = [(r.k, r.members, r.eligible, r.retained) for r in demo.lifecycle.curve]  # type: ignore[union-attr]
    assert got == expected


def test_stages_cover_every_member_and_are_in_the_store(demo: DemoResult) -> None:
    got = demo.as_json()
    assert list(got["stages"]) == [
        "prospect",
        "new_1",
        "new_2",
        "new_3",
        "loyal",
        "at_risk",
        "lapsed",
    ]
    assert sum(got["stages"].values()) == got["members"]
    engine = make_engine(demo.database_url)
    with engine.connect() as conn:
        stored = dict(
            conn.execute(text("SELECT stage, COUNT(*) FROM member_stages GROUP BY stage")).all()
        )
    engine.dispose()
    assert stored == {k: v for k, v in got["stages"].items() if v}


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", "Knee found at k = 4: members stay from then on (the generator's true knee: 4)"),
        ("zh", "拐点：第 4 单之后会员留下来（生成器设定的真实拐点：第 4 单）"),
    ],
)
def test_summary_shows_the_curve_and_the_knee(demo: DemoResult, lang: str, expected: str) -> None:
    console = Console(record=True, width=140)
    print_summary(console, demo, lang)
    shown = console.export_text()
    assert expected in shown
    assert "4 ◀" in shown  # the knee marked on the curve


def test_demo_json_from_the_command_line(tmp_path: Path) -> None:
    env: dict[str, Any] = {"SIYU_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "SIYU_LANG": "en"}
    result = CliRunner().invoke(
        app,
        ["demo", "--members", "800", "--seed", "3", "--json", "--workdir", str(tmp_path / "d")],
        env=env,
    )
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"knee_found", "knee_true", "retention", "stages", "warehouse"} <= got.keys()
    assert got["knee_true"] == 4
    assert Path(got["warehouse"]).is_file()
