"""`siyu guides programme stages|report` and `siyu guides training report` on a real SQLite
store: a bad programme file refused naming the field, stages put from a file and shown,
the report of a period (JSON and table) with targets met or not, a period before the first
stage refused, and training completion per audience and per class."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.guides.journey import Journey, at
from typer.testing import CliRunner, Result

from siyu.cli import app
from siyu.guides.attribution import attribute
from siyu.guides.classes import classify, parse, save_rules
from siyu.guides.training import complete, parse_item, save_item

PROGRAMME = {
    "stages": [
        {
            "code": "sales",
            "name_zh": "销售",
            "name_en": "Sales",
            "starts_on": "2024-12-01",
            "focus": [{"metric": "orders", "min": 2}, {"metric": "refund_rate_bp", "max": 0}],
        }
    ]
}


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["guides", *args])


def ok(*args: str) -> Any:
    done = run(*args)
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def test_stages_report_and_training(journey: Journey, tmp_path: Path) -> None:
    j = journey
    # given December: G1 sells twice at its till, G3 once
    j.order("M1", "o1", at(2), guide="G1")
    j.order("M2", "o2", at(3), guide="G1")
    j.order("M3", "o3", at(4), guide="G3")
    attribute(j.store.engine, j.g, at(1, 0), at(31, 0))
    # a programme whose stages start the same day is refused naming the field
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"stages": PROGRAMME["stages"] * 2}))
    refused = run("programme", "stages", "--file", str(bad))
    assert refused.exit_code != 0 and "stages.1.code" in refused.output
    assert run("programme", "stages").exit_code != 0  # none in force yet
    good = tmp_path / "programme.json"
    good.write_text(json.dumps(PROGRAMME))
    assert ok("programme", "stages", "--file", str(good))["version"] == 1
    assert ok("programme", "stages")["programme"]["stages"][0]["code"] == "sales"
    period = ("--since", "2024-12-01", "--until", "2024-12-31")
    report = ok("programme", "report", *period, "--json")
    met = {g["guide_id"]: g["met_all"] for g in report["guides"]}
    assert met == {"G1": True, "G2": False, "G3": False, "G4": False}
    assert report["totals"][0] == {
        "metric": "orders",
        "value": 3,
        "min": 2,
        "max": None,
        "guides_met": 1,
        "guides": 4,
    }
    table = run("programme", "report", *period).output
    assert "orders >=2" in table and "refund_rate_bp <=0" in table and "1/4 met" in table
    early = run("programme", "report", "--since", "2024-11-01", "--until", "2024-12-01")
    assert early.exit_code != 0 and "first stage" in early.output
    # training: G1 is class A for December; it and G3 (class B) completed the A item
    rules = {
        "A": {"min": {"orders": 2}, "playbook": {"zh": "工具", "en": "Tools"}},
        "B": {"min": {"orders": 1}, "playbook": {"zh": "SOP", "en": "SOPs"}},
        "C": {"playbook": {"zh": "督导", "en": "Supervision"}},
    }
    save_rules(j.store.engine, j.g, parse(rules))
    classify(j.store.engine, j.g, at(1, 0), at(31, 0))
    item = {"code": "tools", "title_zh": "工具", "title_en": "Tools", "body": "x"}
    save_item(j.store.engine, j.g, parse_item({**item, "for_class": "A"}))
    for guide in ("G1", "G3"):
        complete(j.store.engine, j.g, guide, "tools", at=at(31, 2))
    (row,) = ok("training", "report", "--at", "2024-12-31T03:00:00", "--json")
    assert (row["completed"], row["guides"], row["outside"]) == (1, 1, 1)
    assert row["by_class"] == {"A": [1, 1], "B": [1, 1], "C": [0, 2], "-": [0, 0]}
    text_out = run("training", "report", "--at", "2024-12-31T03:00:00").output
    assert "tools: 1/1, 1 outside; A 1/1 B 1/1 C 0/2 - 0/0" in text_out
