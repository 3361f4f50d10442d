"""`siyu guides commission`: set the rules from a file (a bad one exits 2 naming the field
and stores nothing), accrue and release a month twice (nothing posted twice), pay, and read
the statement as JSON and as a table."""

from __future__ import annotations

import json
from pathlib import Path

from tests.brandfiles import write, write_reference
from tests.cli.test_cli import _siyu


def test_a_month_of_commission_from_the_cli(tmp_path: Path) -> None:
    write_reference(tmp_path / "brand")
    member = {
        "member_ref": "M1",
        "brand_id": "B1",
        "registered_at": "2024-01-01T00:00:00",
        "channel": "pos",
        "card": "C1",
    }
    order = {
        "order_id": "O1",
        "brand_id": "B1",
        "channel": "pos",
        "buyer_type": "card",
        "buyer_value": "C1",
        "ordered_at": "2024-06-03T12:00:00",
        "total_fen": "20000",
        "paid_fen": "20000",
        "store_id": "S1",
        "guide_id": "G1",
    }
    write(tmp_path / "brand" / "members.csv", [member])
    write(tmp_path / "brand" / "orders.csv", [order])
    assert _siyu(tmp_path, "import", "brand", "--group", "acme").returncode == 0
    g = ("--group", "acme")
    cm = ("guides", "commission")
    (tmp_path / "bad.json").write_text('{"rules": [{"name": "x"}]}', encoding="utf-8")
    bad = _siyu(tmp_path, *cm, "rules", "--set", "bad.json", *g)
    assert bad.returncode == 2 and "rules.0" in bad.stdout + bad.stderr
    assert json.loads(_siyu(tmp_path, *cm, "rules", *g).stdout)["version"] == 0
    (tmp_path / "rules.json").write_text(
        json.dumps({"default_rate_bp": 300, "freeze_days": 14}), encoding="utf-8"
    )
    assert (
        json.loads(_siyu(tmp_path, *cm, "rules", "--set", "rules.json", *g).stdout)["version"] == 1
    )
    month = ("--since", "2024-06-01", "--until", "2024-07-01")
    first = json.loads(_siyu(tmp_path, *cm, "accrue", *month, *g).stdout)
    again = json.loads(_siyu(tmp_path, *cm, "accrue", *month, *g).stdout)
    assert (first["accrued"], first["accrued_fen"]) == (1, 600)
    assert (again["accrued"], again["already"]) == (0, 1)
    early = json.loads(_siyu(tmp_path, *cm, "release", "--at", "2024-06-17T11:00:00", *g).stdout)
    assert early["released"] == 0
    done = json.loads(_siyu(tmp_path, *cm, "release", "--at", "2024-06-30", *g).stdout)
    # one order released, by one summary posting for its guide
    assert done == {"released": 1, "released_fen": 600, "postings": 1}
    shown = _siyu(tmp_path, *cm, "statement", "--month", "2024-06", "--guide", "G1", "--json", *g)
    found = json.loads(shown.stdout)
    assert found["totals"]["commission_fen"] == 600
    assert sum(x["commission_fen"] for x in found["lines"]) == 600
    assert found["totals"]["closing"]["cm_payable"] == 600
    paid = json.loads(_siyu(tmp_path, *cm, "pay", "G1", "--month", "2024-06", *g).stdout)
    assert paid["paid_fen"] == 600
    table = _siyu(tmp_path, *cm, "statement", "--month", "2024-06", "--store", "S1", *g)
    assert table.returncode == 0, table.stderr
    assert "G1" in table.stdout and "6.00" in table.stdout
    assert _siyu(tmp_path, *cm, "statement", "--month", "June", *g).returncode == 2
