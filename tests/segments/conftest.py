"""Segment rules run on both engines: the analytics suite's DuckDB/Spark `con` fixture (one
local Spark session for the run; under CI=true a missing PySpark fails, never skips)."""

from tests.analytics.conftest import (  # noqa: F401  (fixtures and the Spark socket marker)
    con,
    pytest_collection_modifyitems,
    spark,
)
