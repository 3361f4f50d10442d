"""The one `MetaData` every domain's `models.py` registers its tables on.

Column types that differ by dialect live here so domain code never mentions a dialect.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, MetaData

# Deterministic constraint names, so Alembic migrations are identical on every dialect.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

# SQLite only auto-increments an `INTEGER PRIMARY KEY`; PostgreSQL needs BIGINT for
# tables that reach billions of rows.
BigId = BigInteger().with_variant(Integer(), "sqlite")


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
