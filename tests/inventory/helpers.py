"""A small network of locations, and the inventory invariants checked in the database."""

from __future__ import annotations

from sqlalchemy import Engine, text

LOCATIONS = [
    # location, kind, store, city, lat, lon (microdegrees)
    ("S1", "store", "S1", "上海", 31_230_000, 121_470_000),
    ("S2", "store", "S2", "广州", 23_130_000, 113_260_000),
    ("W1", "warehouse", None, "上海", 31_100_000, 121_300_000),
]


def network(engine: Engine, group_id: str) -> None:
    with engine.begin() as conn:
        for loc, kind, store, city, lat, lon in LOCATIONS:
            conn.execute(
                text("""INSERT INTO stock_locations (group_id, location_id, kind, store_id, city,
                          lat_e6, lon_e6) VALUES (:g, :l, :k, :s, :c, :lat, :lon)"""),
                {"g": group_id, "l": loc, "k": kind, "s": store, "c": city, "lat": lat, "lon": lon},
            )
        for loc in ("W1", "S1"):
            conn.execute(
                text("""INSERT INTO channel_locations (group_id, channel, location_id)
                        VALUES (:g, 'tmall', :l)"""),
                {"g": group_id, "l": loc},
            )
        conn.execute(
            text("""INSERT INTO channel_safety_stock (group_id, channel, units)
                    VALUES (:g, 'tmall', 2)"""),
            {"g": group_id},
        )


def check_invariants(engine: Engine, group_id: str) -> None:
    with engine.connect() as conn:
        levels = conn.execute(
            text("""SELECT sku, location_id, on_hand, reserved FROM stock_levels
                    WHERE group_id = :g"""),
            {"g": group_id},
        ).all()
        moved = {
            (r.sku, r.location_id): (int(r.dh), int(r.dr))
            for r in conn.execute(
                text("""SELECT sku, location_id, SUM(on_hand_delta) AS dh,
                          SUM(reserved_delta) AS dr
                        FROM stock_movements WHERE group_id = :g GROUP BY sku, location_id"""),
                {"g": group_id},
            )
        }
        open_lines = {
            (r.sku, r.location_id): int(r.qty)
            for r in conn.execute(
                text("""SELECT l.sku, l.location_id, SUM(l.qty) AS qty
                        FROM reservation_lines l JOIN reservations r
                          ON r.reservation_id = l.reservation_id
                        WHERE r.group_id = :g AND r.status = 'open'
                        GROUP BY l.sku, l.location_id"""),
                {"g": group_id},
            )
        }
        for sku, location, on_hand, reserved in levels:
            # on hand = sum of movements; reserved = open reservations; available >= 0
            assert (on_hand, reserved) == moved.get((sku, location), (0, 0)), (sku, location)
            assert reserved == open_lines.get((sku, location), 0), (sku, location)
            assert on_hand - reserved >= 0
