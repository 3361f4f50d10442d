"""Every domain's tables on the shared `metadata`, found by the domain file convention.

A domain keeps its tables in `siyu/<domain>/models.py`; Alembic's env and the schema tests
need all of them, so they are imported here by walking the package rather than by name:
the store imports no domain (the layers contract in pyproject.toml holds it to that), and
a new domain's tables are found without touching the store.

A domain's models module may also define `after_migrate(conn)`: rows that come from code
rather than from a migration (catalog: one row per registered channel), written after
every upgrade.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from sqlalchemy import Connection, MetaData

import siyu
from siyu.store.metadata import metadata

MODELS = "models"


def domain_models() -> list[ModuleType]:
    """Each `siyu.<domain>.models` module, imported, in name order."""
    found = []
    for info in sorted(pkgutil.iter_modules(siyu.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        name = f"{siyu.__name__}.{info.name}.{MODELS}"
        if importlib.util.find_spec(name) is not None:
            found.append(importlib.import_module(name))
    return found


def load_all_models() -> MetaData:
    """Import every domain's models so `metadata` knows all tables (for Alembic, create_all)."""
    domain_models()
    return metadata


def after_migrate(conn: Connection) -> None:
    """Run each domain's `after_migrate(conn)` hook (each checks its tables exist: after a
    downgrade to base they do not)."""
    for module in domain_models():
        hook = getattr(module, "after_migrate", None)
        if hook is not None:
            hook(conn)
