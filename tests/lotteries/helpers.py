"""Set-up shared by the lottery tests: a pool of prizes held at store S1, stocked through
inventory's own movements, and members made by OneID."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from tests.inventory.helpers import network

from siyu.inventory.stock import set_stock
from siyu.lotteries import pools

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
DURING = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SEED = bytes(range(32))


def stock_prizes(engine: Engine, group_id: str, units: dict[str, int]) -> None:
    """The network of tests/inventory and `units` of each SKU received at store S1."""
    network(engine, group_id)
    for sku, n in units.items():
        set_stock(
            engine,
            group_id,
            sku,
            "S1",
            delta=n,
            kind="receive",
            reason="prizes in",
            idempotency_key=f"in:{sku}",
        )


def define_pool(engine: Engine, group_id: str, **fields: Any) -> pools.Pool:
    doc: dict[str, Any] = {
        "code": "SPRING",
        "name_zh": "春季抽奖",
        "name_en": "Spring draw",
        "starts_at": T0,
        "ends_at": datetime(2026, 3, 31, tzinfo=UTC),
        "entry": "free",
        "per_member": 3,
        "prizes": [
            {
                "code": "A-BAG",
                "name_zh": "帆布袋",
                "name_en": "Tote bag",
                "sku": "BAG",
                "location_id": "S1",
                "odds_ppm": 100_000,
                "units": 10,
            },
            {
                "code": "B-SAMPLE",
                "name_zh": "试用装",
                "name_en": "Sample",
                "sku": "SAMPLE",
                "location_id": "S1",
                "odds_ppm": 400_000,
                "units": 50,
            },
        ],
    }
    return pools.define(
        engine, group_id, pools.PoolDef.model_validate({**doc, **fields}), None, SEED
    )
