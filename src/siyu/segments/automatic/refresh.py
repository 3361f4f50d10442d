"""Refresh every automatic tag: define the missing ones, compute each (in the warehouse or
the store), and write each one's whole member set with `tags.apply_membership`, in its
own transaction, so a tag that fails leaves the others written and its own as it was.
A tag may first write the numbers it is computed from (`AutoTag.prepare`: `auto.affinity`
writes every member's score to `member_affinity`, which segment rules compare).

Why set-wise: a nightly refresh replaces millions of holders; `apply_membership` stages
the new set and writes the enters, leaves and value changes with four statements, so a
refresh that changes nothing writes nothing (no history rows) and costs no Python per
member.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection, Engine

from siyu.analytics.engines import Engine as EngineName
from siyu.analytics.engines import load_arrow, open_engine, to_arrow
from siyu.analytics.store_read import StoreReader
from siyu.analytics.warehouse import Warehouse, open_warehouse
from siyu.catalog.models import ONLINE_CHANNELS
from siyu.errors import ValidationError
from siyu.segments.automatic.catalogue import BY_SLUG, CATALOGUE, AutoTag
from siyu.segments.automatic.warehouse_tags import Facts, facts, materialise
from siyu.segments.tags import apply_membership, define_tag, list_tags, update_tag

OWNER = "system"
BY = "system"


@dataclass(frozen=True)
class TagRefresh:
    """One tag's refresh: its holders now, what changed, and how long each half took.
    `skipped` names why nothing was written (an archived tag)."""

    slug: str
    size: int
    entered: int
    left: int
    changed: int
    compute_seconds: float
    write_seconds: float
    skipped: str | None = None


@dataclass(frozen=True)
class RefreshReport:
    group_id: str
    as_of: datetime
    tags: tuple[TagRefresh, ...]
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group_id,
            "as_of": self.as_of.isoformat(),
            "seconds": round(self.seconds, 3),
            "tags": [asdict(t) for t in self.tags],
        }


Progress = Callable[[TagRefresh], None]


def chosen_tags(only: Sequence[str] | None) -> tuple[AutoTag, ...]:
    if not only:
        return CATALOGUE
    unknown = [s for s in only if s not in BY_SLUG]
    if unknown:
        raise ValidationError("only", f"not an automatic tag: {unknown[0]!r}")
    return tuple(t for t in CATALOGUE if t.slug in only)


def ensure_tags(conn: Connection, group_id: str, chosen: Sequence[AutoTag]) -> dict[str, int]:
    """Define each tag the group lacks and bring each one's definition up to date; the ids
    of the live ones (an archived tag takes no writes, so it is left out)."""
    existing = {t.slug: t for t in list_tags(conn, group_id, archived=True)}
    live: dict[str, int] = {}
    for tag in chosen:
        found = existing.get(tag.slug)
        if found is None:
            found = define_tag(
                conn,
                group_id,
                tag.slug,
                name_zh=tag.name_zh,
                name_en=tag.name_en,
                kind="automatic",
                owner=OWNER,
                refresh="nightly",
                definition=tag.definition(),
            )
        elif found.kind != "automatic":
            raise ValidationError(
                "slug", f"{tag.slug!r} is a {found.kind} tag; the slug is an automatic tag's"
            )
        elif found.definition != tag.definition():
            found = update_tag(conn, group_id, tag.slug, definition=tag.definition())
        if found.archived_at is None:
            live[tag.slug] = found.tag_id
    return live


def refresh_automatic_tags(
    engine: Engine,
    warehouse: Warehouse,
    group_id: str,
    as_of: datetime | None = None,
    progress: Progress | None = None,
    only: Sequence[str] | None = None,
) -> RefreshReport:
    """Compute every automatic tag (or those of `only`) as of `as_of` (default: the end of
    the landed data) and write each one's members back to the store."""
    started = time.perf_counter()
    if warehouse.group_id != group_id:
        raise ValidationError("group", f"the warehouse is opened for {warehouse.group_id!r}")
    as_of = as_of or warehouse.data_end()
    if as_of is None:
        raise ValidationError("warehouse", f"{warehouse.location} holds no facts of {group_id!r}")
    chosen = chosen_tags(only)
    with engine.begin() as conn:
        live = ensure_tags(conn, group_id, chosen)
    done: list[TagRefresh] = []
    with ExitStack() as stack:
        inputs = None
        if any(t.side == "warehouse" for t in chosen):
            inputs = stack.enter_context(warehouse_facts(engine, warehouse, as_of))
        for tag in chosen:
            start = time.perf_counter()
            if tag.prepare is not None:  # archived or not: segment rules read what it writes
                tag.prepare(engine, group_id, as_of)
            if tag.slug not in live:
                done.append(TagRefresh(tag.slug, 0, 0, 0, 0, 0.0, 0.0, "archived"))
            else:
                tag_id = live[tag.slug]
                done.append(_refresh_one(engine, warehouse, inputs, tag, tag_id, as_of, start))
            if progress is not None:
                progress(done[-1])
    return RefreshReport(group_id, as_of, tuple(done), time.perf_counter() - started)


def compute_tag(
    engine: Engine, warehouse: Warehouse, inputs: Facts | None, tag: AutoTag, as_of: datetime
) -> pa.Table:
    """The tag's (member_id, value) rows: the Ibis expression run on the warehouse's
    engine, or the store's query."""
    if tag.side == "warehouse":
        assert inputs is not None
        return to_arrow(warehouse.con, tag.compute(inputs))
    with engine.connect() as conn:
        rows: pa.Table = tag.compute(conn, warehouse.group_id, as_of)
        return rows


def _refresh_one(
    engine: Engine,
    warehouse: Warehouse,
    inputs: Facts | None,
    tag: AutoTag,
    tag_id: int,
    as_of: datetime,
    start: float,
) -> TagRefresh:
    """Compute the tag (its compute time counts from `start`, its preparation included)
    and write its members."""
    rows = compute_tag(engine, warehouse, inputs, tag, as_of)
    computed = time.perf_counter()
    values = rows.column("value").cast(pa.string()).combine_chunks()
    with engine.begin() as conn:
        applied = apply_membership(
            conn, warehouse.group_id, tag_id, rows.column("member_id"), values, BY
        )
    return TagRefresh(
        tag.slug,
        rows.num_rows,
        applied.entered,
        applied.left,
        applied.changed,
        round(computed - start, 3),
        round(time.perf_counter() - computed, 3),
    )


@contextmanager
def warehouse_facts(engine: Engine, warehouse: Warehouse, as_of: datetime) -> Iterator[Facts]:
    """The facts at `as_of`, with the store's catalogue and stores loaded next to them (small
    reference tables, not landed), their per-member aggregates computed once for all tags
    (temp tables on DuckDB, cached DataFrames on Spark)."""
    con = warehouse.con
    reader = StoreReader(engine, warehouse.group_id)
    rows = reader.query("SELECT sku, category FROM products WHERE group_id = :g")
    products = pa.table(
        {
            "sku": pa.array([r[0] for r in rows], pa.string()),
            "category": pa.array([r[1] for r in rows], pa.string()),
        }
    )
    loaded_products = load_arrow(con, products, "auto_tag_products")
    loaded_stores = load_arrow(con, reader.store_cities(), "auto_tag_stores")
    f = facts(warehouse, loaded_products, loaded_stores, as_of, sorted(ONLINE_CHANNELS))
    with materialise(f) as computed:
        yield computed


def refresh_from_location(
    engine: Engine,
    location: Path,
    group_id: str,
    as_of: datetime | None = None,
    progress: Progress | None = None,
    only: Sequence[str] | None = None,
    engine_name: EngineName = "duckdb",
) -> RefreshReport:
    """`refresh_automatic_tags` over the warehouse at `location` (a DuckDB file or a
    Parquet directory), on a new engine closed at the end (the CLI's entry point)."""
    with open_engine(engine_name) as con:
        wh = open_warehouse(con, location, group_id)
        return refresh_automatic_tags(engine, wh, group_id, as_of, progress, only)
