"""`siyu guides bind|rebind|release|attribute` on a real SQLite store: the same results as
the services, re-runs change nothing, bad input is refused naming the field."""

from __future__ import annotations

import json
from typing import Any

from tests.guides.journey import Journey, at
from typer.testing import CliRunner, Result

from siyu.cli import app
from siyu.guides.shares import record_share


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["guides", *args])


def ok(*args: str) -> Any:
    done = run(*args, "--json")
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def test_bind_rebind_release_attribute(journey: Journey) -> None:
    j = journey
    m1 = str(j.members["M1"])
    j.order("M1", "o1", at(1), guide="G1")
    j.scan("M2", "qr-g2", "G2", at(1))
    # bind: by rule, once
    assert ok("bind") == {"bound": 2, "by_rule": {"first_purchase": 1, "scene": 1}}
    assert ok("bind")["bound"] == 0
    assert "bound 0 members" in run("bind").output
    # rebind: HQ's move; an unknown guide is refused naming the field
    assert ok("rebind", m1, "G3", "--reason", "closer") == {
        "member_id": j.members["M1"],
        "guide_id": "G3",
        "rule": "hq",
    }
    bad = run("rebind", m1, "G9", "--reason", "x")
    assert bad.exit_code != 0 and "guide_id" in bad.output
    # release: M2 goes to S1's first remaining guide
    assert ok("release", "G2", "--reason", "left") == {
        "guide_id": "G2",
        "released": 1,
        "rebound": 1,
    }
    assert j.live("M2") == "G1" and j.live("M1") == "G3"
    # attribute: a view event carrying G3's share code, then M3 buys online
    record_share(j.store.engine, j.g, "G3", "page", "/pages/home", "g3-home")
    j.event("M3", "view", at(3), scene="g3-home")
    j.order("M3", "o3", at(4), channel="miniprogram")
    period = ("--since", "2024-12-01", "--until", "2025-01-01")
    first = ok("attribute", *period)
    assert (first["touches_recorded"], first["by_basis"]) == (1, {"share": 1, "till": 1})
    again = ok("attribute", *period)
    assert (again["touches_recorded"], again["by_basis"]) == (0, {"share": 1, "till": 1})
    assert "2 orders attributed" in run("attribute", *period).output
    wrong = run("attribute", "--since", "December", "--until", "2025-01-01")
    assert wrong.exit_code == 2 and "since" in wrong.output
