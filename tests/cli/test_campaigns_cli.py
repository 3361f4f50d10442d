"""`siyu campaigns` on a real SQLite store: a bad plan names the field and stores nothing,
a plan is put, launched once however often it runs, and its report and members agree
with the service."""

from __future__ import annotations

import json
import time
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


def test_a_campaign_with_a_lottery(
    env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.lotteries.helpers import stock_prizes

    from siyu.cli import common
    from siyu.lotteries.draw import DrawAsk, draw

    monkeypatch.setattr(common.out, "width", 200)
    runner = CliRunner()
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({**PLAN, "coupons": [], "lottery": "LUCK"}))
    # the pool does not exist yet: refused naming the field, nothing stored
    missing = runner.invoke(app, ["campaigns", "put", str(plan)])
    assert missing.exit_code == 2 and "lottery: no prize pool 'LUCK'" in missing.output
    engine = make_engine(env)
    stock_prizes(engine, "g1", {"BAG": 10})
    pool = {
        "code": "LUCK",
        "name_zh": "抽奖",
        "name_en": "Draw",
        "starts_at": PLAN["starts_at"],
        "ends_at": PLAN["ends_at"],
        "entry": "campaign",
        "campaign": "WAKE",
        "per_member": 1,
        "prizes": [
            {
                "code": "A",
                "name_zh": "袋",
                "name_en": "Bag",
                "sku": "BAG",
                "location_id": "S1",
                "odds_ppm": 1_000_000,
                "units": 10,
            }
        ],
    }
    (tmp_path / "pool.json").write_text(json.dumps(pool))
    defined = runner.invoke(app, ["lotteries", "define", str(tmp_path / "pool.json")])
    assert defined.exit_code == 0, defined.output
    assert runner.invoke(app, ["campaigns", "put", str(plan)]).exit_code == 0
    launched = json.loads(runner.invoke(app, ["campaigns", "launch", "WAKE", "--json"]).output)
    treated = runner.invoke(app, ["campaigns", "members", "WAKE"]).output.split()
    assert len(treated) == launched["treatment"] >= 2
    # two treated members draw (every roll wins)
    for m in treated[:2]:
        draw(engine, "g1", "LUCK", DrawAsk(int(m), f"d-{m}"), datetime(2026, 1, 5))
    engine.dispose()
    report = json.loads(runner.invoke(app, ["campaigns", "report", "WAKE", "--json"]).output)
    assert (report["lottery"], report["draws"], report["wins"], report["winners"]) == (
        "LUCK",
        2,
        2,
        2,
    )
    shown = runner.invoke(app, ["campaigns", "report", "WAKE"]).output
    assert "lottery LUCK: 2 draws, 2 won by 2 members" in shown
    winners = runner.invoke(app, ["campaigns", "members", "WAKE", "--who", "winners"])
    assert sorted(winners.output.split(), key=int) == sorted(treated[:2], key=int)


def test_the_global_holdout_is_shown_and_set(env: str) -> None:
    runner = CliRunner()
    shown = runner.invoke(app, ["campaigns", "holdout", "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output) == {"share_bp": 0, "updated_at": None, "started_at": None}
    # no share: no report, and how to set one
    nothing = runner.invoke(app, ["campaigns", "holdout-report"])
    assert nothing.exit_code == 1 and "siyu campaigns holdout BP" in nothing.output
    # out of range: the field and the rule, exit 2, nothing set
    bad = runner.invoke(app, ["campaigns", "holdout", "6000"])
    assert bad.exit_code == 2 and "share_bp" in bad.output and "5000" in bad.output
    assert (
        json.loads(runner.invoke(app, ["campaigns", "holdout", "--json"]).output)["share_bp"] == 0
    )
    done = runner.invoke(app, ["campaigns", "holdout", "500"])
    assert done.exit_code == 0 and "5% of members (500 bp)" in done.output, done.output
    again = json.loads(runner.invoke(app, ["campaigns", "holdout", "--json"]).output)
    assert again["share_bp"] == 500 and again["updated_at"] is not None
    # and the report reads every live member on one side, this month the holdout's first
    time.sleep(1.1)  # times are stored to the second: read in the next one
    report = runner.invoke(app, ["campaigns", "holdout-report", "--months", "2", "--json"])
    assert report.exit_code == 0, report.output
    doc = json.loads(report.output)
    assert [m["phase"] for m in doc["months"]] == ["before", "started"]
    last = doc["months"][-1]
    held = runner.invoke(
        app, ["campaigns", "holdout-report", "--members", f"{last['period']}:held_out:members"]
    )
    assert len(held.output.split()) == last["held_out"]["people"]
    shown = runner.invoke(app, ["campaigns", "holdout-report"]).output
    assert "5% held out since" in shown and "since" in shown.splitlines()[-2]
    bad = runner.invoke(app, ["campaigns", "holdout-report", "--months", "30"])
    assert bad.exit_code == 2 and "months" in bad.output
    wrong = runner.invoke(app, ["campaigns", "holdout-report", "--members", "since:both:members"])
    assert wrong.exit_code == 2 and "side" in wrong.output
