"""`siyu scenes` on a real SQLite store: a bad code is refused naming the field and
stores nothing; codes are created, listed and archived; the report and the star members
agree with the service."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from tests.cli.conftest import GROUP
from tests.scenes.helpers import new_member, order
from typer.testing import CliRunner, Result

from siyu.cli import app
from siyu.identity.ingest import IdentifierEncoder
from siyu.privacy import Vault
from siyu.scenes.report import scene_report, star_members
from siyu.scenes.scans import record_scan


@pytest.fixture
def engine(cli_store: Engine) -> Engine:
    return cli_store


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["scenes", *args])


def ok(*args: str) -> Any:
    done = run(*args, "--json")
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def test_a_bad_code_is_refused_naming_the_field(engine: Engine) -> None:
    spaced = run("create", "door one", "--kind", "permanent")
    assert spaced.exit_code == 2 and "scene: visible characters only" in spaced.output
    kind = run("create", "DOOR", "--kind", "weekly")
    assert kind.exit_code == 2 and "kind: must be one of" in kind.output
    endless = run("create", "TMP", "--kind", "temporary")
    assert endless.exit_code == 2 and "expires_at: required" in endless.output
    when = run("create", "TMP", "--kind", "temporary", "--expires-at", "soon")
    assert when.exit_code == 2 and "--expires-at: an ISO date" in when.output
    knee = run("report", "--knee", "0")
    assert knee.exit_code == 2 and "knee:" in knee.output
    assert ok("list") == {"scenes": [], "permanent_used": 0}


def test_create_list_archive_report_and_stars(engine: Engine) -> None:
    door = ok("create", "S1-door", "--kind", "permanent", "--store", "S1", "--campaign", "SPRING")
    assert (door["scene"], door["store_id"], door["expires_at"]) == ("S1-door", "S1", None)
    end = (datetime.now(UTC) + timedelta(days=10)).isoformat()
    tmp = ok("create", "S2-tmp", "--kind", "temporary", "--expires-at", end, "--guide", "G7")
    assert tmp["kind"] == "temporary" and tmp["guide_id"] == "G7"
    # the same create again answers the code; the same scene pointing elsewhere is refused
    assert ok("create", "S1-door", "--kind", "permanent", "--store", "S1", "--campaign", "SPRING")
    other = run("create", "S1-door", "--kind", "permanent", "--store", "S9")
    assert other.exit_code == 2 and "scene:" in other.output
    listed = ok("list")
    assert [s["scene"] for s in listed["scenes"]] == ["S1-door", "S2-tmp"]
    assert listed["permanent_used"] == 1
    table = run("list").stdout
    assert "S1-door" in table and "permanent codes used: 1 of 100,000" in table

    # members acquired by the door code; one shared it with two others
    encoder = IdentifierEncoder(Vault(bytes(range(32))))
    star, a, b = (new_member(engine, encoder, GROUP, f"u-{i}") for i in range(3))
    record_scan(engine, GROUP, "S1-door", "k0", member_id=star, acquired=True)
    for n, m in enumerate((a, b), 1):
        record_scan(
            engine, GROUP, "S1-door", f"k{n}", member_id=m, referrer_member_id=star, acquired=True
        )
    order(engine, GROUP, "O1", a, 12000)
    order(engine, GROUP, "O2", a, 3000, days=2)
    order(engine, GROUP, "O3", b, 5000)

    report = ok("report", "--knee", "2")
    expected = [r.as_dict(2) for r in scene_report(engine, GROUP, knee=2)]
    assert report == {"knee": 2, "scenes": json.loads(json.dumps(expected, default=str))}
    door_row = report["scenes"][0]
    assert (door_row["acquired"], door_row["reached_orders"]) == (3, {"1": 2, "2+": 1})
    assert door_row["revenue_fen"] == 20000
    shown = run("report", "--knee", "2").stdout
    assert "S1-door" in shown and "200.00" in shown and "2+ orders" in shown

    stars = ok("stars")["stars"]
    assert stars == [vars(s) for s in star_members(engine, GROUP)]
    assert stars == [{"member_id": star, "brought": 2, "scans": 2}]
    assert str(star) in run("stars").stdout

    archived = ok("archive", "S2-tmp")
    assert archived["archived_at"] is not None
    assert [s["scene"] for s in ok("list")["scenes"]] == ["S1-door"]
    assert "S2-tmp" in run("list", "--archived").stdout
    missing = run("archive", "nowhere")
    assert missing.exit_code == 2 and "scene: no code 'nowhere'" in missing.output
