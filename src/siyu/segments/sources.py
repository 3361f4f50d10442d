"""The tables a stored segment's rule reads: the warehouse's facts plus what the store holds
per member, loaded only as far as the rule refers to it.

Facts (orders, lines, events) and the members snapshot come from the warehouse, so a rule
runs where the analytics run (DuckDB by default, Spark alike) and never scans the
operational store's fact tables. What the store holds per member and the warehouse does
not land (the stage, RFM scores, CLV, tier, tags, the members of other segments, the
product catalogue) is read from the store as Arrow (`analytics.store_read`: COPY on
PostgreSQL) and registered on the same engine. A rule that names no tag loads no tag: a
brand group's tags can be hundreds of millions of rows.

Segment evaluation is as fresh as the last landing (`siyu warehouse land`) for facts, and
as fresh as the store for tags and segment memberships.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc
from ibis import BaseBackend
from sqlalchemy import Engine

from siyu.analytics.engines import load_arrow
from siyu.analytics.schema import ARROW, Col, Kind
from siyu.analytics.store_read import StoreReader
from siyu.analytics.warehouse import Warehouse
from siyu.errors import ValidationError
from siyu.segments.compile import DAYS_AGO, SegmentTables
from siyu.segments.models import AFFINITY_SCALE
from siyu.segments.rules import SLUG, TAG_SLUG, References

BATCH_ROWS = 500_000


@dataclass(frozen=True)
class StoreAttribute:
    """A member attribute kept in the store: `column` of `source` (aliased `x`). A value
    kept scaled (`scale`: stored = value × scale) is compared divided back; `missing` is
    the value of a member without a row (None: null, which no comparison matches);
    `written_by` the automatic tag whose refresh writes the rows (a rule naming the
    attribute before that tag exists is refused: every member would read `missing`)."""

    source: str
    column: str
    kind: Kind
    scale: int = 1
    missing: float | None = None
    written_by: str | None = None

    def compared(self, stored: pa.ChunkedArray) -> pa.ChunkedArray:
        """The stored column as rules compare it: a scaled integer as float64, divided in
        Arrow once (IEEE division, correctly rounded), so DuckDB and Spark get one value."""
        if self.scale == 1:
            return stored
        return pc.divide(pc.cast(stored, pa.float64()), float(self.scale))


# The attributes a rule may name beyond the warehouse's members columns (member_id, status,
# brand_id, registered_at). `tier` is the member's tier in the group-wide scope or in its
# own brand's scope (`ledger.models.member_tiers`); `affinity` the score as of the last
# `siyu tags refresh`, in points (to 4 decimals).
STORE_ATTRIBUTES: dict[str, StoreAttribute] = {
    "stage": StoreAttribute("member_stages x", "stage", "text"),
    "orders": StoreAttribute("member_stages x", "orders", "int"),
    "rfm_segment": StoreAttribute("member_rfm x", "segment", "text"),
    "r": StoreAttribute("member_rfm x", "r", "int"),
    "f": StoreAttribute("member_rfm x", "f", "int"),
    "m": StoreAttribute("member_rfm x", "m", "int"),
    "clv_fen": StoreAttribute("member_clv x", "clv_fen", "int"),
    # the store a member belongs to (set at registration or by the brand; no row: null)
    "home_store_id": StoreAttribute("members x", "home_store_id", "text"),
    "tier": StoreAttribute(
        "member_tiers x JOIN members mm ON mm.group_id = x.group_id "
        "AND mm.member_id = x.member_id AND (x.scope_key = '*' OR x.scope_key = mm.brand_id)",
        "tier_code",
        "text",
    ),
    # the affinity score, kept in ten-thousandths (segments.models.member_affinity); no
    # row: no behaviour in the window, score 0
    "affinity": StoreAttribute(
        "member_affinity x",
        "score_e4",
        "int",
        scale=AFFINITY_SCALE,
        missing=0.0,
        written_by="auto.affinity",
    ),
}


def segment_tables(
    engine: Engine, backend: BaseBackend, warehouse: Warehouse, needs: References
) -> SegmentTables:
    """The tables `needs` names, as Ibis tables of `backend` (the warehouse's engine)."""
    reader = StoreReader(engine, warehouse.group_id)
    members = warehouse.members()
    for name in sorted(_store_attributes(needs.attributes, members)):
        attribute = STORE_ATTRIBUTES[name]
        values = _read(
            reader,
            attribute.source,
            [("x", Col("member_id", "int")), ("x", Col(attribute.column, attribute.kind))],
            ["a_member", name],
        )
        values = values.set_column(1, name, attribute.compared(values.column(name)))
        values_t = load_arrow(backend, values, f"seg_attr_{name}")
        members = members.left_join(values_t, members.member_id == values_t.a_member).drop(
            "a_member"
        )
        if attribute.missing is not None:
            members = members.mutate(**{name: members[name].fill_null(attribute.missing)})
    tables: dict[str, ir.Table] = {"members": members}
    if "orders" in needs.tables:
        tables["orders"] = warehouse.purchases()
    if "order_lines" in needs.tables:
        lines = warehouse.lines()
        tables["order_lines"] = lines.select("member_id", "ordered_at", "status", "sku")
    if "products" in needs.tables:
        products = _read(
            reader, "products x", [("x", Col("sku", "text")), ("x", Col("category", "text"))]
        )
        tables["products"] = load_arrow(backend, products, "seg_products")
    if "events" in needs.tables:
        tables["events"] = warehouse.events().select(
            "member_id", "type", "occurred_at", "sku", "channel"
        )
    if "tags" in needs.tables:
        tables["tags"] = load_arrow(backend, read_tags(reader, needs.tags), "seg_tags")
    if "memberships" in needs.tables:
        memberships = read_memberships(reader, needs.segments)
        tables["memberships"] = load_arrow(backend, memberships, "seg_memberships")
    return SegmentTables(**tables)


def read_tags(reader: StoreReader, slugs: Iterable[str]) -> pa.Table:
    """(member_id, tag, value) of the tags named, from `member_tags`."""
    source = (
        "member_tags x JOIN tags t ON t.tag_id = x.tag_id "
        f"AND t.slug IN ({quoted_slugs(slugs, TAG_SLUG)})"
    )
    columns = [("x", Col("member_id", "int")), ("t", Col("slug", "text"))]
    return _read(
        reader, source, [*columns, ("x", Col("value", "text"))], ["member_id", "tag", "value"]
    )


def read_memberships(reader: StoreReader, slugs: Iterable[str]) -> pa.Table:
    """(segment, member_id) of the segments named, from `segment_members`."""
    source = (
        "segment_members x JOIN segments s ON s.segment_id = x.segment_id "
        f"AND s.slug IN ({quoted_slugs(slugs, SLUG)})"
    )
    columns = [("s", Col("slug", "text")), ("x", Col("member_id", "int"))]
    return _read(reader, source, columns, ["segment", "member_id"])


def _store_attributes(names: Iterable[str], members: ir.Table) -> set[str]:
    """Which of `names` come from the store; an attribute neither the warehouse's members
    nor the store has is left for the compiler to refuse (it names the rule's path)."""
    found = set()
    for name in names:
        column = f"{name[: -len(DAYS_AGO)]}_at" if name.endswith(DAYS_AGO) else name
        if column not in members.columns and column in STORE_ATTRIBUTES:
            found.add(column)
    return found


def quoted_slugs(slugs: Iterable[str], pattern: re.Pattern[str]) -> str:
    """Slugs as SQL literals. Only a slug the pattern accepts (letters, digits, `_.-`, no
    quote) is written into SQL; the rule parser has already refused anything else."""
    found = sorted(set(slugs))
    for slug in found:
        if not pattern.fullmatch(slug):
            raise ValidationError("slug", f"{slug!r} is not a slug")
    return ", ".join(f"'{slug}'" for slug in found) or "NULL"


def _read(
    reader: StoreReader,
    source: str,
    columns: list[tuple[str, Col]],
    names: list[str] | None = None,
) -> pa.Table:
    """The group's rows of `source` (alias `x` carries the group) as one Arrow table."""
    parts = list(reader.select_rows(source, "x", columns, BATCH_ROWS))
    schema = pa.schema([(c.name, ARROW[c.kind]) for _, c in columns])
    table = pa.concat_tables(parts) if parts else schema.empty_table()
    return table.rename_columns(names) if names else table
