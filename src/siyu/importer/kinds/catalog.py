"""Reference kinds: brands, stores, products, guides."""

from __future__ import annotations

from siyu.importer.batch import Batch, Context
from siyu.importer.fields import Field
from siyu.importer.kinds.base import (
    Kind,
    check_nothing,
    load_simple,
    text_field,
)


def _check_stores(ctx: Context, batch: Batch) -> None:
    batch.check_reference("brand_id", ctx.brands, "brand")


def _check_products(ctx: Context, batch: Batch) -> None:
    batch.check_reference("brand_id", ctx.brands, "brand")


def _check_guides(ctx: Context, batch: Batch) -> None:
    batch.check_reference("store_id", ctx.stores, "store")


KINDS: tuple[Kind, ...] = (
    Kind(
        "brands",
        (text_field("brand_id", True, 64), text_field("name", True)),
        check_nothing,
        load_simple("brands", "brand_id", ("brand_id", "name")),
        record_key=("brand_id",),
    ),
    Kind(
        "stores",
        (
            text_field("store_id", True, 64),
            text_field("brand_id", True, 64),
            text_field("name", True),
            text_field("city", True, 64),
            text_field("region", max_len=64),
            Field("kind", "enum", choices=("store", "counter", "warehouse"), default="store"),
            Field("opened_at", "timestamp"),
        ),
        _check_stores,
        load_simple(
            "stores",
            "store_id",
            ("store_id", "brand_id", "name", "city", "region", "kind", "opened_at"),
        ),
        record_key=("store_id",),
    ),
    Kind(
        "products",
        (
            text_field("sku", True, 64),
            text_field("brand_id", True, 64),
            text_field("name", True),
            text_field("category", True, 64),
            Field("list_price_fen", "fen", required=True),
        ),
        _check_products,
        load_simple("products", "sku", ("sku", "brand_id", "name", "category", "list_price_fen")),
        record_key=("sku",),
    ),
    Kind(
        "guides",
        (
            text_field("guide_id", True, 64),
            text_field("store_id", True, 64),
            text_field("alias", True, 64),
            Field("hired_at", "timestamp"),
        ),
        _check_guides,
        load_simple("guides", "guide_id", ("guide_id", "store_id", "alias", "hired_at")),
        record_key=("guide_id",),
    ),
)
