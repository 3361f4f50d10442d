"""Where Splink runs: DuckDB in memory (the default), or a Spark session for brands past
one machine. Splink is chatty: at INFO it narrates every step, at WARNING it advises
(more u pairs, a level never observed). siyu keeps its logger at ERROR; none of its
messages carry record values, but a library's log is no place to audit that."""

from __future__ import annotations

import logging
from typing import Any, Literal, get_args
from uuid import uuid4

import pyarrow as pa
from splink.internals.database_api import DatabaseAPISubClass
from splink.internals.splink_dataframe import SplinkDataFrame

from siyu.errors import ConfigError

Engine = Literal["duckdb", "spark"]
ENGINES: tuple[str, ...] = get_args(Engine)

logging.getLogger("splink").setLevel(logging.ERROR)


def quiet_splink() -> None:
    """Splink's Linker re-enables its INFO logging unless told not to; siyu passes
    log_level=None and sets the level once more here, in case a caller's Linker did."""
    logging.getLogger("splink").setLevel(logging.ERROR)


def check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise ConfigError(f"engine: must be one of {', '.join(ENGINES)}, got {engine!r}")


def db_api(engine: str = "duckdb", spark: Any = None) -> DatabaseAPISubClass:
    """A fresh Splink database API: an in-memory DuckDB, or the Spark session `spark`
    (else the active one)."""
    check_engine(engine)
    quiet_splink()
    if engine == "duckdb":
        import duckdb
        from splink import DuckDBAPI

        return DuckDBAPI(connection=duckdb.connect())
    try:
        from pyspark.sql import SparkSession
        from splink import SparkAPI
    except ImportError as exc:
        raise ConfigError(
            "engine: 'spark' needs PySpark; install the extra with `pip install 'siyu[spark]'`"
        ) from exc
    from splink.backends.spark import similarity_jar_location

    session = spark or SparkSession.getActiveSession()
    if session is None:
        raise ConfigError("engine: 'spark' needs a running Spark session (pass spark=...)")
    # Splink's Jaro-Winkler and Damerau-Levenshtein are Scala UDFs in a jar it ships; a
    # session started without it (any siyu or notebook session) gets it here
    session.sql(f"ADD JAR '{similarity_jar_location()}'")
    # persist: intermediate tables stay in the session's memory, no checkpoint directory
    return SparkAPI(spark_session=session, break_lineage_method="persist")


def register(api: DatabaseAPISubClass, table: pa.Table) -> SplinkDataFrame:
    """`table` as a Splink input, under a name of its own (a Spark session is shared)."""
    return api.register(table, table_name=f"siyu_match_records_{uuid4().hex[:12]}")


def release(api: DatabaseAPISubClass, *frames: SplinkDataFrame) -> None:
    """Drop what Splink made and the inputs registered: on a shared Spark session they
    would otherwise stay cached for the session's life."""
    api.delete_tables_created_by_splink_from_db()
    for frame in frames:
        api.delete_table_from_database(frame.physical_name)
    if hasattr(api, "duckdb_con"):
        api.duckdb_con.close()


def to_arrow(frame: SplinkDataFrame) -> pa.Table:
    return frame.as_pyarrow_table()
