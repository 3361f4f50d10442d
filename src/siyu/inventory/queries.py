"""Stock's reads for the async read port (siyu.store.reads)."""

from siyu.store.reads import Sql

# A stock location of the group (its store and city, for a store key's scope).
LOCATION = Sql(
    "SELECT location_id, store_id, city FROM stock_locations "
    "WHERE group_id = :g AND location_id = :l"
)
# Every location's levels of one SKU.
LEVELS = Sql(
    """SELECT l.location_id, s.store_id, s.city, l.on_hand, l.reserved FROM stock_levels l
       JOIN stock_locations s ON s.group_id = l.group_id AND s.location_id = l.location_id
       WHERE l.group_id = :g AND l.sku = :s ORDER BY l.location_id"""
)
# The channel a reservation was made for (a channel key may touch only its own).
RESERVATION = Sql("SELECT channel FROM reservations WHERE group_id = :g AND reservation_id = :r")
