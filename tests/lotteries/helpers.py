"""Set-up shared by the lottery tests: a pool of prizes held at store S1, stocked through
inventory's own movements, and members made by OneID."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text
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


# A campaign's lottery: the pool is open longer than the campaign runs, so the campaign's
# period (not the pool's) is what refuses a draw before or after it.
CAMPAIGN_START = T0
CAMPAIGN_END = datetime(2026, 3, 31, 10, 0, tzinfo=UTC)


def campaign_pool(engine: Engine, group_id: str, **fields: Any) -> pools.Pool:
    """Pool LUCK, entered by campaign SPRING's granted members, from February to May."""
    doc: dict[str, Any] = {
        "code": "LUCK",
        "entry": "campaign",
        "campaign": "SPRING",
        "starts_at": datetime(2026, 2, 1, tzinfo=UTC),
        "ends_at": datetime(2026, 5, 1, tzinfo=UTC),
    }
    return define_pool(engine, group_id, **{**doc, **fields})


def campaign_with_lottery(
    engine: Engine, group_id: str, members: list[int], **fields: Any
) -> dict[str, list[int]]:
    """Campaign SPRING on the at-risk stage (`members`), offering pool LUCK, launched at
    its start; returns its members by what they were given: `granted` (treated, within
    the budget), `over_budget` (treated, given nothing) and `holdout`."""
    from siyu.campaigns import plan as plans
    from siyu.campaigns.launch import launch

    with engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO member_stages (group_id, member_id, stage, orders, computed_at)
                    VALUES (:g, :m, 'at_risk', 2, :at)"""),
            [{"g": group_id, "m": m, "at": T0.replace(tzinfo=None)} for m in members],
        )
    doc: dict[str, Any] = {
        "code": "SPRING",
        "name_zh": "春季唤醒",
        "name_en": "Spring wake-up",
        "target": {"stage": "at_risk"},
        "starts_at": CAMPAIGN_START.isoformat(),
        "ends_at": CAMPAIGN_END.isoformat(),
        "lottery": "LUCK",
        "holdout_bp": 5000,
    }
    plans.save(engine, group_id, plans.Plan.model_validate({**doc, **fields}), None)
    launch(engine, group_id, "SPRING", at=CAMPAIGN_START)
    out: dict[str, list[int]] = {"granted": [], "over_budget": [], "holdout": []}
    with engine.connect() as conn:
        for m, arm, granted_at in conn.execute(
            text("""SELECT member_id, arm, granted_at FROM campaign_members
                    WHERE group_id = :g ORDER BY member_id"""),
            {"g": group_id},
        ):
            kind = "holdout" if arm == "holdout" else "granted" if granted_at else "over_budget"
            out[kind].append(int(m))
    return out
