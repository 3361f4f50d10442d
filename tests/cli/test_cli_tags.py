"""`siyu tags`: define a tag, set it on a member, show it, unset it; errors name the field."""

from __future__ import annotations

import json
from pathlib import Path

from tests.brandfiles import write, write_reference
from tests.cli.test_cli import _siyu


def test_define_set_show_and_unset_a_tag(tmp_path: Path) -> None:
    write_reference(tmp_path / "brand")
    member = {
        "member_ref": "M1",
        "brand_id": "B1",
        "registered_at": "2024-01-01T00:00:00",
        "channel": "pos",
        "card": "C1",
        "phone": "13800000001",
    }
    write(tmp_path / "brand" / "members.csv", [member])
    assert _siyu(tmp_path, "import", "brand", "--group", "acme").returncode == 0
    g = ("--group", "acme")
    made = _siyu(tmp_path, "tags", "define", "vip", "--name-zh", "贵宾", "--name-en", "VIP", *g)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["kind"] == "manual"
    bad = _siyu(tmp_path, "tags", "define", "Bad", "--name-zh", "x", "--name-en", "x", *g)
    assert bad.returncode == 2 and "slug" in bad.stdout + bad.stderr
    done = _siyu(tmp_path, "tags", "set", "1", "vip", "--value", "gold", *g)
    assert done.returncode == 0, done.stderr
    assert "vip enter" in done.stdout
    assert "vip none" in _siyu(tmp_path, "tags", "set", "1", "vip", "--value", "gold", *g).stdout
    shown = json.loads(_siyu(tmp_path, "tags", "show", "vip", *g).stdout)
    assert shown["members"] == 1 and shown["holders"][0]["set_by"] == "cli"
    listed = _siyu(tmp_path, "tags", "list", *g).stdout.splitlines()
    assert [json.loads(line)["slug"] for line in listed] == ["vip"]
    assert "vip leave" in _siyu(tmp_path, "tags", "unset", "1", "vip", *g).stdout
    assert "vip none" in _siyu(tmp_path, "tags", "unset", "1", "vip", *g).stdout
