"""`siyu experiments` on a real SQLite store: a bad plan names the field and stores
nothing; a plan is saved, listed, started once however often it runs, its results printed
per metric with the SRM line (and per stage) agreeing with the service, the members
behind a figure as CSV, and a stopped experiment refuses to stop again."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from siyu.cli import app, common
from siyu.experiments.results import members, results
from siyu.importer.service import ensure_group
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade

DAYS = timedelta(days=10)
PLAN = {
    "code": "KNEE2",
    "name_zh": "第二单实验",
    "name_en": "Second order test",
    "target": {"stage": "new_1"},
    "variants": [
        {"name": "control", "weight_bp": 5000, "kind": "none"},
        {"name": "note", "weight_bp": 5000, "kind": "message", "ref": "M1"},
    ],
    "window_days": 30,
    "starts_at": "2026-01-01T00:00:00Z",
    "ends_at": "2099-01-01T00:00:00Z",
}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    from tests.experiments.helpers import put_in_stage, save_send

    url = f"sqlite:///{tmp_path / 'siyu.db'}"
    monkeypatch.setenv("SIYU_DATABASE_URL", url)
    monkeypatch.setenv("SIYU_GROUP", "g1")
    monkeypatch.setenv("SIYU_SECRET_KEY", bytes(range(32)).hex())
    monkeypatch.setattr(common.out, "width", 200)
    engine = make_engine(url)
    upgrade(engine)
    ensure_group(engine, "g1")
    put_in_stage(engine, "g1", list(range(1, 201)), "new_1")
    save_send(engine, "g1")  # what the `note` variant names
    engine.dispose()
    return url


def test_save_list_start_results_members_stop(env: str, tmp_path: Path) -> None:
    from tests.experiments.helpers import add_order

    runner = CliRunner()
    heavy = [{**PLAN["variants"][0], "weight_bp": 9000}, PLAN["variants"][1]]  # type: ignore[index]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**PLAN, "variants": heavy}))
    refused = runner.invoke(app, ["experiments", "save", str(bad)])
    assert refused.exit_code == 2 and "weight_bp" in refused.output
    assert "KNEE2" not in runner.invoke(app, ["experiments", "list"]).output
    good = tmp_path / "plan.json"
    good.write_text(json.dumps(PLAN))
    saved = runner.invoke(app, ["experiments", "save", str(good)])
    assert saved.exit_code == 0 and "draft" in saved.output, saved.output
    first = runner.invoke(app, ["experiments", "start", "KNEE2", "--json"])
    assert first.exit_code == 0, first.output
    started = json.loads(first.output)
    assert started["target"] == started["assigned"] == 200 and started["global_holdout"] == 0
    note = started["messages"]["note"]
    assert (note["send"], note["state"], note["planned_now"]) == ("M1", "planned", True)
    # no member has an address or consent: every one is skipped, with the reason
    assert note["recipients"] == {"no_consent": started["variants"]["note"]}
    again = json.loads(runner.invoke(app, ["experiments", "start", "KNEE2", "--json"]).output)
    assert again["assigned"] == 0 and again["variants"] == started["variants"]
    assert again["messages"]["note"]["planned_now"] is False
    printed = runner.invoke(app, ["experiments", "start", "KNEE2"]).output
    assert "note send M1 planned (planned before, left as it is): no_consent" in printed
    listed = runner.invoke(app, ["experiments", "list"]).output
    assert "KNEE2" in listed and "running" in listed and "stage new_1" in listed
    # assigned ten days ago; orders since for a third of the members
    engine = make_engine(env)
    now = datetime.now(UTC).replace(tzinfo=None)
    with engine.begin() as conn:
        conn.execute(text("UPDATE experiment_members SET assigned_at = :t"), {"t": now - DAYS})
    for m in range(1, 201, 3):
        add_order(engine, "g1", f"O{m}", m, 1000 + 10 * m, now - DAYS / 2)
    found = results(engine, "g1", "KNEE2")
    shown = runner.invoke(app, ["experiments", "results", "KNEE2", "--by-stage"])
    assert shown.exit_code == 0, shown.output
    assert "SRM p=" in shown.output and "all: revenue_fen" in shown.output
    assert "stage new_1: repurchase" in shown.output and "sequential CI" in shown.output
    lift = next(c for c in found.overall.comparisons if c.metric == "repurchase" and c.difference)
    assert lift.difference is not None
    assert f"{lift.difference.relative.estimate * 100:+.1f}%" in shown.output
    as_json = json.loads(runner.invoke(app, ["experiments", "results", "KNEE2", "--json"]).output)
    assert as_json["overall"]["counts"] == started["variants"]
    bought = runner.invoke(
        app, ["experiments", "members", "KNEE2", "--variant", "note", "--metric", "repurchase"]
    )
    rows = list(csv.DictReader(io.StringIO(bought.output)))
    expected = members(engine, "g1", "KNEE2", "note", "repurchase")
    assert [int(r["member_id"]) for r in rows] == expected and expected
    assert {r["variant"] for r in rows} == {"note"}
    wrong = runner.invoke(app, ["experiments", "members", "KNEE2", "--variant", "zzz"])
    assert wrong.exit_code == 2 and "variant" in wrong.output
    engine.dispose()
    assert "stopped" in runner.invoke(app, ["experiments", "stop", "KNEE2"]).output
    twice = runner.invoke(app, ["experiments", "stop", "KNEE2"])
    assert twice.exit_code != 0 and "stopped" in twice.output
