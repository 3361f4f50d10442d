"""`siyu campaigns` on a real SQLite store: a bad plan names the field and stores nothing,
a plan is put, launched once however often it runs, and its report and members agree
with the service."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from siyu.cli import app
from siyu.config import DEFAULT_STRONG_TYPES
from siyu.coupons import catalog
from siyu.coupons.templates import CouponTemplate
from siyu.identity.ingest import IdentifierEncoder
from siyu.identity.service import attach_identity
from siyu.importer.service import ensure_group
from siyu.privacy import Vault
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade

PLAN = {
    "code": "WAKE",
    "name_zh": "唤醒",
    "name_en": "Wake-up",
    "target": {"stage": "at_risk"},
    "starts_at": "2026-01-01T00:00:00Z",
    "ends_at": "2026-03-01T00:00:00Z",
    "coupons": ["C10"],
    "holdout_bp": 3000,
}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'siyu.db'}"
    monkeypatch.setenv("SIYU_DATABASE_URL", url)
    monkeypatch.setenv("SIYU_GROUP", "g1")
    monkeypatch.setenv("SIYU_SECRET_KEY", bytes(range(32)).hex())
    engine = make_engine(url)
    upgrade(engine)
    ensure_group(engine, "g1")
    encoder = IdentifierEncoder(Vault(bytes(range(32))))
    ids = []
    for i in range(20):
        ident = encoder.encode("unionid", f"u-{i}").in_scope("wx")
        at = datetime(2025, 12, 1)
        ids.append(
            attach_identity(
                engine, encoder, "g1", ident, "wechat_mp", at, DEFAULT_STRONG_TYPES
            ).member_id
        )
    with engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO member_stages (group_id, member_id, stage, orders, computed_at)
                    VALUES ('g1', :m, 'at_risk', 1, '2026-01-01 00:00:00')"""),
            [{"m": m} for m in ids],
        )
    template = {
        "code": "C10",
        "name_zh": "立减10元",
        "name_en": "10 off",
        "kind": "fixed",
        "off_fen": 1000,
        "validity": {"days_from_issue": 30},
        "face_value_fen": 1000,
        "cost_fen": 1000,
    }
    catalog.save(engine, "g1", CouponTemplate.model_validate(template), None)
    engine.dispose()
    return url


def test_put_launch_report_members(env: str, tmp_path: Path) -> None:
    runner = CliRunner()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**PLAN, "holdout_bp": 9000}))
    refused = runner.invoke(app, ["campaigns", "put", str(bad)])
    assert refused.exit_code == 2 and "holdout_bp" in refused.output
    good = tmp_path / "plan.json"
    good.write_text(json.dumps(PLAN))
    assert runner.invoke(app, ["campaigns", "put", str(good)]).exit_code == 0
    first = runner.invoke(app, ["campaigns", "launch", "WAKE", "--json"])
    assert first.exit_code == 0, first.output
    launched = json.loads(first.output)
    assert launched["treatment"] + launched["holdout"] == 20
    again = json.loads(runner.invoke(app, ["campaigns", "launch", "WAKE", "--json"]).output)
    assert again["coupons"]["C10"]["issued"] == 0
    assert again["coupons"]["C10"]["replayed"] == launched["treatment"]
    report = json.loads(runner.invoke(app, ["campaigns", "report", "WAKE", "--json"]).output)
    assert report["treatment"]["members"] == launched["treatment"]
    assert report["coupons_issued"] == launched["treatment"]
    held = runner.invoke(app, ["campaigns", "members", "WAKE", "--arm", "holdout"])
    assert len(held.output.split()) == launched["holdout"]
    wrong = runner.invoke(app, ["campaigns", "members", "WAKE", "--arm", "both"])
    assert wrong.exit_code == 2 and "--arm" in wrong.output
    shown = runner.invoke(app, ["campaigns", "report", "WAKE"])
    assert "treatment" in shown.output and "holdout" in shown.output
