"""What `siyu import` says about a member master: what it wrote beside the member rows,
and the card changes `siyu conflicts` lists, in the language SIYU_LANG names."""

from __future__ import annotations

from pathlib import Path

from tests.brandfiles import write, write_reference
from tests.cli.test_cli import _siyu


def _member(ref: str, card: str, phone: str) -> dict[str, str]:
    return {
        "member_ref": ref,
        "brand_id": "B1",
        "registered_at": "2024-01-01T00:00:00",
        "channel": "pos",
        "card": card,
        "phone": phone,
    }


def test_import_reports_merged_records_and_moved_members(tmp_path: Path) -> None:
    # given a member master imported once
    write_reference(tmp_path / "brand")
    write(tmp_path / "brand" / "members.csv", [_member("M1", "C1", "13800000001")])
    assert _siyu(tmp_path, "import", "brand", "--group", "acme").returncode == 0
    # when it comes again with M1 on a new card and a duplicate record of M1
    write(
        tmp_path / "members.csv",
        [_member("M1", "C2", "13800000001"), _member("M9", "C2", "13800000001")],
    )
    done = _siyu(tmp_path, "import", "members.csv", "--group", "acme", SIYU_LANG="en")
    # then the report says what was written beside the one new member row
    assert done.returncode == 0, done.stderr
    assert "members: read 2, accepted 2, rejected 0, new 1" in done.stdout, done.stdout
    assert (
        "new identities 1, new links 2, merged into existing members 1, moved to a new card 1"
        in done.stdout
    ), done.stdout
    assert "OneID: 1 members, 0 merges, 0 conflicts refused" in done.stdout, done.stdout
    # and the card change is listed with the conflicts, in Chinese when asked
    zh = _siyu(tmp_path, "conflicts", "--group", "acme", SIYU_LANG="zh")
    assert zh.returncode == 0, zh.stderr
    assert "换卡（已接受）" in zh.stdout and "card_change" not in zh.stdout, zh.stdout
