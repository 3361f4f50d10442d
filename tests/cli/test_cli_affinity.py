"""`siyu loyalty affinity-rules` and `siyu loyalty affinity`: set the rules from a file, read
a member's score; a refused document exits 2 naming the field and stores nothing."""

from __future__ import annotations

import json
from pathlib import Path

from tests.brandfiles import write, write_reference
from tests.cli.test_cli import _siyu


def test_set_the_rules_and_explain_a_member(tmp_path: Path) -> None:
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
        "ordered_at": "2024-06-30T12:00:00",
        "total_fen": "20000",
        "paid_fen": "20000",
        "store_id": "S1",
    }
    write(tmp_path / "brand" / "members.csv", [member])
    write(tmp_path / "brand" / "orders.csv", [order])
    assert _siyu(tmp_path, "import", "brand", "--group", "acme").returncode == 0
    g = ("--group", "acme")
    # given the defaults (version 0), when a bad document is set, then exit 2 naming it
    shown = json.loads(_siyu(tmp_path, "loyalty", "affinity-rules", *g).stdout)
    assert shown["version"] == 0 and shown["rules"]["window_days"] == 365
    bad = _siyu(
        tmp_path, "loyalty", "affinity-rules", "--set", '{"coefficients": {"share": -2}}', *g
    )
    assert bad.returncode == 2 and "coefficients.share" in bad.stdout + bad.stderr
    # when good rules are set from a file: version 1
    rules = {"coefficients": {"orders": 10, "spend_per_100_yuan": 1}, "half_life_days": 10}
    (tmp_path / "affinity.json").write_text(json.dumps(rules), encoding="utf-8")
    done = _siyu(tmp_path, "loyalty", "affinity-rules", "--set", "affinity.json", *g)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"] == 1
    # then the member's score ten days after its order: (10 + 2 × 1) × 0.5
    out = _siyu(tmp_path, "loyalty", "affinity", "1", "--as-of", "2024-07-10T12:00:00", *g)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert found["score"] == 6 and found["version"] == 1 and found["band"] == "low"
    assert [(p["behaviour"], p["count"], p["decayed"]) for p in found["parts"]] == [
        ("orders", 1, 0.5),
        ("spend_per_100_yuan", 2, 1),
    ]
    # and an unknown member exits 2
    assert _siyu(tmp_path, "loyalty", "affinity", "999", *g).returncode == 2
