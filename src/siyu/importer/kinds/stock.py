"""Stock: locations, where each channel ships from, counts."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
from sqlalchemy import Connection, text

from siyu.importer.batch import Batch, Context
from siyu.importer.fields import Field
from siyu.importer.kinds.base import (
    CHANNEL,
    Kind,
    insert_select,
    load_simple,
    reject_conflicting,
    stage_accepted,
    text_field,
)
from siyu.inventory.errors import OutOfStock
from siyu.inventory.locations import LOCATION_KINDS, count_once, location_rule
from siyu.inventory.stock import MAX_UNITS, announce, level, now_utc
from siyu.store.bulk import unstage
from siyu.store.dialect import GROUP


def _check_stock_locations(ctx: Context, batch: Batch) -> None:
    batch.check_reference("store_id", ctx.stores, "store")
    rows = zip(*(batch.values(c) for c in ("kind", "store_id", "lat_e6", "lon_e6")), strict=True)
    for i, (kind, store, lat, lon) in enumerate(rows):
        broken = location_rule(kind, store, lat, lon)
        if broken is not None:
            batch.reject(i, *broken)
    reject_conflicting(batch, ("location_id",), ("kind", "store_id", "city", "lat_e6", "lon_e6"))


def _reject_unknown_locations(conn: Connection, ctx: Context, batch: Batch) -> set[str]:
    known = set(
        conn.execute(
            text("SELECT location_id FROM stock_locations WHERE group_id = :g"),
            {"g": ctx.group_id},
        ).scalars()
    )
    unknown = np.array([loc not in known for loc in batch.values("location_id")])
    batch.reject_where(unknown & batch.ok, "location_id", "no stock location of this id")
    return known


def _check_channel_locations(ctx: Context, batch: Batch) -> None:
    reject_conflicting(batch, ("channel",), ("safety_stock",))


def _load_channel_locations(conn: Connection, ctx: Context, batch: Batch) -> int:
    _reject_unknown_locations(conn, ctx, batch)
    if not batch.ok.any():
        return 0
    staged = stage_accepted(conn, "channel_locations", batch)
    n = insert_select(
        conn,
        "channel_locations",
        "group_id, channel, location_id",
        f"{GROUP}, s.channel, s.location_id",
        ctx.group_id,
        staged.name,
        "group_id, channel, location_id",
    )
    # The channel's safety stock: the first value stored stays (the API changes it).
    conn.execute(
        text(f"""INSERT INTO channel_safety_stock (group_id, channel, units)
                 SELECT DISTINCT {GROUP}, s.channel, s.safety_stock FROM {staged.name} s
                 WHERE s.safety_stock IS NOT NULL
                 ON CONFLICT (group_id, channel) DO NOTHING"""),
        {"g": ctx.group_id},
    )
    unstage(conn, staged)
    return n


def _check_stock(ctx: Context, batch: Batch) -> None:
    batch.check_reference("sku", ctx.skus, "product")
    over = pc.fill_null(pc.greater(batch.columns["on_hand"], MAX_UNITS), False)
    batch.reject_where(over.to_numpy(zero_copy_only=False), "on_hand", f"at most {MAX_UNITS}")
    reject_conflicting(batch, ("location_id", "sku", "counted_at"), ("on_hand",))


def _load_stock(conn: Connection, ctx: Context, batch: Batch) -> int:
    """Each row is a count (on hand set to what was counted, a `count` movement for the
    difference) keyed by location, SKU and time of the count: importing it again changes
    nothing. Counts are applied in time order; one below the units reserved for open
    orders is a reject."""
    _reject_unknown_locations(conn, ctx, batch)
    cols = {c: batch.values(c) for c in ("location_id", "sku", "on_hand", "counted_at")}
    now = now_utc()
    applied, touched = 0, set()
    for i in sorted(np.flatnonzero(batch.ok), key=lambda i: (cols["counted_at"][i], i)):
        location, sku, at = cols["location_id"][i], cols["sku"][i], cols["counted_at"][i]
        try:
            done = count_once(
                conn,
                ctx.group_id,
                sku,
                location,
                cols["on_hand"][i],
                now,
                f"import: count of {at.isoformat()}",
                f"import:count:{location}:{sku}:{at.isoformat()}",
            )
        except OutOfStock:
            reserved = level(conn, ctx.group_id, sku, location).reserved
            batch.reject(int(i), "on_hand", f"below the {reserved} units reserved for open orders")
            continue
        if done is not None:
            applied += 1
            touched.add(sku)
    announce(conn, ctx.group_id, sorted(touched), now)
    return applied


KINDS: tuple[Kind, ...] = (
    Kind(
        "stock_locations",
        (
            text_field("location_id", True, 64),
            Field("kind", "enum", choices=LOCATION_KINDS, default="store"),
            text_field("store_id", max_len=64),
            text_field("city", True, 64),
            Field("lat_e6", "int"),
            Field("lon_e6", "int"),
        ),
        _check_stock_locations,
        load_simple(
            "stock_locations",
            "location_id",
            ("location_id", "kind", "store_id", "city", "lat_e6", "lon_e6"),
        ),
    ),
    Kind(
        "channel_locations",
        (CHANNEL, text_field("location_id", True, 64), Field("safety_stock", "int", minimum=0)),
        _check_channel_locations,
        _load_channel_locations,
    ),
    Kind(
        "stock",
        (
            text_field("location_id", True, 64),
            text_field("sku", True, 64),
            Field("on_hand", "int", required=True, minimum=0),
            Field("counted_at", "timestamp", required=True),
        ),
        _check_stock,
        _load_stock,
    ),
)
