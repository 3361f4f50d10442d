"""The one `MetaData` every domain's `models.py` registers its tables on (the list of
those modules is siyu.store.migrations.models_registry, beside Alembic's env).

Column types that differ by dialect live here so domain code never mentions a dialect.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, MetaData, Text
from sqlalchemy.dialects import postgresql

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

# A compact set of member ids with two values each, one row of it holding up to tens of
# thousands of members: PostgreSQL's BIGINT[] (two dimensions, a triple per member),
# SQLite's JSON text. Written and read only through `store.dialect.Dialect.id_set_agg`
# and `id_set_rows`.
IdSet = Text().with_variant(postgresql.ARRAY(BigInteger), "postgresql")
