"""The one place that names every domain's models: Alembic's env and the schema tests
need all tables on the shared `metadata`, and the store itself imports no domain."""

from __future__ import annotations

from sqlalchemy import Connection, MetaData, inspect

from siyu.store.metadata import metadata


def load_all_models() -> MetaData:
    """Import every domain's models so `metadata` knows all tables (for Alembic, create_all)."""
    from siyu.analytics import models as _analytics  # noqa: F401
    from siyu.auth import models as _auth  # noqa: F401
    from siyu.catalog import models as _catalog  # noqa: F401
    from siyu.identity import models as _identity  # noqa: F401
    from siyu.importer import models as _importer  # noqa: F401
    from siyu.inventory import models as _inventory  # noqa: F401
    from siyu.ledger import models as _ledger  # noqa: F401
    from siyu.orders import models as _orders  # noqa: F401

    return metadata


def sync_registered(conn: Connection) -> None:
    """After migrating: rows for what plugins register (the channels table), so a channel
    registered after migration 0001 seeded the built-ins gets its row on the next migrate."""
    from siyu.catalog.models import sync_channels

    if inspect(conn).has_table("channels"):  # not after a downgrade to base
        sync_channels(conn)
