"""Configuration comes from SIYU_* only, with errors naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from siyu.config import Settings
from siyu.errors import ConfigError


def test_defaults_are_the_embedded_store_and_its_key_file(tmp_path: Path) -> None:
    from siyu.store.engine import make_engine
    from siyu.store.secret import bind_secret

    env = {"SIYU_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"}
    # reading the settings never makes a key: only a new store gets one (bind_secret)
    first = Settings.from_env(env)
    assert first.lang == "zh" and first.group_id == "default"
    assert first.secret_key == b"" and first.secret_key_file == str(tmp_path / "a.key")
    assert not (tmp_path / "a.key").exists()
    engine = make_engine(env["SIYU_DATABASE_URL"])
    bound = bind_secret(engine, first)
    engine.dispose()
    assert (tmp_path / "a.key").stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "a.db").exists()  # binding made no store
    assert Settings.from_env(env).secret_key == bound.secret_key  # kept, not regenerated


def test_postgres_needs_an_explicit_key() -> None:
    with pytest.raises(ConfigError, match="SIYU_SECRET_KEY is required"):
        Settings.from_env({"SIYU_DATABASE_URL": "postgresql://x@localhost/db"})
    ok = Settings.from_env(
        {
            "SIYU_DATABASE_URL": "postgresql://x@localhost/db",
            "SIYU_SECRET_KEY": "ab" * 32,
            "SIYU_LANG": "EN",
        }
    )
    assert ok.secret_key == bytes([0xAB] * 32) and ok.lang == "en"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SIYU_LANG": "fr"}, "SIYU_LANG='fr'"),
        ({"SIYU_SECRET_KEY": "zz"}, "SIYU_SECRET_KEY: must be 64 hexadecimal"),
        ({"SIYU_SECRET_KEY": "ab" * 8}, "got 8"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_unsupported_database_is_named() -> None:
    from siyu.store.engine import normalise_url

    with pytest.raises(ConfigError, match="backend 'mysql' is not supported"):
        normalise_url("mysql://root@localhost/x")
    assert normalise_url("postgresql://u@h/d").startswith("postgresql+psycopg://")
