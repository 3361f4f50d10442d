"""The catalog's reads for the async read port (siyu.store.reads): the brand group's
brands and stores by code, which the console offers as choices (the segment builder)."""

from __future__ import annotations

from siyu.store.reads import Sql

BRANDS = Sql("SELECT brand_id, name FROM brands WHERE group_id = :g ORDER BY brand_id")
STORES = Sql("SELECT store_id, name FROM stores WHERE group_id = :g ORDER BY store_id")
