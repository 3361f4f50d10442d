"""One row per import of one file: the accounting that read = accepted + rejected."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, String, Table

from siyu.store.metadata import BigId, metadata

import_runs = Table(
    "import_runs",
    metadata,
    Column("run_id", BigId, primary_key=True, autoincrement=True),
    Column("group_id", String(64), ForeignKey("brand_groups.group_id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("path", String(1000), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("rows_read", BigInteger, nullable=False),
    Column("rows_accepted", BigInteger, nullable=False),
    Column("rows_rejected", BigInteger, nullable=False),
    # New rows written to the store; accepted rows already there (a re-import) add none.
    Column("records_inserted", BigInteger, nullable=False),
    Column("rejects_path", String(1000)),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime, nullable=False),
)
