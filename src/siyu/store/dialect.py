"""The few SQL spellings that differ between SQLite and PostgreSQL, in one place."""

from __future__ import annotations

from sqlalchemy import Connection


def epoch_seconds(conn: Connection, column: str) -> str:
    """An expression giving a timestamp column as integer seconds since 1970 (UTC)."""
    if conn.dialect.name == "postgresql":
        return f"CAST(EXTRACT(EPOCH FROM {column}) AS BIGINT)"
    return f"CAST(strftime('%s', {column}) AS INTEGER)"


def as_int(conn: Connection, boolean_column: str) -> str:
    return f"(CASE WHEN {boolean_column} THEN 1 ELSE 0 END)"


def any_value(conn: Connection, column: str) -> str:
    """An aggregate picking one value of a group (PostgreSQL 15 has no min(bytea))."""
    if conn.dialect.name == "postgresql":
        return f"(array_agg({column}))[1]"
    return f"MIN({column})"


# The brand group bound as a parameter in a SELECT list. PostgreSQL must be told its type
# when the same parameter also appears in a WHERE clause (else "inconsistent types").
GROUP = "CAST(:g AS VARCHAR(64))"
