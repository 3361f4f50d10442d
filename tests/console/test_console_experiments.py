"""The Experiments pages (issue #18) in process on the real app: HQ saves a draft from a
stage with the form (a bad variants line or weights are shown in the form, nothing
saved), starts it, reads the results (control beside each variant, lift, intervals, the
per-stage breakdown, the SRM banner when the split is broken), clicks a count through to
exactly those members and their CSV, and stops it; an analyst reads, masked, without the
form or the buttons, and a Start it posts anyway is refused. The browser flow is
`test_console_experiments_browser.py`."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from tests.conftest import Store
from tests.console.test_console_messages import Console, seed_messaging
from tests.experiments.helpers import save_send

from siyu.app import create_app
from siyu.config import Settings
from siyu.privacy import Vault


@pytest.fixture
def console(store: Store, vault: Vault, tmp_path: Path) -> Iterator[Console]:
    engine, group = store.engine, store.group_id
    members, keys = seed_messaging(engine, vault, group, tmp_path)
    save_send(engine, group, experiment="KNEE")  # the `note` variant's message
    url = engine.url.render_as_string(hide_password=False)
    app = create_app(
        Settings(database_url=url, secret_key=bytes(range(32)), group_id=group),
        rate_per_second=0,
    )
    with TestClient(app) as client:
        yield Console(client, store, keys, members)
    app.state.services.engine.dispose()


def draft_form(token: str, code: str = "KNEE", **more: str) -> dict[str, str]:
    today = datetime.now(UTC).date()
    return {
        "csrf": token,
        "code": code,
        "name_zh": "唤醒实验",
        "name_en": "Wake-up test",
        "target_kind": "stage",
        "target": "at_risk",
        "variants": "control:50:none\nnote:50:message:M1",
        "window_days": "30",
        "pre_period_days": "30",
        "starts_at": f"{today:%Y-%m-%d}",
        "ends_at": f"{today + timedelta(days=60):%Y-%m-%d}",
        **more,
    }


def n_of(html: str, link_id: str) -> int:
    m = re.search(rf'id="{re.escape(link_id)}" data-n="(\d+)"', html)
    assert m, link_id
    return int(m.group(1))


def started_console(console: Console) -> tuple[str, dict[str, str]]:
    """HQ saved and started KNEE over both members; each member's variant."""
    token = console.login("admin", "en")
    done = console.client.post(
        "/console/experiments", data=draft_form(token), follow_redirects=False
    )
    assert done.status_code == 303, done.text
    started = console.client.post(
        "/console/experiments/KNEE/start", data={"csrf": token}, follow_redirects=False
    )
    assert started.status_code == 303
    with console.store.engine.connect() as conn:
        arms = dict(
            conn.execute(
                text("SELECT member_id, variant FROM experiment_members WHERE group_id = :g"),
                {"g": console.store.group_id},
            ).all()
        )
    return token, {str(m): str(v) for m, v in arms.items()}


def test_hq_saves_starts_reads_clicks_through_and_stops(console: Console) -> None:
    token = console.login("admin", "en")
    listed = console.client.get("/console/experiments")
    assert listed.status_code == 200 and 'id="experiment-form"' in listed.text
    assert 'data-page="experiments"' in listed.text  # in the navigation, under Marketing
    # a variants line that is not name:weight:kind[:ref] is refused naming the line
    bad = console.client.post(
        "/console/experiments", data=draft_form(token, variants="control:50:none\noops")
    )
    assert bad.status_code == 422 and "variants: line 2" in bad.text
    assert 'value="KNEE"' in bad.text  # what was typed is kept
    heavy = console.client.post(
        "/console/experiments", data=draft_form(token, variants="a:90:none\nb:50:none")
    )
    assert heavy.status_code == 422 and "sum to 10000" in heavy.text
    assert console.one("SELECT COUNT(*) FROM experiments WHERE group_id = :g") == 0
    # when HQ saves the draft
    done = console.client.post(
        "/console/experiments", data=draft_form(token), follow_redirects=False
    )
    assert done.headers["location"] == "/console/experiments/KNEE?done=saved"
    page = console.client.get(done.headers["location"]).text
    assert 'data-status="draft"' in page and 'id="experiment-start"' in page
    listed = console.client.get("/console/experiments").text
    assert 'data-experiment="KNEE" data-status="draft"' in listed and "note 50%" in listed
    # and starts it
    started = console.client.post(
        "/console/experiments/KNEE/start", data={"csrf": token}, follow_redirects=False
    )
    assert started.status_code == 303 and "done=started" in started.headers["location"]
    page = console.client.get(started.headers["location"]).text
    assert 'data-status="running"' in page and 'id="experiment-stop"' in page
    assert "2 members newly assigned" in page
    # then the results: every variant's members add up, per stage too, CUPED shown
    assert n_of(page, "n-all-revenue_fen-control") + n_of(page, "n-all-revenue_fen-note") == 2
    assert 'id="breakdown-at_risk"' in page and "Stage at assignment" in page
    assert "CUPED lift" in page and "Sequential interval" in page
    # a count opens exactly those members, and their CSV
    with console.store.engine.connect() as conn:
        in_note = sorted(
            conn.execute(
                text("""SELECT member_id FROM experiment_members WHERE group_id = :g
                        AND variant = 'note'"""),
                {"g": console.store.group_id},
            ).scalars()
        )
    shown = console.client.get("/console/experiments/KNEE/members?variant=note&stage=at_risk")
    assert shown.status_code == 200
    assert re.findall(r'data-member="(\d+)"', shown.text) == [str(m) for m in in_note]
    exported = console.client.get("/console/experiments/KNEE/members.csv?variant=note")
    table = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert [int(r["member_id"]) for r in table] == in_note
    nobody = console.client.get(
        "/console/experiments/KNEE/members?variant=note&metric=repurchase&positive=1"
    )
    assert 'data-total="0"' in nobody.text
    assert console.client.get("/console/experiments/KNEE/members?variant=zz").status_code == 404
    # in Chinese
    zh = console.client.get("/console/experiments/KNEE?lang=zh").text
    assert "实验结果" in zh and "进行中" in zh and "序贯区间" in zh
    # when HQ stops it
    stopped = console.client.post(
        "/console/experiments/KNEE/stop", data={"csrf": token}, follow_redirects=False
    )
    page = console.client.get(stopped.headers["location"]).text
    assert 'data-status="stopped"' in page and 'id="experiment-start"' not in page
    again = console.client.post("/console/experiments/KNEE/stop", data={"csrf": token})
    assert again.status_code == 409 and "not running" in again.text
    assert console.client.post("/console/experiments/KNEE/stop", data={}).status_code == 403


def test_the_srm_banner_fires_when_the_split_is_broken(console: Console) -> None:
    started_console(console)
    # a broken split: 40 members all in the control of a 50/50 plan
    with console.store.engine.begin() as conn:
        experiment = conn.execute(
            text("SELECT experiment_id FROM experiments WHERE group_id = :g AND code = 'KNEE'"),
            {"g": console.store.group_id},
        ).scalar_one()
        rows: list[dict[str, Any]] = [
            {
                "g": console.store.group_id,
                "e": experiment,
                "m": 10_000 + i,
                "at": datetime.now(UTC).replace(tzinfo=None),
            }
            for i in range(40)
        ]
        conn.execute(
            text("""INSERT INTO experiment_members (group_id, experiment_id, member_id,
                    variant, bucket, stage, assigned_at) VALUES (:g, :e, :m, 'control', 0,
                    'at_risk', :at)"""),
            rows,
        )
    page = console.client.get("/console/experiments/KNEE").text
    assert 'id="srm-all"' in page and "Sample ratio mismatch" in page


def test_an_analyst_reads_masked_without_the_form_or_the_buttons(console: Console) -> None:
    started_console(console)
    token = console.login("analyst")
    listed = console.client.get("/console/experiments").text
    assert 'id="experiment-form"' not in listed and 'id="read-only"' in listed
    page = console.client.get("/console/experiments/KNEE").text
    assert 'id="experiment-stop"' not in page and 'id="n-all-revenue_fen-control"' in page
    refused = console.client.post("/console/experiments/KNEE/stop", data={"csrf": token})
    assert refused.status_code == 403
    saved = console.client.post("/console/experiments", data=draft_form(token, code="X"))
    assert saved.status_code == 403
    members = console.client.get("/console/experiments/KNEE/members?variant=control").text
    members += console.client.get("/console/experiments/KNEE/members?variant=note").text
    assert "13900001111" not in members and "13812345678" not in members
    assert console.one("SELECT status FROM experiments WHERE group_id = :g") == "running"
