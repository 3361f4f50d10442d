"""The store's secret: generated once, with the store; never a second one beside an
existing store (issue #14: a guide key printed by `siyu keys create` on the demo's
database could not log in, because the CLI silently made a new key file next to it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from siyu.store.engine import make_engine

KEY_A = "ab" * 32
KEY_B = "cd" * 32


def _siyu(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if k not in ("SIYU_SECRET_KEY", "SIYU_SECRET_KEY_FILE")
    }
    environment.update(
        {"SIYU_DATABASE_URL": f"sqlite:///{tmp_path / 'demo' / 's.db'}", "COLUMNS": "200", **env}
    )
    return subprocess.run(
        [sys.executable, "-m", "siyu.cli", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )


def test_a_store_made_with_another_secret_gets_no_second_one_silently(tmp_path: Path) -> None:
    # given a store made with a secret from the environment (as the demo made its store
    # with the key file of the directory it ran in)
    made = _siyu(tmp_path, "keys", "create", "--role", "admin", SIYU_SECRET_KEY=KEY_A)
    assert made.returncode == 0, made.stderr
    # when a later command runs on that store without the secret
    done = _siyu(tmp_path, "keys", "create", "--role", "guide", "--guide", "G1")
    # then it refuses, naming the settings and where it looked, and prints no key
    assert done.returncode == 2, done.stdout
    message = " ".join(done.stderr.split())
    assert "already exists but its secret key was not found" in message
    assert "SIYU_SECRET_KEY" in message and "SIYU_SECRET_KEY_FILE" in message
    assert str(tmp_path / "demo" / "s.key") in message
    assert "sy_" not in done.stdout
    # and no second secret was written beside the store
    assert not (tmp_path / "demo" / "s.key").exists()


def test_a_secret_that_is_not_the_stores_is_refused(tmp_path: Path) -> None:
    # given a store made with secret A
    assert _siyu(tmp_path, "migrate", SIYU_SECRET_KEY=KEY_A).returncode == 0
    # when a command runs with secret B, from the environment or from a key file
    wrong_env = _siyu(tmp_path, "keys", "list", SIYU_SECRET_KEY=KEY_B)
    (tmp_path / "other.key").write_text(KEY_B + "\n")
    wrong_file = _siyu(tmp_path, "keys", "list", SIYU_SECRET_KEY_FILE=str(tmp_path / "other.key"))
    # then each is refused, naming where the wrong secret came from
    for done, origin in ((wrong_env, "SIYU_SECRET_KEY"), (wrong_file, str(tmp_path / "other.key"))):
        assert done.returncode == 2
        message = " ".join(done.stderr.split())
        assert f"the secret key from {origin} is not the one the store" in message
    # and the right one still works
    assert _siyu(tmp_path, "keys", "list", SIYU_SECRET_KEY=KEY_A).returncode == 0


def test_a_new_store_gets_its_secret_once_and_keeps_its_fingerprint(tmp_path: Path) -> None:
    from siyu.config import secret_fingerprint

    # given no store and no key file
    # when the first command makes the store
    first = _siyu(tmp_path, "keys", "create", "--role", "admin")
    assert first.returncode == 0, first.stderr
    # then a key file was generated beside it (mode 0600), and the store knows its print
    key_file = tmp_path / "demo" / "s.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    engine = make_engine(f"sqlite:///{tmp_path / 'demo' / 's.db'}")
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT value FROM store_meta")).scalar_one()
    engine.dispose()
    assert kept == secret_fingerprint(bytes.fromhex(key_file.read_text().strip()))
    # and later commands use that key, not a new one
    again = _siyu(tmp_path, "keys", "list")
    assert again.returncode == 0, again.stderr
    assert "admin" in again.stdout
