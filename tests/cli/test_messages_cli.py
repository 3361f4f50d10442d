"""`siyu messages` on a real SQLite store against the local WeCom platform: a policy and a
send from files (a bad one names the field), consent, a held plan released, the figures
table, the recipients as CSV (masked), `deliver` with transport settings from
SIYU_MESSAGING_FILE (secrets by variable name only), `wecom-status` recording results
once, and a cancel."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from tests.messaging.msg_helpers import T, at_stage, bulk_members, grant_all, person, till_order
from tests.messaging.platform_server import Platform, serving
from typer.testing import CliRunner

from siyu.campaigns import global_holdout
from siyu.cli import app, common
from siyu.identity.ingest import IdentifierEncoder
from siyu.importer.service import ensure_group
from siyu.privacy import Vault
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade

SEND = {
    "code": "W1",
    "channel": "wecom_group_send",
    "sender": "guide-1",
    "content": {"template": "text", "params": {"text": "春季上新，到店有礼"}},
    "target": {"stage": "at_risk"},
    "scheduled_at": "2026-01-01T02:00:00Z",
}


@pytest.fixture
def platform() -> Iterator[tuple[Platform, str]]:
    found = Platform()
    with serving(found) as url:
        yield found, url


@pytest.fixture
def members(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    url = f"sqlite:///{tmp_path / 'siyu.db'}"
    monkeypatch.setenv("SIYU_DATABASE_URL", url)
    monkeypatch.setenv("SIYU_GROUP", "g1")
    monkeypatch.setenv("SIYU_SECRET_KEY", bytes(range(32)).hex())
    monkeypatch.setattr(common.out, "width", 200)
    engine = make_engine(url)
    upgrade(engine)
    ensure_group(engine, "g1")
    encoder = IdentifierEncoder(Vault(bytes(range(32))))
    ids = [person(engine, encoder, "g1", f"o-{i}") for i in range(3)]
    with engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO identities (group_id, type, value_key, value, value_masked,
                      scope, verified, source_channel, first_seen, last_seen, member_id)
                    VALUES ('g1', 'external_userid', :k, :v, :v, '', true, 'wecom', :t, :t, :m)"""),
            [{"k": f"ext-{i}", "v": f"wm-{i}", "t": T, "m": m} for i, m in enumerate(ids)],
        )
    at_stage(engine, "g1", ids)
    engine.dispose()
    return ids


def _file(tmp_path: Path, name: str, doc: object) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return str(path)


def test_policy_consent_send_deliver_status_and_figures(
    members: list[int],
    platform: tuple[Platform, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    p, url = platform
    runner = CliRunner()
    # a policy without quiet hours, so the send goes whatever the hour of the test
    bad = runner.invoke(
        app, ["messages", "policy", "set", _file(tmp_path, "b.json", {"per_week": -1})]
    )
    assert bad.exit_code == 2 and "per_week" in bad.output
    doc = {"quiet_start": "00:00", "quiet_end": "00:00"}
    ok = runner.invoke(app, ["messages", "policy", "set", _file(tmp_path, "p.json", doc)])
    assert ok.exit_code == 0, ok.output
    shown = json.loads(runner.invoke(app, ["messages", "policy", "show"]).output)
    assert shown["policy"]["quiet_start"] == "00:00:00"
    # consent for two of three; the third is skipped, no consent
    for m in members[:2]:
        granted = runner.invoke(app, ["messages", "consent", "grant", str(m), "--source", "store"])
        assert granted.exit_code == 0, granted.output
    wrong = runner.invoke(app, ["messages", "consent", "grant", "1", "--channel", "fax"])
    assert wrong.exit_code == 2 and "channel" in wrong.output
    refused = runner.invoke(
        app, ["messages", "sends", "create", _file(tmp_path, "x.json", {**SEND, "channel": "fax"})]
    )
    assert refused.exit_code == 2 and "channel" in refused.output
    made = runner.invoke(app, ["messages", "sends", "create", _file(tmp_path, "s.json", SEND)])
    assert made.exit_code == 0 and "draft" in made.output, made.output
    planned = runner.invoke(app, ["messages", "sends", "plan", "W1", "--hold", "--json"])
    assert planned.exit_code == 0, planned.output
    assert json.loads(planned.output)["counts"] == {"planned": 2, "no_consent": 1}
    assert json.loads(planned.output)["state"] == "held"
    # the transports' settings: a secret in the clear, or a variable not set, is refused
    conf = tmp_path / "transports.toml"
    conf.write_text(f'[wecom_group_send]\ncorpid = "{p.corpid}"\ncorpsecret = "x"\n')
    monkeypatch.setenv("SIYU_MESSAGING_FILE", str(conf))
    clear = runner.invoke(app, ["messages", "deliver"])
    assert clear.exit_code == 2 and "corpsecret_env" in clear.output
    conf.write_text(
        f'[wecom_group_send]\ncorpid = "{p.corpid}"\ncorpsecret_env = "TEST_WECOM_SECRET"\n'
        f'base_url = "{url}"\n'
    )
    unset = runner.invoke(app, ["messages", "deliver"])
    assert unset.exit_code == 2 and "TEST_WECOM_SECRET" in unset.output
    monkeypatch.setenv("TEST_WECOM_SECRET", p.corpsecret)
    # held: nothing goes until it is sent
    idle = json.loads(runner.invoke(app, ["messages", "deliver", "--json"]).output)
    assert idle["claimed"] == 0
    assert runner.invoke(app, ["messages", "sends", "send", "W1"]).exit_code == 0
    done = runner.invoke(app, ["messages", "deliver", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["sent"] == 2
    assert p.corpsecret not in done.output
    (_task,) = p.posts("/cgi-bin/externalcontact/add_msg_template")
    (msgid,) = p.results
    p.results[msgid].update({"wm-0": 1, "wm-1": 0})
    first = json.loads(runner.invoke(app, ["messages", "wecom-status", "--json"]).output)
    assert (first["tasks"], first["delivered"], first["waiting"], first["recorded"]) == (1, 1, 1, 1)
    again = json.loads(runner.invoke(app, ["messages", "wecom-status", "--json"]).output)
    assert again["recorded"] == 0
    table = runner.invoke(app, ["messages", "sends", "show", "W1"])
    assert table.exit_code == 0, table.output
    assert "no_consent" in table.output and "delivered" in table.output
    figures = json.loads(runner.invoke(app, ["messages", "sends", "show", "W1", "--json"]).output)
    assert (figures["sent"], figures["delivered"]) == (2, 1)
    assert figures["against_holdout"] is None  # no global holdout: nobody held out
    exported = runner.invoke(
        app, ["messages", "sends", "recipients", "W1", "--figure", "delivered"]
    )
    rows = list(csv.DictReader(io.StringIO(exported.output)))
    assert [int(r["member_id"]) for r in rows] == [members[0]]
    listed = runner.invoke(app, ["messages", "sends", "list"])
    assert "W1" in listed.output and "planned" in listed.output
    cancelled = runner.invoke(app, ["messages", "sends", "cancel", "W1"])
    assert cancelled.exit_code == 0 and "0 waiting" in cancelled.output
    twice = runner.invoke(app, ["messages", "sends", "cancel", "W1"])
    assert twice.exit_code == 2 and "cancelled" in twice.output


def test_a_send_is_shown_against_the_global_holdout(members: list[int], tmp_path: Path) -> None:
    runner = CliRunner()
    engine = make_engine(os.environ["SIYU_DATABASE_URL"])
    # given 40 more reachable members at the stage, half the group held out, and one
    # purchase a side the day after the send is due
    ids = members + bulk_members(engine, "g1", 40)
    at_stage(engine, "g1", ids[3:])
    grant_all(engine, "g1", ids)
    assert runner.invoke(app, ["campaigns", "holdout", "5000"]).exit_code == 0
    doc = {**SEND, "code": "MP", "channel": "wechat_subscribe", "sender": None}
    doc["scheduled_at"] = "2030-01-07T02:00:00Z"  # 10:00 in Shanghai
    doc["content"] = {"template": "TPL-1", "params": {"thing1": "x"}}
    assert (
        runner.invoke(
            app, ["messages", "sends", "create", _file(tmp_path, "m.json", doc)]
        ).exit_code
        == 0
    )
    planned = runner.invoke(app, ["messages", "sends", "plan", "MP", "--json"])
    counts = json.loads(planned.output)["counts"]
    with engine.connect() as conn:
        holdout = global_holdout.current(conn, "g1")
    held = [m for m in ids if holdout.holds(m)]
    reached = [m for m in ids if not holdout.holds(m)]
    assert counts == {"planned": len(reached), "global_holdout": len(held)}
    for n, (member, fen) in enumerate(((held[0], 5000), (reached[0], 8000))):
        till_order(engine, "g1", f"TILL-{n}", member, fen, datetime(2030, 1, 8))
    engine.dispose()
    # when it is shown
    shown = runner.invoke(app, ["messages", "sends", "show", "MP"])
    figures = json.loads(runner.invoke(app, ["messages", "sends", "show", "MP", "--json"]).output)
    # then the reached and the held out, side by side, and each difference
    assert shown.exit_code == 0, shown.output
    assert "against the global holdout, 7 days" in shown.output
    assert "buyer rate:" in shown.output and "95% interval" in shown.output
    against = figures["against_holdout"]
    assert against["reached"]["revenue_fen"] == 8000
    assert against["held_out"] == {
        "people": len(held),
        "buyers": 1,
        "orders": 1,
        "revenue_fen": 5000,
    }
