"""Where stock is kept and which channels ship from where: set up by HQ (the API) or by an
import (`stock_locations`, `channel_locations`, `stock` files), with the same rules.

A location is a store's (its store key counts and moves its stock) or a warehouse (no
store: only HQ touches it). A channel ships from the locations named for it and keeps a
safety stock back from every SKU's available-to-promise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from siyu.catalog.models import CHANNELS
from siyu.errors import NotFoundError, ValidationError
from siyu.inventory.stock import MAX_UNITS, Level, announce, locked_level, move, now_utc

LOCATION_KINDS = ("store", "warehouse")
MAX_LAT_E6, MAX_LON_E6 = 90_000_000, 180_000_000


@dataclass(frozen=True)
class Location:
    location_id: str
    kind: str
    store_id: str | None
    city: str
    lat_e6: int | None = None
    lon_e6: int | None = None


@dataclass(frozen=True)
class ChannelLocations:
    channel: str
    locations: list[str]
    safety_stock: int


def location_rule(
    kind: str, store_id: str | None, lat_e6: int | None, lon_e6: int | None
) -> tuple[str, str] | None:
    """The first rule a location breaks, as (field, rule), or None: shared by the import
    and the API so that both refuse the same rows."""
    if kind not in LOCATION_KINDS:
        return "kind", f"one of {', '.join(LOCATION_KINDS)}"
    if kind == "store" and store_id is None:
        return "store_id", "a store location names its store"
    if kind == "warehouse" and store_id is not None:
        return "store_id", "a warehouse belongs to no store (only HQ moves its stock)"
    if (lat_e6 is None) != (lon_e6 is None):
        return "lon_e6", "lat_e6 and lon_e6 come together"
    if lat_e6 is not None and not -MAX_LAT_E6 <= lat_e6 <= MAX_LAT_E6:
        return "lat_e6", f"microdegrees from -{MAX_LAT_E6} to {MAX_LAT_E6}"
    if lon_e6 is not None and not -MAX_LON_E6 <= lon_e6 <= MAX_LON_E6:
        return "lon_e6", f"microdegrees from -{MAX_LON_E6} to {MAX_LON_E6}"
    return None


def put_location(engine: Engine, group_id: str, location: Location) -> Location:
    """Create or change a stock location (HQ). Changing a location's store changes which
    store key may touch its stock; its levels and movements stay."""
    broken = location_rule(location.kind, location.store_id, location.lat_e6, location.lon_e6)
    if broken is not None:
        raise ValidationError(*broken)
    with engine.begin() as conn:
        if location.store_id is not None and not _exists(
            conn, "stores", "store_id", group_id, location.store_id
        ):
            raise ValidationError("store_id", f"no store {location.store_id!r} in this brand group")
        conn.execute(
            text("""INSERT INTO stock_locations (group_id, location_id, kind, store_id, city,
                      lat_e6, lon_e6) VALUES (:g, :l, :k, :s, :c, :lat, :lon)
                    ON CONFLICT (group_id, location_id) DO UPDATE SET kind = excluded.kind,
                      store_id = excluded.store_id, city = excluded.city,
                      lat_e6 = excluded.lat_e6, lon_e6 = excluded.lon_e6"""),
            {
                "g": group_id,
                "l": location.location_id,
                "k": location.kind,
                "s": location.store_id,
                "c": location.city,
                "lat": location.lat_e6,
                "lon": location.lon_e6,
            },
        )
    return location


def put_channel_location(
    engine: Engine, group_id: str, channel: str, location_id: str, safety_stock: int | None
) -> ChannelLocations:
    """Let `channel` ship from `location_id` (HQ), and set the channel's safety stock when
    given. The new available-to-promise of what that location holds is queued for the
    channels in the same transaction."""
    if channel not in CHANNELS:
        raise ValidationError("channel", f"unknown channel {channel!r}")
    if safety_stock is not None and not 0 <= safety_stock <= MAX_UNITS:
        raise ValidationError("safety_stock", f"an integer from 0 to {MAX_UNITS}")
    with engine.begin() as conn:
        if not _exists(conn, "stock_locations", "location_id", group_id, location_id):
            raise NotFoundError(f"location_id: no location {location_id!r}")
        conn.execute(
            text("""INSERT INTO channel_locations (group_id, channel, location_id)
                    VALUES (:g, :c, :l) ON CONFLICT (group_id, channel, location_id) DO NOTHING"""),
            {"g": group_id, "c": channel, "l": location_id},
        )
        if safety_stock is not None:
            conn.execute(
                text("""INSERT INTO channel_safety_stock (group_id, channel, units)
                        VALUES (:g, :c, :u)
                        ON CONFLICT (group_id, channel) DO UPDATE SET units = excluded.units"""),
                {"g": group_id, "c": channel, "u": safety_stock},
            )
        skus = conn.execute(
            text("""SELECT DISTINCT l.sku FROM stock_levels l JOIN channel_locations c
                      ON c.group_id = l.group_id AND c.location_id = l.location_id
                    WHERE l.group_id = :g AND c.channel = :c"""),
            {"g": group_id, "c": channel},
        ).scalars()
        announce(conn, group_id, list(skus), now_utc())
        return channel_locations(conn, group_id, channel)


def channel_locations(conn: Connection, group_id: str, channel: str) -> ChannelLocations:
    """The locations a channel ships from and its safety stock."""
    locations = conn.execute(
        text("""SELECT location_id FROM channel_locations WHERE group_id = :g AND channel = :c
                ORDER BY location_id"""),
        {"g": group_id, "c": channel},
    ).scalars()
    units = conn.execute(
        text("SELECT units FROM channel_safety_stock WHERE group_id = :g AND channel = :c"),
        {"g": group_id, "c": channel},
    ).scalar()
    return ChannelLocations(channel, list(locations), int(units or 0))


def count_once(
    conn: Connection,
    group_id: str,
    sku: str,
    location_id: str,
    on_hand: int,
    now: datetime,
    reason: str,
    key: str,
) -> Level | None:
    """Set on hand to a count, as a `count` movement keyed by `key`, in the caller's
    transaction; None when the key was taken before (nothing changes). OutOfStock when
    the count is below what is reserved for open orders. The caller announces."""
    taken = conn.execute(
        text("SELECT 1 FROM stock_movements WHERE group_id = :g AND idempotency_key = :k"),
        {"g": group_id, "k": key},
    ).first()
    if taken is not None:
        return None
    current = locked_level(conn, group_id, sku, location_id)
    return move(
        conn,
        group_id,
        sku,
        location_id,
        "count",
        on_hand - current.on_hand,
        0,
        now,
        reason=reason,
        idempotency_key=key,
    )


def _exists(conn: Connection, table: str, column: str, group_id: str, value: Any) -> bool:
    found = conn.execute(
        text(f"SELECT 1 FROM {table} WHERE group_id = :g AND {column} = :v"),
        {"g": group_id, "v": value},
    ).first()
    return found is not None
