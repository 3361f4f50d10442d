"""The importable kinds: fields, rules beyond one field, and how accepted rows are stored.

Every loader moves rows with set-based `INSERT ... SELECT ... ON CONFLICT DO NOTHING`
from a staging table, so importing a file twice changes nothing, and returns how many
rows were new. One module per family of kinds; `KINDS` lists them in import order (a
directory import loads what others refer to first).
"""

from __future__ import annotations

from siyu.identity.ingest import IdentifierEncoder
from siyu.importer.kinds import catalog, facts, people, stock, tags
from siyu.importer.kinds.base import Kind

KINDS: dict[str, Kind] = {
    k.name: k for family in (catalog, people, facts, stock, tags) for k in family.KINDS
}
IMPORT_ORDER = tuple(KINDS)

__all__ = ["IMPORT_ORDER", "KINDS", "IdentifierEncoder", "Kind"]
