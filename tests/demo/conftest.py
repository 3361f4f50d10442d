"""One demo brand (3,000 persons, seed 11) for every test module reading its figures: the
demo takes a minute, so it is built once per session."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from tests.demo.demo_support import Demo

from siyu.config import Settings
from siyu.demo.pipeline import run_demo
from siyu.store.engine import make_engine


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    result = run_demo(Settings(secret_key=bytes(32)), 3_000, 11, tmp_path_factory.mktemp("d"))
    engine = make_engine(result.database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT kind, payload FROM analytics_snapshots WHERE group_id = :g"
                " ORDER BY snapshot_id"
            ),
            {"g": result.group_id},
        ).all()
    yield Demo(result, engine, {r.kind: json.loads(r.payload) for r in rows})
    engine.dispose()
