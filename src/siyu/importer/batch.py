"""A batch of rows moving through an import: raw values, typed values, and per-row errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, text

from siyu.identity.ingest import IdentifierEncoder
from siyu.importer.fields import Field, Limits, convert


@dataclass(frozen=True)
class Scope:
    """What an API key may send: its channel's, or its stores', records only."""

    channel: str | None = None
    stores: tuple[str, ...] | None = None


@dataclass
class Context:
    """What every batch of one import run can look up: the group and its reference data."""

    group_id: str
    encoder: IdentifierEncoder
    brands: set[str] = field(default_factory=set)
    stores: set[str] = field(default_factory=set)
    skus: set[str] = field(default_factory=set)
    guides: set[str] = field(default_factory=set)
    limits: Limits = field(default_factory=Limits.starting_now)
    scope: Scope = field(default_factory=Scope)
    # What the loaders wrote beside their records, summed over the run's batches (the
    # members kind: new identities and links, records merged, members moved to a new card).
    outcomes: dict[str, int] = field(default_factory=dict)

    def count(self, **written: int) -> None:
        for name, n in written.items():
            self.outcomes[name] = self.outcomes.get(name, 0) + n

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
    # Per row: the number a person finds it by (file line, row index or item index).
    numbers: list[int] = field(default_factory=list)
    unit: str = "line"

    @classmethod
    def convert(
        cls, raw: pa.Table, fields: tuple[Field, ...], limits: Limits | None = None
    ) -> Batch:
        errors: list[str | None] = [None] * raw.num_rows
        columns: dict[str, pa.Array] = {}
        names = set(raw.column_names)
        for f in fields:
            column = raw.column(f.name) if f.name in names else None
            converted = convert(f, column, raw.num_rows, limits)
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

    def reject_conflicting_duplicates(
        self, key: tuple[str, ...], fields: tuple[Field, ...]
    ) -> None:
        """Rows repeating an earlier row's key: the same content is the same record again
        (accepted, stored once); different content is rejected, naming what differs. The
        first row wins, so the answer does not depend on where batches are cut."""
        if not key:
            return
        keys = list(zip(*(self.values(k) for k in key), strict=True))
        first: dict[tuple[Any, ...], int] = {}
        repeats: list[tuple[int, int]] = []
        for i in (int(i) for i in np.flatnonzero(self.ok)):
            k = keys[i]
            if any(v is None for v in k):
                continue
            if k in first:
                repeats.append((first[k], i))
            else:
                first[k] = i
        if not repeats:
            return
        compared = [f.name for f in fields if f.name not in key]
        for j, i in repeats:
            differ = [n for n in compared if _value(self, n, i) != _value(self, n, j)]
            if differ:
                number = self.numbers[j] if self.numbers else j
                shown = "/".join(str(v) for v in keys[i])
                self.reject(
                    i,
                    key[0],
                    f"{shown!r} is also on {self.unit} {number} with a different "
                    f"{', '.join(differ)}; one record cannot have two versions",
                )

    @property
    def ok(self) -> np.ndarray:
        return np.array([e is None for e in self.errors], dtype=bool)

    def accepted(self) -> dict[str, pa.Array]:
        mask = pa.array(self.ok)
        return {name: col.filter(mask) for name, col in self.columns.items()}


def _value(batch: Batch, name: str, i: int) -> Any:
    return batch.columns[name][i].as_py()
