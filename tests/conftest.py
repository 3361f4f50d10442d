"""Shared fixtures: a store on SQLite and on PostgreSQL, a vault, and the CI skip rule.

Every test that takes `store` runs once per dialect. PostgreSQL is the server named by
SIYU_TEST_PG_URL (default: the local one). Without it a test is skipped with the reason,
except under CI=true, where a missing PostgreSQL fails the run, and so does any skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from siyu.identity.ingest import IdentifierEncoder
from siyu.importer.service import ensure_group
from siyu.privacy import Vault
from siyu.store.engine import make_engine
from siyu.store.migrate import upgrade

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_ADMIN_URL = os.environ.get(
    "SIYU_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str:
    """What a git command in the project root prints ("" when git is missing or fails)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False
        )
    except OSError:
        return ""
    return done.stdout.strip()


def _shared_data() -> Path:
    """The read-only datasets at ../shared/data from the project root. A clone made
    elsewhere (`git clone . /tmp/x/siyu`) finds them beside the repository it was cloned
    from, a git worktree beside its main checkout; SIYU_SHARED_DATA overrides all."""
    if os.environ.get("SIYU_SHARED_DATA"):
        return Path(os.environ["SIYU_SHARED_DATA"])
    beside = ROOT.parent / "shared" / "data"
    if beside.is_dir():
        return beside
    origin = _git("config", "--get", "remote.origin.url")
    if origin and Path(origin).is_dir():
        return Path(origin).resolve().parent / "shared" / "data"
    # a git worktree (`git worktree add`) has no origin: its main checkout's .git is the
    # common directory, and the data sit beside that checkout
    common = _git("rev-parse", "--path-format=absolute", "--git-common-dir")
    if common and (Path(common).parent.parent / "shared" / "data").is_dir():
        return Path(common).parent.parent / "shared" / "data"
    return beside


SHARED_DATA = _shared_data()


@dataclass
class Store:
    engine: Engine
    group_id: str
    dialect: str

    def count(self, table: str) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    text(f"SELECT COUNT(*) FROM {table} WHERE group_id = :g"), {"g": self.group_id}
                ).scalar_one()
            )


@pytest.fixture(scope="session")
def vault() -> Vault:
    return Vault(bytes(range(32)))


@pytest.fixture
def encoder(vault: Vault) -> IdentifierEncoder:
    return IdentifierEncoder(vault)


@pytest.fixture(scope="session")
def pg_engine() -> Iterator[Engine]:
    """A throw-away PostgreSQL database for the whole session, migrated once."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"siyu_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        message = f"PostgreSQL at {PG_ADMIN_URL.split('@')[-1]} is not reachable: {exc}"
        if IN_CI:
            pytest.fail(f"CI=true requires PostgreSQL: {message}")
        pytest.skip(message)
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per test process. Running every migration takes
    ~0.3 s and hundreds of tests want a fresh store; a copy of this file takes ~5 ms and is
    byte for byte what the migrations write (tests/store checks the migrations themselves)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "siyu.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    # closing the last connection checkpoints the WAL into the file and removes it
    assert not path.with_name("siyu.db-wal").exists(), "the template's WAL was not merged"
    return path


def migrated_sqlite(template: Path, path: Path) -> Engine:
    """An engine on a fresh copy of the migrated template at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, path)
    return make_engine(f"sqlite:///{path}")


@cache
def _migrated_image() -> bytes:
    engine = make_engine("sqlite://")
    upgrade(engine)
    with engine.connect() as conn:
        image = conn.connection.driver_connection.serialize()  # type: ignore[union-attr]
    engine.dispose()
    return bytes(image)


def memory_store() -> Engine:
    """An in-memory SQLite store (one connection) at the head migration, for the state
    machines that want a fresh store per example: the migrated image is made once per
    process and loaded into each new database (SQLite's deserialize), not migrated again."""
    engine = make_engine("sqlite://")
    with engine.connect() as conn:
        conn.connection.driver_connection.deserialize(_migrated_image())  # type: ignore[union-attr]
    return engine


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A migrated store with a fresh brand group, on each dialect."""
    group_id = f"g-{uuid.uuid4().hex[:8]}"
    if request.param == "sqlite":
        engine = migrated_sqlite(request.getfixturevalue("sqlite_template"), tmp_path / "siyu.db")
        ensure_group(engine, group_id)
        yield Store(engine, group_id, "sqlite")
        engine.dispose()
    else:
        engine = request.getfixturevalue("pg_engine")
        ensure_group(engine, group_id)
        yield Store(engine, group_id, "postgresql")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under CI no skip goes unnoticed: a skipped test fails the run (Ibis's rule)."""
    if not IN_CI:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped:
        reporter.write_line(f"CI=true: {skipped} test(s) skipped; every test must run in CI")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


CONSOLE = ROOT / "tests" / "console"
DEMO = ROOT / "tests" / "demo"
# modules whose module-scoped fixture runs the generator or the whole demo (20-30 s each)
DEMO_MODULES = (ROOT / "tests" / "analytics" / "test_demo_lifecycle.py",)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Costly session and module fixtures are built once per xdist worker that runs a test
    needing them: the console's demo brand (a 2,000-person demo and a live server), the
    local Spark session (a JVM), tests/demo's demo and each demo module's generated brand.
    Spread over both workers, each was built twice. With `--dist loadgroup` (the Makefile's
    PYTEST_ARGS) the tests needing one of them form a group that runs on one worker, which
    builds it once; the other worker takes the rest meanwhile."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if item.get_closest_marker("spark") is not None or "spark" in names:
            group = "spark"
        elif "brand" in names and CONSOLE in item.path.parents:
            group = "console-demo"
        elif "demo" in names and DEMO in item.path.parents:
            group = "demo"
        elif DEMO in item.path.parents or item.path in DEMO_MODULES:
            group = item.path.name
        else:
            continue
        item.add_marker(pytest.mark.xdist_group(group))
