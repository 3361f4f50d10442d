"""`siyu segments`: define from a rule file, preview and evaluate on the landed warehouse,
show sizes and versions, export the members; errors name the field and exit 2."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.brandfiles import write, write_reference
from tests.cli.test_cli import _siyu

G = ("--group", "acme")


def _brand(tmp_path: Path) -> None:
    """Three members with a card each; M1 bought three times, M2 once, M3 never."""
    write_reference(tmp_path / "brand")
    members = [
        {
            "member_ref": f"M{i}",
            "brand_id": "B1",
            "registered_at": "2024-01-01T00:00:00",
            "channel": "pos",
            "card": f"C{i}",
            "phone": f"1380000000{i}",
        }
        for i in (1, 2, 3)
    ]
    orders = [
        {
            "order_id": f"O{m}-{k}",
            "brand_id": "B1",
            "channel": "pos",
            "buyer_type": "card",
            "buyer_value": f"C{m}",
            "store_id": "S1",
            "ordered_at": f"2024-0{k + 2}-01T10:00:00",
            "total_fen": "1000",
            "paid_fen": "1000",
        }
        for m, n in ((1, 3), (2, 1))
        for k in range(n)
    ]
    write(tmp_path / "brand" / "members.csv", members)
    write(tmp_path / "brand" / "orders.csv", orders)
    assert _siyu(tmp_path, "import", "brand", *G).returncode == 0
    landed = _siyu(tmp_path, "warehouse", "land", *G)
    assert landed.returncode == 0, landed.stderr


def test_define_preview_evaluate_show_and_export(tmp_path: Path) -> None:
    _brand(tmp_path)
    rule = {"version": 1, "rule": {"orders": {"count": {"gte": 2}}}}
    (tmp_path / "regulars.json").write_text(json.dumps(rule), encoding="utf-8")
    names = ("--name-zh", "常客", "--name-en", "Regulars")
    made = _siyu(tmp_path, "segments", "define", "regulars", "--rule", "regulars.json", *names, *G)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["version"] == 1
    preview = _siyu(tmp_path, "segments", "preview", "--rule", "regulars.json", *G)
    assert preview.returncode == 0, preview.stderr
    assert json.loads(preview.stdout)["size"] == 1
    done = _siyu(tmp_path, "segments", "evaluate", *G)
    assert done.returncode == 0, done.stderr
    (evaluation,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert (evaluation["slug"], evaluation["size"], evaluation["entered"]) == ("regulars", 1, 1)
    anyone = json.dumps({"version": 1, "rule": {"orders": {"count": {"gte": 1}}}})
    changed = _siyu(tmp_path, "segments", "update", "regulars", "--rule", anyone, *G)
    assert json.loads(changed.stdout)["version"] == 2
    again = _siyu(tmp_path, "segments", "evaluate", "regulars", *G)
    assert [json.loads(line)["entered"] for line in again.stdout.splitlines()] == [1]
    shown = json.loads(_siyu(tmp_path, "segments", "show", "regulars", *G).stdout)
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    assert [(d["size"], d["entered"]) for d in shown["days"]] == [(2, 2)]
    exported = _siyu(tmp_path, "segments", "export", "regulars", "--out", "r.csv", *G)
    assert exported.returncode == 0, exported.stderr
    with (tmp_path / "r.csv").open(encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    assert all("*" in r["phone"] for r in rows)  # the analyst's masks
    # a real-time pass: no real-time segment yet, then one that finds nobody new
    assert _siyu(tmp_path, "segments", "realtime", *G).stdout == ""
    _siyu(tmp_path, "segments", "update", "regulars", "--refresh", "realtime", *G)
    passed = _siyu(tmp_path, "segments", "realtime", *G)
    assert passed.returncode == 0, passed.stderr
    assert json.loads(passed.stdout)["slug"] == "regulars"


def test_errors_name_the_field_and_exit_2(tmp_path: Path) -> None:
    _brand(tmp_path)
    names = ("--name-zh", "x", "--name-en", "x")
    not_json = _siyu(tmp_path, "segments", "define", "s", "--rule", "{nope", *names, *G)
    assert not_json.returncode == 2 and "rule" in not_json.stderr
    bad = json.dumps({"version": 1, "rule": {"orders": {"within_days": 0}}})
    refused = _siyu(tmp_path, "segments", "define", "s", "--rule", bad, *names, *G)
    assert refused.returncode == 2 and "rule.orders.within_days" in refused.stderr
    missing = _siyu(tmp_path, "segments", "evaluate", "nope", *G)
    assert missing.returncode == 2 and "nope" in missing.stderr
    no_wh = _siyu(tmp_path, "segments", "preview", "--rule", bad, "--warehouse", "none.duckdb", *G)
    assert no_wh.returncode == 2
