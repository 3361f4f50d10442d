"""Times as the store keeps them: UTC without a zone, whole seconds.

Raw SQL (`text()`) on SQLite answers timestamps as ISO text while PostgreSQL answers
`datetime`s; `stored_time` takes either, so no caller has to know which engine it read.
"""

from __future__ import annotations

from datetime import UTC, datetime


def stored_now() -> datetime:
    """Now, as a stored time."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def as_stored(value: datetime) -> datetime:
    """A time given with or without a zone, as the store keeps it (naive UTC); a naive
    time is taken to be UTC already."""
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)


def stored_time(value: datetime | str) -> datetime:
    """A stored time read back, whichever engine answered."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def as_utc(value: datetime | str) -> datetime:
    """A stored time with its zone made explicit, for answers (RFC 3339 with Z)."""
    found = stored_time(value)
    return found.replace(tzinfo=UTC) if found.tzinfo is None else found
