"""The analytics port: one function to get an Ibis backend, one to load orders, one to run.

Analytics are Ibis expressions and never know which engine runs them; every engine
difference (session settings, how Arrow data gets in, how results come out) lives here.
DuckDB is the default and always installed. Spark is the `siyu[spark]` extra and is imported
only when asked for, so `import siyu.analytics` works without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args
from uuid import uuid4

import ibis
import pyarrow as pa
from ibis import BaseBackend

from siyu.analytics.orders import read_orders
from siyu.errors import ConfigError

if TYPE_CHECKING:
    import ibis.expr.types as ir
    import pandas as pd

Engine = Literal["duckdb", "spark"]
ENGINES: tuple[str, ...] = get_args(Engine)

# Spark settings for one machine. Shuffle partitions default to 200, which turns every
# small group-by into 200 tasks; the UI would bind a port per session. UTC because Spark
# timestamps are read in the session time zone, and siyu's data timestamps are naive UTC:
# any other zone would shift day boundaries (and recency) against DuckDB.
SPARK_DEFAULTS: dict[str, str] = {
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.driver.memory": "2g",
}


def spark_session(master: str = "local[2]", **conf: str) -> Any:
    """A local Spark session with siyu's defaults (`conf` overrides them)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ConfigError(
            "engine: 'spark' needs PySpark; install the extra with `pip install 'siyu[spark]'`"
        ) from exc
    builder = SparkSession.builder.master(master).appName("siyu-analytics")
    for key, value in {**SPARK_DEFAULTS, **conf}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def connect(
    engine: Engine = "duckdb", *, database: str | Path = ":memory:", session: Any = None
) -> BaseBackend:
    """An Ibis backend for `engine`: DuckDB (a file or in memory) or Spark (`session`, else
    the process's running session, else a local one with siyu's defaults)."""
    if engine == "duckdb":
        return ibis.duckdb.connect(str(database))
    if engine == "spark":
        session = session or _active_spark_session() or spark_session()
        # a session siyu did not start may have another zone; results depend on it (above)
        session.conf.set("spark.sql.session.timeZone", "UTC")
        return ibis.pyspark.connect(session)
    raise ConfigError(f"engine: must be one of {', '.join(ENGINES)}, got {engine!r}")


@contextmanager
def open_engine(engine: Engine = "duckdb", con: BaseBackend | None = None) -> Iterator[BaseBackend]:
    """`con` if given (left open: it is the caller's), else a new backend closed on exit.
    A Spark session started here is stopped, so a CLI run leaves no JVM behind; one that
    was already running in this process (a notebook's, a test's) is used and left alone."""
    if con is not None:
        yield con
        return
    running = engine == "spark" and _active_spark_session() is not None
    made = connect(engine)
    try:
        yield made
    finally:
        if not running:
            made.disconnect()  # on Spark this stops the session


def _active_spark_session() -> Any:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        return None
    return SparkSession.getActiveSession()


def engine_name(con: BaseBackend) -> str:
    """'duckdb' or 'spark' for a backend made by `connect`."""
    return "spark" if con.name == "pyspark" else str(con.name)


def load_orders(con: BaseBackend, source: Path | pa.Table, name: str = "orders") -> ir.Table:
    """Validate orders (a CSV/Parquet file or an Arrow table, see `orders.read_orders`) and
    register them in `con` as table `name`, replacing one of that name."""
    table = read_orders(source)
    return load_arrow(con, table, name)


def load_arrow(con: BaseBackend, table: pa.Table, name: str) -> ir.Table:
    """Register an Arrow table in `con` as a temporary table or view called `name`."""
    if engine_name(con) == "spark":
        # Spark has no temporary tables, only views; a view over a memtable is a Spark
        # DataFrame kept in the session, which is what a temporary table would be
        return con.create_view(name, ibis.memtable(table), overwrite=True)
    return con.create_table(name, table, temp=True, overwrite=True)


def to_pandas(con: BaseBackend, expr: ir.Table) -> pd.DataFrame:
    """Run `expr` on `con` and return the result as a pandas DataFrame."""
    return con.execute(expr)


def to_arrow(con: BaseBackend, expr: ir.Table) -> pa.Table:
    """Run `expr` on `con` and return the result as an Arrow table."""
    return con.to_pyarrow(expr)


def scalar(con: BaseBackend, expr: ir.Scalar) -> Any:
    """Run a scalar expression (a count, a max) on `con` and return the Python value."""
    return con.execute(expr)


def attach_duckdb(con: BaseBackend, path: Path, name: str) -> None:
    """Attach a DuckDB database file to a DuckDB backend, read-only, once per name (a
    second open of the same file with other settings would fail in DuckDB)."""
    if engine_name(con) != "duckdb":
        raise ConfigError(f"engine: only duckdb reads a DuckDB file, not {engine_name(con)}")
    attached = con.raw_sql("SELECT database_name FROM duckdb_databases()").fetchall()
    if (name,) not in attached:
        con.attach(str(path), name=name, read_only=True)


@contextmanager
def materialised(expr: ir.Table) -> Iterator[ir.Table]:
    """`expr` computed once for the block (a temp table on DuckDB, a persisted DataFrame on
    Spark) and dropped when it ends, while the connection is still open (Ibis would
    otherwise drop it whenever the garbage collector finds it, possibly after the
    connection closed). Ibis shares one cache entry between equal expressions, and
    releasing it would drop a caller's cached copy too: a column naming this
    materialisation makes the entry ours alone."""
    cached = expr.mutate(siyu_materialised=ibis.literal(uuid4().hex)).cache()
    try:
        yield cached.drop("siyu_materialised")
    finally:
        cached.release()
