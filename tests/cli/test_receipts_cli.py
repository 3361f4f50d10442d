"""`siyu receipts` on a real SQLite store: a bad rule is refused naming the field and
stores nothing; rules are put and listed; the queue shows the pending receipts the
service lists; accept gives the reward once, reject needs a reason; settle gives what a
stopped process left out, once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from tests.cli.conftest import GROUP
from tests.receipts.helpers import NOW, brand, member, receipt, rewards_given, rule_doc
from typer.testing import CliRunner, Result

from siyu.cli import app
from siyu.identity.ingest import IdentifierEncoder
from siyu.privacy import Vault
from siyu.receipts import records
from siyu.receipts.upload import upload


@pytest.fixture
def engine(cli_store: Engine) -> Engine:
    brand(cli_store, GROUP)
    return cli_store


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["receipts", *args])


def ok(*args: str) -> Any:
    done = run(*args, "--json")
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def put(tmp_path: Path, doc: dict[str, Any]) -> str:
    (tmp_path / "rule.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return str(tmp_path / "rule.json")


def _balance(engine: Engine, member_id: int) -> int:
    with engine.connect() as conn:
        found = conn.execute(
            text("""SELECT balance FROM ledger_accounts WHERE group_id = :g AND member_id = :m
                    AND owner = 'member' AND asset = 'points'"""),
            {"g": GROUP, "m": member_id},
        ).scalar()
    return int(found or 0)


def test_a_bad_rule_is_refused_naming_the_field(engine: Engine, tmp_path: Path) -> None:
    low = rule_doc(tiers=[{"min_paid_fen": 0, "points": 10}])
    refused = run("rules", "put", put(tmp_path, low))
    assert refused.exit_code == 2 and "tiers.0.min_paid_fen" in refused.output
    nocoupon = rule_doc(tiers=[{"min_paid_fen": 100, "coupon": "NOPE"}])
    missing = run("rules", "put", put(tmp_path, nocoupon))
    assert missing.exit_code == 2 and "tiers.0.coupon: no coupon template 'NOPE'" in missing.output
    assert ok("rules", "list") == {"rules": []}
    nothing = run("accept", "999")
    assert nothing.exit_code == 2 and "receipt_id: no receipt 999" in nothing.output


def test_rules_queue_accept_reject_and_settle(engine: Engine, tmp_path: Path) -> None:
    assert "BASKET: version 1 stored" in run("rules", "put", put(tmp_path, rule_doc())).stdout
    stored = ok("rules", "put", put(tmp_path, rule_doc()))
    assert (stored["code"], stored["version"]) == ("BASKET", 2)
    listed = ok("rules", "list")["rules"]
    assert [(r["code"], r["version"]) for r in listed] == [("BASKET", 2)]
    table = run("rules", "list").stdout
    assert "¥100.00+: 100 points" in table and "coupon SPRING20" in table

    # receipts bought away from the member's home store wait for review
    encoder = IdentifierEncoder(Vault(bytes(range(32))))
    m = member(engine, encoder, GROUP, "u-1", home="S1")
    ids = [
        upload(engine, GROUP, "BASKET", receipt(m, f"A-{n}", 12000, "S2"), f"k{n}", at=NOW)
        for n in range(3)
    ]
    home = upload(engine, GROUP, "BASKET", receipt(m, "H-1", 12000, "S1"), "kh", at=NOW)
    assert home.status == "accepted" and all(r.status == "pending" for r in ids)

    queue = ok("queue")["receipts"]
    with engine.connect() as conn:
        pending = records.listed(conn, GROUP, status="pending")
    assert [r["receipt_id"] for r in queue] == [r.receipt_id for r in pending]
    assert len(queue) == 3 and {r["store_id"] for r in queue} == {"S2"}
    assert ok("queue", "--store", "S1") == {"receipts": []}
    shown = run("queue").stdout
    assert queue[0]["receipt_no"] in shown and "120.00" in shown and "oss://" not in shown

    first, second, third = (r.receipt_id for r in ids)
    before = _balance(engine, m)
    accepted = ok("accept", str(first))
    assert (accepted["status"], accepted["reward"]["points"]) == ("accepted", 100)
    assert _balance(engine, m) == before + 100
    again = run("accept", str(first))
    assert again.exit_code == 0 and "(already)" in again.stdout
    assert _balance(engine, m) == before + 100

    blank = run("reject", str(second), "--reason", "  ")
    assert blank.exit_code == 2 and "reason: required to reject" in blank.output
    no_reason = run("reject", str(second))
    assert no_reason.exit_code == 2 and "--reason" in no_reason.output
    rejected = run("reject", str(second), "--reason", "photo unreadable")
    assert rejected.exit_code == 0 and f"receipt {second}: rejected" in rejected.stdout
    other = run("accept", str(second))
    assert other.exit_code == 2 and "a decision is made once" in other.output

    # a process stopped after accepting the third, before its reward: settle gives it once
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE receipts SET status = 'accepted' WHERE receipt_id = :r"), {"r": third}
        )
    given = rewards_given(engine, GROUP)
    assert ok("settle") == {"settled": 1, "receipt_ids": [third]}
    assert rewards_given(engine, GROUP)["postings"] == given["postings"] + 1
    assert _balance(engine, m) == before + 200
    assert "settled 0 receipts" in run("settle").stdout
    assert ok("queue") == {"receipts": []}
