"""What every import kind is made of: the Kind record, field helpers, and the set-based
loaders and duplicate rules the kinds share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Column, ColumnElement, Connection, Table, and_, select, text

from siyu.catalog.models import CHANNELS
from siyu.identity.models import identities
from siyu.identity.types import IDENTITY_TYPES
from siyu.importer.batch import Batch, Context
from siyu.importer.fields import Field
from siyu.store.bulk import stage, unstage
from siyu.store.dialect import GROUP, join_staged
from siyu.store.metadata import metadata

Loader = Callable[[Connection, Context, Batch], int]
Checker = Callable[[Context, Batch], None]
# A rule needing the store, run on the staged rows before they are written.
StagedCheck = Callable[[Connection, Context, Batch, Table], None]


@dataclass(frozen=True)
class Kind:
    name: str
    fields: tuple[Field, ...]
    check: Checker
    load: Loader
    # The stored column a row's id field (same name) becomes: lets an import of rows from
    # memory tell rows already stored from new ones (the batch API's `duplicate`).
    key: Column[str] | None = None
    # The fields naming one record: a second row with them is the same record again
    # (accepted, stored once) or, with other content, a conflicting duplicate (rejected).
    record_key: tuple[str, ...] = ()
    # The tables an import of this kind fills in bulk: analysed once the file is in, so
    # the planner does not keep the statistics of the empty table (PostgreSQL).
    analyse: tuple[str, ...] = ()


def text_field(name: str, required: bool = False, max_len: int = 200) -> Field:
    return Field(name, "text", required=required, max_len=max_len)


def insert_select(
    conn: Connection,
    table: str,
    columns: str,
    select: str,
    group_id: str,
    staged: str,
    conflict: str,
) -> int:
    sql = (
        f"INSERT INTO {table} ({columns}) SELECT {select} FROM {staged} s WHERE 1 = 1 "
        f"ON CONFLICT ({conflict}) DO NOTHING"
    )
    return int(conn.execute(text(sql), {"g": group_id}).rowcount)


def stage_accepted(
    conn: Connection,
    prefix: str,
    batch: Batch,
    extra: dict[str, pa.Array] | None = None,
    omit: tuple[str, ...] = (),
) -> Table:
    """The accepted rows in a staging table, with `_i` (the row's index in the batch);
    `omit` leaves out fields the statements do not need (personal data in the clear)."""
    cols = {k: v for k, v in batch.accepted().items() if k not in omit}
    cols["_i"] = pa.array(np.flatnonzero(batch.ok), pa.int64())  # the row's index in the batch
    if extra:
        mask = pa.array(batch.ok)
        cols.update({k: v.filter(mask) for k, v in extra.items()})
    return stage(conn, prefix, pa.table(cols))


def reject_changed(
    conn: Connection,
    ctx: Context,
    batch: Batch,
    staged: Table,
    table: str,
    key: dict[str, str],
    compare: Sequence[str],
    what: str,
    identity: tuple[str, str, str] | None = None,
) -> None:
    """Rows whose key is already stored with other content are rejected, naming what
    differs: an import adds records, it never changes a stored one, and it never drops a
    changed one silently. `key` maps a field to its stored column; `identity` is (label,
    stored identity column, type field) for a buyer compared by its identifier (type,
    scope and keyed hash: staged as `_scope` and `_key`)."""
    target = metadata.tables[table]
    s, t = staged.c, target.c
    on = and_(t.group_id == ctx.group_id, *(t[c] == s[f] for f, c in key.items()))
    source = join_staged(staged, target, on)
    pairs: dict[str, tuple[list[ColumnElement[object]], list[ColumnElement[object]]]] = {
        c: ([t[c]], [s[c]]) for c in compare
    }
    if identity is not None:
        label, column, type_field = identity
        i = identities.alias("i")
        source = source.join(i, i.c.identity_id == t[column])
        pairs[label] = (
            [i.c.type, i.c.scope, i.c.value_key],
            [s[type_field], s["_scope"], s["_key"]],
        )
    stored = [e for left, _ in pairs.values() for e in left]
    given = [e for _, right in pairs.values() for e in right]
    names = list(key)
    query = select(s["_i"], *(s[f] for f in names), *stored, *given).select_from(source)
    for row in conn.execute(query):
        values = tuple(row)
        row_i, shown = int(values[0]), "/".join(str(v) for v in values[1 : 1 + len(names)])
        old, new = values[1 + len(names) :][: len(stored)], values[1 + len(names) + len(stored) :]
        differ, at = [], 0
        for label, (left, _) in pairs.items():
            if old[at : at + len(left)] != new[at : at + len(left)]:
                differ.append(label)
            at += len(left)
        if differ:
            batch.reject(
                row_i,
                names[0],
                f"{shown!r} is already stored with a different {', '.join(differ)}; "
                f"a stored {what} is never changed by an import",
            )


def reject_unknown_card_brands(
    ctx: Context, batch: Batch, types: pa.Array, scopes: pa.Array, scope_field: str
) -> None:
    """A card's scope is the brand that issued it: rows naming a brand the group does not
    have are rejected, like any other unknown brand."""
    known = pa.array(sorted(ctx.brands), pa.string())
    unknown = pc.and_(
        pc.fill_null(pc.equal(types, "card"), False),
        pc.invert(pc.fill_null(pc.is_in(scopes, value_set=known), True)),
    )
    for i in np.flatnonzero(unknown.to_numpy(zero_copy_only=False)):
        batch.reject(
            int(i), scope_field, f"no brand {scopes[int(i)].as_py()!r} in this brand group"
        )


def check_nothing(ctx: Context, batch: Batch) -> None:
    return None


def load_simple(table: str, key: str, columns: tuple[str, ...]) -> Loader:
    def load(conn: Connection, ctx: Context, batch: Batch) -> int:
        staged = stage_accepted(conn, table, batch)
        compare = [c for c in columns if c != key]
        reject_changed(conn, ctx, batch, staged, table, {key: key}, compare, table[:-1])
        cols = ", ".join(("group_id", *columns))
        select = ", ".join((GROUP, *(f"s.{c}" for c in columns)))
        n = insert_select(conn, table, cols, select, ctx.group_id, staged.name, f"group_id, {key}")
        unstage(conn, staged)
        return n

    return load


# CHANNELS reads the channel registry when a batch is checked, so a channel registered
# after this module was imported is accepted like a built-in.
CHANNEL = Field("channel", "enum", required=True, choices=CHANNELS)
ID_TYPES = tuple(IDENTITY_TYPES)


def reject_conflicting(batch: Batch, key: tuple[str, ...], values: tuple[str, ...]) -> None:
    """A row repeating an earlier row's key with another value is a reject naming the row
    that gave the first value (identical repeats are accepted: they change nothing).
    A value left out agrees with anything."""
    keys = list(zip(*(batch.values(k) for k in key), strict=True))
    columns = {v: batch.values(v) for v in values}
    first: dict[tuple[tuple[object, ...], str], tuple[int, object]] = {}
    for i in (int(i) for i in np.flatnonzero(batch.ok)):
        for name in values:
            value = columns[name][i]
            if value is None:
                continue
            j, before = first.setdefault((keys[i], name), (i, value))
            if before != value:
                batch.reject(i, name, f"differs from file row {j + 1} with the same {key[0]}")
                break
