"""The migrations are the schema: they create every table the code declares, on both
dialects, and go down and up again."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from tests.conftest import Store

from siyu.store.engine import make_engine
from siyu.store.migrate import downgrade, upgrade
from siyu.store.migrations.models_registry import load_all_models


def test_migrations_match_the_declared_tables(store: Store) -> None:
    # given a store migrated to head
    with store.engine.connect() as conn:
        # when alembic compares the live schema with the models
        diff = compare_metadata(MigrationContext.configure(conn), load_all_models())
    # then nothing is missing or different (a model change needs a migration)
    assert diff == []


def test_channels_are_seeded(store: Store) -> None:
    with store.engine.connect() as conn:
        channels = set(conn.execute(text("SELECT channel_id FROM channels")).scalars())
    assert channels == {
        "pos",
        "miniprogram",
        "official_account",
        "wecom",
        "tmall",
        "jd",
        "douyin",
        "youzan",
    }


def test_downgrade_then_upgrade_round_trips(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path / 'rt.db'}")
    upgrade(engine)
    downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert "identities" in inspect(engine).get_table_names()
