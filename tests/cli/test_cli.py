"""The CLI's contract with people: clear errors and exit code 2 on bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.brandfiles import write_reference


def _siyu(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "SIYU_DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}",
        "COLUMNS": "200",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "siyu.cli", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )


def test_import_of_a_directory_reports_each_kind(tmp_path: Path) -> None:
    write_reference(tmp_path / "brand")
    done = _siyu(tmp_path, "import", "brand", "--group", "acme")
    assert done.returncode == 0, done.stderr
    assert "brands" in done.stdout and "OneID" in done.stdout


def test_unknown_kind_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "stuff.csv").write_text("a,b\n1,2\n")
    done = _siyu(tmp_path, "import", "stuff.csv")
    assert done.returncode == 2
    assert "kind: cannot tell the kind of stuff.csv" in done.stderr


def test_bad_language_setting_names_the_variable(tmp_path: Path) -> None:
    done = _siyu(tmp_path, "migrate", SIYU_LANG="fr")
    assert done.returncode == 2
    assert "SIYU_LANG='fr': must be 'zh' or 'en'" in done.stderr


def test_unmerge_of_an_unknown_merge_is_a_clear_error(tmp_path: Path) -> None:
    assert _siyu(tmp_path, "migrate").returncode == 0
    done = _siyu(tmp_path, "unmerge", "99", "--reason", "test")
    assert done.returncode == 2
    assert "no merge 99" in done.stderr


def test_machine_readable_output_is_never_wrapped(tmp_path: Path) -> None:
    # given a narrow terminal, which makes Rich wrap long lines
    done = _siyu(tmp_path, "generate", "--members", "300", "--out", "brand", COLUMNS="40")
    assert done.returncode == 0, done.stderr
    # then the JSON is still one parseable line
    import json

    report = json.loads(done.stdout)
    assert report["rows"]["orders.parquet"] > 0


def test_keys_are_created_listed_and_revoked(tmp_path: Path) -> None:
    created = _siyu(
        tmp_path, "keys", "create", "--role", "store", "--store", "S1", "--group", "acme"
    )
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("sy_")
    listed = _siyu(tmp_path, "keys", "list", "--group", "acme")
    assert "store" in listed.stdout and "S1" in listed.stdout and secret not in listed.stdout
    assert _siyu(tmp_path, "keys", "revoke", "1", "--group", "acme").returncode == 0
    assert "revoked" in _siyu(tmp_path, "keys", "list", "--group", "acme", SIYU_LANG="en").stdout
    bad = _siyu(tmp_path, "keys", "create", "--role", "store", "--group", "acme")
    assert bad.returncode == 2 and "a store key must name its stores" in bad.stderr
