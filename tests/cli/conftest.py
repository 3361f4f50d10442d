"""A new store for a command to run on: a migrated SQLite file in the test's folder with
the brand group g1, the environment the commands read (SIYU_*) pointing at it, and the
console wide enough that tables are not wrapped; and the guides' hand-made journey
(`tests.guides.journey`) on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from tests.conftest import Store
from tests.guides.journey import Journey, make_journey

from siyu.cli import common
from siyu.importer.service import ensure_group
from siyu.privacy import Vault
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade

GROUP = "g1"
SECRET = bytes(range(32))


@pytest.fixture
def cli_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    # the CLI's console took its width from COLUMNS when it was imported (80 on CI)
    monkeypatch.setattr(common.out, "width", 200)
    url = f"sqlite:///{tmp_path / 'siyu.db'}"
    for name, value in {
        "SIYU_DATABASE_URL": url,
        "SIYU_GROUP": GROUP,
        "SIYU_SECRET_KEY": SECRET.hex(),
        "SIYU_LANG": "en",
    }.items():
        monkeypatch.setenv(name, value)
    engine = make_engine(url)
    upgrade(engine)
    ensure_group(engine, GROUP)
    yield engine
    engine.dispose()


@pytest.fixture
def journey(cli_store: Engine, tmp_path: Path) -> Journey:
    return make_journey(Store(cli_store, GROUP, "sqlite"), Vault(SECRET), tmp_path)
