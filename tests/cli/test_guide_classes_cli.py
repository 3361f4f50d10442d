"""`siyu guides classes rules|classify|list` on a real SQLite store: rules put from a file
and shown, a bad file refused naming the field, a period classed (a re-run replaces it),
the classes listed with their metrics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.guides.journey import Journey, at
from typer.testing import CliRunner, Result

from siyu.cli import app
from siyu.guides.attribution import attribute
from siyu.guides.shares import record_share, record_touch

RULES = {
    "A": {"min": {"orders": 2}, "playbook": {"zh": "工具", "en": "Tools"}},
    "B": {"min": {"orders": 1}, "playbook": {"zh": "SOP", "en": "SOPs"}},
    "C": {"playbook": {"zh": "督导", "en": "Supervision"}},
}


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["guides", "classes", *args])


def ok(*args: str) -> Any:
    done = run(*args)
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def test_rules_classify_list(journey: Journey, tmp_path: Path) -> None:
    j = journey
    # given December: G1 sells twice at its till, G2's share is opened and sells nothing
    j.order("M1", "o1", at(2), guide="G1")
    j.order("M2", "o2", at(3), guide="G1")
    j.order("M3", "o3", at(4), guide="G3")
    record_share(j.store.engine, j.g, "G2", "product", "K1", "g2-spam")
    record_touch(j.store.engine, j.g, "g2-spam", "t1", at(5), member_id=j.members["M4"])
    attribute(j.store.engine, j.g, at(1, 0), at(31, 0))
    # a rules file with an unknown metric is refused naming it
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**RULES, "B": {**RULES["B"], "max": {"ordrs": 1}}}))
    refused = run("rules", "--file", str(bad))
    assert refused.exit_code != 0 and "B.max" in refused.output and "ordrs" in refused.output
    assert run("rules").exit_code != 0  # none in force yet
    good = tmp_path / "rules.json"
    good.write_text(json.dumps(RULES))
    assert ok("rules", "--file", str(good))["version"] == 1
    assert ok("rules")["rules"]["A"]["min"] == {"orders": 2}
    period = ("--since", "2024-12-01", "--until", "2024-12-31")
    first = ok("classify", *period, "--json")
    assert first["by_class"] == {"A": 1, "B": 1, "C": 2} and first["spam_risk"] == 1
    assert ok("classify", *period, "--json") == first  # a re-run replaces, same result
    rows = {r["guide_id"]: r for r in ok("list", "--json")}
    assert {g: r["class"] for g, r in rows.items()} == {"G1": "A", "G2": "C", "G3": "B", "G4": "C"}
    assert rows["G2"]["spam_risk"] and rows["G2"]["metrics"]["share_opens"] == 1
    table = run("list").output
    assert "spam_risk" in table and "G1" in table and "A" in table
    assert "A 1, B 1, C 2" in run("classify", *period).output
