"""What the CLI prints to people: in the language SIYU_LANG names, as labels and tables,
never as codes or Python reprs."""

from __future__ import annotations

from pathlib import Path

from tests.brandfiles import write, write_reference
from tests.cli.test_cli import _siyu


def _clashing_brand(tmp_path: Path) -> None:
    """A till member whose card and phone two different unionids claim: OneID refuses to
    give one member two unionids, and records the conflict."""
    brand = tmp_path / "brand"
    write_reference(brand)
    write(
        brand / "members.csv",
        [
            {
                "member_ref": "W",
                "brand_id": "B1",
                "registered_at": "2024-01-01T00:00:00",
                "channel": "pos",
                "card": "C-W",
                "phone": "13800000001",
            }
        ],
    )
    write(
        brand / "identities.csv",
        [
            {
                "type": "phone",
                "value": "13800000001",
                "channel": "miniprogram",
                "observed_at": "2024-02-01T00:00:00",
                "verified": "true",
                "linked_type": "unionid",
                "linked_value": "u-h",
            },
            {
                "type": "card",
                "value": "C-W",
                "brand_id": "B1",
                "channel": "miniprogram",
                "observed_at": "2024-02-02T00:00:00",
                "verified": "true",
                "linked_type": "unionid",
                "linked_value": "u-w",
            },
        ],
    )
    done = _siyu(tmp_path, "import", "brand", "--group", "acme")
    assert done.returncode == 0, done.stderr
    done = _siyu(tmp_path, "resolve", "--group", "acme", "--json")
    assert done.returncode == 0, done.stderr


def test_conflicts_follow_the_language_setting(tmp_path: Path) -> None:
    # given a brand where OneID refused to merge two unionids into one member
    _clashing_brand(tmp_path)
    # when an operator lists the conflicts in Chinese
    zh = _siyu(tmp_path, "conflicts", "--group", "acme", SIYU_LANG="zh")
    assert zh.returncode == 0, zh.stderr
    # then the kind, the identity types and the reason are Chinese, not codes or English
    assert "身份冲突" in zh.stdout and "微信 UnionID" in zh.stdout, zh.stdout
    assert "会员" in zh.stdout and "已拒绝" in zh.stdout
    for word in ("exclusive_clash", "unionid", "refused", "member "):
        assert word not in zh.stdout, (word, zh.stdout)
    # and the phone is never printed in the clear
    assert "13800000001" not in zh.stdout
    # when the same list is asked in English
    en = _siyu(tmp_path, "conflicts", "--group", "acme", SIYU_LANG="en")
    assert en.returncode == 0, en.stderr
    # then it reads in English, with labels, not codes
    assert "Identifier clash" in en.stdout and "WeChat UnionID" in en.stdout, en.stdout
    assert "exclusive_clash" not in en.stdout and "身份冲突" not in en.stdout
    # and --json keeps the codes, for scripts
    raw = _siyu(tmp_path, "conflicts", "--group", "acme", "--json", SIYU_LANG="zh")
    assert '"kind": "exclusive_clash"' in raw.stdout


def test_keys_list_prints_a_table(tmp_path: Path) -> None:
    # given a store key for two stores, a revoked guide key and an admin key that never
    # expires
    for args in (
        ("--role", "store", "--store", "S1", "--store", "S2", "--name", "till"),
        ("--role", "guide", "--guide", "G1"),
        ("--role", "admin", "--expires-in-days", "0"),
    ):
        done = _siyu(tmp_path, "keys", "create", *args, "--group", "acme")
        assert done.returncode == 0, done.stderr
    assert _siyu(tmp_path, "keys", "revoke", "2", "--group", "acme").returncode == 0
    # when the keys are listed
    listed = _siyu(tmp_path, "keys", "list", "--group", "acme", SIYU_LANG="en")
    assert listed.returncode == 0, listed.stderr
    out = listed.stdout
    # then they are a table with a header, one row per key, not Python reprs
    assert "{" not in out and "[" not in out and "'" not in out, out
    lines = out.splitlines()
    header = next(line for line in lines if "Role" in line)
    assert all(word in header for word in ("Key", "Role", "Name", "Scope", "State")), header
    row = next(line for line in lines if "till" in line)
    assert "S1, S2" in row and "store" in row
    guide = next(line for line in lines if "guide" in line.split())
    assert "G1" in guide and "revoked" in guide
    assert "never expires" in next(line for line in lines if "admin" in line.split())
    # and in Chinese the headers and states are Chinese
    zh = _siyu(tmp_path, "keys", "list", "--group", "acme", SIYU_LANG="zh").stdout
    assert "角色" in zh and "已吊销" in zh and "永不过期" in zh, zh
