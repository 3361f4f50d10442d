"""Engines for the analytics suite: DuckDB, and one local Spark session for the whole run.

Spark takes ~15 s to start, so it starts once (local[2], two shuffle partitions, no UI).
Without PySpark a Spark test is skipped with the reason, except under CI=true, where it
fails: the dev extra installs PySpark, so CI must run every engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from ibis import BaseBackend
from tests.conftest import IN_CI

from siyu.analytics.engines import connect, spark_session

ENGINES = ["duckdb", pytest.param("spark", marks=pytest.mark.spark)]

# PySpark reads every result through a local socket that it leaves for the garbage
# collector to close ("The socket will be automatically closed when garbage-collected",
# pyspark/util.py), which Python reports as a ResourceWarning, an error here. Only tests
# marked `spark` ignore it, and only for sockets.
SPARK_SOCKETS = pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("spark") is not None:
            item.add_marker(SPARK_SOCKETS)


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        message = f"PySpark is not installed (pip install 'siyu[spark]'): {exc}"
        if IN_CI:
            pytest.fail(f"CI=true requires Spark: {message}")
        pytest.skip(message)
    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    # tables written by a test go to a temporary directory, not the working directory
    session = spark_session("local[2]", **{"spark.sql.warehouse.dir": str(warehouse)})
    yield session
    session.stop()


@pytest.fixture(params=ENGINES)
def con(request: pytest.FixtureRequest) -> BaseBackend:
    """An Ibis backend per engine; every test that takes it runs on both."""
    if request.param == "spark":
        return connect("spark", session=request.getfixturevalue("spark"))
    return connect("duckdb")
