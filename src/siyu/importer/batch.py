"""A batch of rows moving through an import: raw values, typed values, and per-row errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, text

from siyu.identity.ingest import IdentifierEncoder
from siyu.importer.fields import Field, convert


@dataclass
class Context:
    """What every batch of one import run can look up: the group and its reference data."""

    group_id: str
    encoder: IdentifierEncoder
    brands: set[str] = field(default_factory=set)
    stores: set[str] = field(default_factory=set)
    skus: set[str] = field(default_factory=set)
    guides: set[str] = field(default_factory=set)

    def refresh(self, conn: Connection) -> None:
        """Reload reference codes (a directory import adds brands before stores, ...)."""
        g = {"g": self.group_id}

        def codes(sql: str) -> set[str]:
            return {row[0] for row in conn.execute(text(sql), g)}

        self.brands = codes("SELECT brand_id FROM brands WHERE group_id = :g")
        self.stores = codes("SELECT store_id FROM stores WHERE group_id = :g")
        self.skus = codes("SELECT sku FROM products WHERE group_id = :g")
        self.guides = codes("SELECT guide_id FROM guides WHERE group_id = :g")


@dataclass
class Batch:
    raw: pa.Table
    columns: dict[str, pa.Array]
    errors: list[str | None]
    # What a kind's check computed and its load reuses (e.g. encoded buyer identifiers).
    derived: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def convert(cls, raw: pa.Table, fields: tuple[Field, ...]) -> Batch:
        errors: list[str | None] = [None] * raw.num_rows
        columns: dict[str, pa.Array] = {}
        names = set(raw.column_names)
        for f in fields:
            converted = convert(f, raw.column(f.name) if f.name in names else None, raw.num_rows)
            columns[f.name] = converted.array
            for i, rule in enumerate(converted.errors):
                if rule is not None and errors[i] is None:
                    errors[i] = f"{f.name}: {rule}"
        return cls(raw, columns, errors)

    def __len__(self) -> int:
        return self.raw.num_rows

    def values(self, name: str) -> list[Any]:
        return self.columns[name].to_pylist()

    def reject(self, index: int, field_name: str, rule: str) -> None:
        """Record the first rule a row breaks; later ones are not reported for that row."""
        if self.errors[index] is None:
            self.errors[index] = f"{field_name}: {rule}"

    def reject_where(self, mask: np.ndarray, field_name: str, rule: str) -> None:
        for i in np.flatnonzero(mask):
            self.reject(int(i), field_name, rule)

    def check_reference(self, name: str, known: set[str], what: str) -> None:
        column = self.columns[name]
        unknown = pc.and_(
            pc.invert(pc.is_in(column, value_set=pa.array(sorted(known), pa.string()))),
            pc.is_valid(column),
        )
        for i in np.flatnonzero(unknown.to_numpy(zero_copy_only=False)):
            self.reject(int(i), name, f"no {what} {column[int(i)].as_py()!r} in this brand group")

    def reject_rules(self, name: str, rules: pa.Array) -> None:
        """Reject rows whose entry in `rules` (one per row) is not null."""
        for i in np.flatnonzero(pc.is_valid(rules).to_numpy(zero_copy_only=False)):
            self.reject(int(i), name, rules[int(i)].as_py())

    @property
    def ok(self) -> np.ndarray:
        return np.array([e is None for e in self.errors], dtype=bool)

    def accepted(self) -> dict[str, pa.Array]:
        mask = pa.array(self.ok)
        return {name: col.filter(mask) for name, col in self.columns.items()}
