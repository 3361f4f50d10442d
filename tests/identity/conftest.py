"""One local Spark session for the identity suite's Spark tests (matching on Spark, the
store-level pass on Spark). Without PySpark a Spark test is skipped with the reason,
except under CI=true, where it fails: CI runs every engine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.conftest import IN_CI


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        message = f"PySpark is not installed (pip install 'siyu[spark]'): {exc}"
        if IN_CI:
            pytest.fail(f"CI=true requires Spark: {message}")
        pytest.skip(message)
    running = SparkSession.getActiveSession()
    session = running or (
        SparkSession.builder.master("local[2]")
        .appName("siyu-matching-test")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    if running is None:  # a session another suite started is theirs to stop
        session.stop()
