"""`siyu lotteries` on a real SQLite store: a bad pool is refused naming the field and
stores nothing; a pool is defined, listed and shown without its seed; the seed is revealed
only once the pool has ended; the audit agrees with the service and fails (exit 1) on a
tampered log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from tests.cli.conftest import GROUP
from tests.coupons.helpers import new_member
from tests.lotteries.helpers import DURING, stock_prizes
from typer.testing import CliRunner, Result

from siyu.cli import app
from siyu.identity.ingest import IdentifierEncoder
from siyu.lotteries import pools
from siyu.lotteries.audit import verify
from siyu.lotteries.draw import DrawAsk, draw
from siyu.privacy import Vault

POOL: dict[str, Any] = {
    "code": "SPRING",
    "name_zh": "春季抽奖",
    "name_en": "Spring draw",
    "starts_at": "2026-03-01T10:00:00Z",
    "ends_at": "2026-03-31T00:00:00Z",
    "entry": "free",
    "per_member": 3,
    "prizes": [
        {
            "code": "A-BAG",
            "name_zh": "帆布袋",
            "name_en": "Tote bag",
            "sku": "BAG",
            "location_id": "S1",
            "odds_ppm": 300_000,
            "units": 10,
        },
        {
            "code": "B-SAMPLE",
            "name_zh": "试用装",
            "name_en": "Sample",
            "sku": "SAMPLE",
            "location_id": "S1",
            "odds_ppm": 600_000,
            "units": 50,
        },
    ],
}


@pytest.fixture
def engine(cli_store: Engine) -> Engine:
    stock_prizes(cli_store, GROUP, {"BAG": 10, "SAMPLE": 50})
    return cli_store


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["lotteries", *args])


def ok(*args: str) -> Any:
    done = run(*args, "--json")
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def put(tmp_path: Path, doc: dict[str, Any], name: str = "pool.json") -> str:
    (tmp_path / name).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return str(tmp_path / name)


def test_a_bad_pool_is_refused_naming_the_field(engine: Engine, tmp_path: Path) -> None:
    odds = [{**POOL["prizes"][0], "odds_ppm": 2_000_000}]
    bad = run("define", put(tmp_path, {**POOL, "prizes": odds}))
    assert bad.exit_code == 2 and "prizes.0.odds_ppm" in bad.output
    nowhere = [{**POOL["prizes"][0], "location_id": "S404"}]
    missing = run("define", put(tmp_path, {**POOL, "prizes": nowhere}))
    assert missing.exit_code == 2 and "prizes.A-BAG.location_id" in missing.output
    unreadable = run("define", str(tmp_path / "none.json"))
    assert unreadable.exit_code == 2 and "FILE: cannot read" in unreadable.output
    assert ok("list") == {"pools": []}
    unknown = run("show", "NOPE")
    assert unknown.exit_code == 2 and "pool: no prize pool 'NOPE'" in unknown.output


def test_define_show_reveal_and_audit(engine: Engine, tmp_path: Path) -> None:
    defined = ok("define", put(tmp_path, POOL))
    assert defined["seed"] is None and len(defined["seed_sha256"]) == 64
    # the same document again is a replay; another under the same code is refused
    assert ok("define", put(tmp_path, POOL))["seed_sha256"] == defined["seed_sha256"]
    changed = run("define", put(tmp_path, {**POOL, "per_member": 5}))
    assert changed.exit_code == 2 and "code: pool SPRING is defined" in changed.output

    encoder = IdentifierEncoder(Vault(bytes(range(32))))
    members = [new_member(engine, encoder, GROUP, f"u-{i}") for i in range(4)]
    for m in members:
        for k in range(3):
            draw(engine, GROUP, "SPRING", DrawAsk(m, f"d-{m}-{k}"), DURING)
    with engine.connect() as conn:
        pool = pools.load(conn, GROUP, "SPRING")
        counts = pools.draw_counts(conn, GROUP, "SPRING")
    seed = pool.seed.hex()

    shown = ok("show", "SPRING")
    assert shown["seed"] is None and shown["draws"] == counts
    assert {p["code"]: p["awarded"] for p in shown["prizes"]} == {
        p.prize_code: p.awarded for p in pool.prizes
    }
    assert sum(p["awarded"] for p in shown["prizes"]) == counts.get("won", 0)
    table = run("show", "SPRING").stdout
    assert "Tote bag" in table and "30.00%" in table and "(not revealed)" in table
    assert seed not in table and seed not in run("list").stdout
    listed = ok("list")["pools"]
    assert [p["code"] for p in listed] == ["SPRING"] and listed[0]["seed"] is None

    # a pool still running keeps its seed
    later = {**POOL, "code": "SUMMER", "ends_at": "2099-01-01T00:00:00Z"}
    assert run("define", put(tmp_path, later, "summer.json")).exit_code == 0
    early = run("reveal", "SUMMER")
    assert early.exit_code == 2 and "code: pool SUMMER runs until" in early.output

    revealed = ok("reveal", "SPRING")
    assert revealed["seed"] == seed and revealed["revealed_at"] is not None
    audit = ok("audit", "SPRING")
    service = verify(engine, GROUP, "SPRING")
    assert (audit["ok"], audit["draws"], audit["won"]) == (True, service.draws, service.won)
    assert audit["draws"] == 12
    assert "ok" in run("audit", "SPRING").stdout

    # a tampered log: the audit names the draw and exits 1
    with engine.begin() as conn:
        conn.execute(
            text(
                """UPDATE prize_draws SET roll = roll + 1
                   WHERE draw_id = (SELECT MIN(draw_id) FROM prize_draws)"""
            )
        )
    tampered = run("audit", "SPRING", "--json")
    assert tampered.exit_code == 1
    found = json.loads(tampered.stdout)
    assert found["ok"] is False and "its number is not the seed's" in found["problems"][0]


def test_a_campaign_pool_names_its_campaign(engine: Engine, tmp_path: Path) -> None:
    doc = {**POOL, "code": "LUCK", "entry": "campaign"}
    unnamed = run("define", put(tmp_path, doc))
    assert unnamed.exit_code == 2 and "campaign: required" in unnamed.output
    defined = ok("define", put(tmp_path, {**doc, "campaign": "WAKE"}))
    assert (defined["entry"], defined["campaign"]) == ("campaign", "WAKE")
    assert "granted by campaign WAKE" in run("list").stdout
    assert "entry granted by campaign WAKE" in run("show", "LUCK").stdout
