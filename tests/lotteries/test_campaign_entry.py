"""A campaign's lottery on SQLite and PostgreSQL: the pool (entry `campaign`) is entered by
the campaign's treated members who were granted its incentives, during the campaign's
period, and by nobody else: not the holdout, not the treated over the budget, not a
stranger. A member merged by OneID draws as its survivor."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError
from tests.conftest import Store
from tests.coupons.helpers import new_member, save_template
from tests.lotteries.helpers import (
    CAMPAIGN_END,
    CAMPAIGN_START,
    DURING,
    campaign_pool,
    campaign_with_lottery,
    stock_prizes,
)

from siyu.identity.ingest import IdentifierEncoder
from siyu.identity.service import merge_members
from siyu.lotteries import pools
from siyu.lotteries.draw import DrawAsk, Drawn, draw, draw_many
from siyu.lotteries.errors import EntryNotAccepted, PoolClosed

POOL = {
    "code": "LUCK",
    "name_zh": "抽奖",
    "name_en": "Draw",
    "starts_at": "2026-02-01T00:00:00Z",
    "ends_at": "2026-05-01T00:00:00Z",
    "per_member": 3,
    "prizes": [
        {
            "code": "A",
            "name_zh": "袋",
            "name_en": "Bag",
            "sku": "BAG",
            "location_id": "S1",
            "odds_ppm": 1,
            "units": 1,
        }
    ],
}


def test_a_campaign_pool_names_its_campaign() -> None:
    # a campaign pool without its campaign, or a campaign named by another entry: refused
    with pytest.raises(ValidationError, match="campaign: required"):
        pools.PoolDef.model_validate({**POOL, "entry": "campaign"})
    with pytest.raises(ValidationError, match="campaign: only for entry 'campaign'"):
        pools.PoolDef.model_validate({**POOL, "entry": "free", "campaign": "SPRING"})
    doc = pools.PoolDef.model_validate({**POOL, "entry": "campaign", "campaign": "SPRING"})
    assert doc.campaign == "SPRING"
    # a pool of another entry keeps the digest it had before campaigns could be named, so
    # defining it again is still a replay
    free = pools.PoolDef.model_validate({**POOL, "entry": "free"})
    before = free.model_dump_json(exclude={"campaign"})
    assert '"campaign"' not in before
    assert free.digest == hashlib.sha256(before.encode()).hexdigest()


def test_only_granted_treated_members_draw_in_the_campaigns_period(
    store: Store, encoder: IdentifierEncoder
) -> None:
    # given a stranger, and thirty at-risk members in campaign SPRING (half held out)
    # whose budget pays three members' coupons, offering pool LUCK
    stock_prizes(store.engine, store.group_id, {"BAG": 10, "SAMPLE": 50})
    stranger = new_member(store.engine, encoder, store.group_id, "stranger")
    ids = [new_member(store.engine, encoder, store.group_id, f"u-{i}") for i in range(30)]
    save_template(store.engine, store.group_id)  # cost 1,500
    pool = campaign_pool(store.engine, store.group_id)
    assert (pool.entry, pool.campaign) == ("campaign", "SPRING")
    arms = campaign_with_lottery(
        store.engine, store.group_id, ids, coupons=["SPRING20"], budget_fen=1500 * 3
    )
    granted, over, held = arms["granted"], arms["over_budget"], arms["holdout"]
    assert len(granted) == 3 and over and held
    # when a granted member draws during the campaign: accepted
    done = draw(store.engine, store.group_id, "LUCK", DrawAsk(granted[0], "g0"), DURING)
    assert done.member_id == granted[0]
    # and the holdout, the treated over the budget, and the stranger are refused, in one
    # batch beside granted members, who still draw
    asks = [
        DrawAsk(held[0], "h0"),
        DrawAsk(granted[1], "g1"),
        DrawAsk(over[0], "o0"),
        DrawAsk(stranger, "s0"),
        DrawAsk(granted[2], "g2"),
    ]
    out = draw_many(store.engine, store.group_id, "LUCK", asks, DURING)
    assert [type(o).__name__ for o in out] == [
        "EntryNotAccepted",
        "Drawn",
        "EntryNotAccepted",
        "EntryNotAccepted",
        "Drawn",
    ]
    refused = out[0]
    assert isinstance(refused, EntryNotAccepted)
    assert str(refused).startswith(f"member_id: member {held[0]} was not granted campaign SPRING")
    assert "holdout" in str(refused)
    assert store.count("prize_draws") == 3
    # and nobody draws before the campaign starts or from its end, though the pool is open
    for at in (CAMPAIGN_START - timedelta(seconds=1), CAMPAIGN_END, datetime(2026, 4, 20)):
        with pytest.raises(EntryNotAccepted, match="campaign: pool LUCK is entered while"):
            draw(store.engine, store.group_id, "LUCK", DrawAsk(granted[0], f"t{at}"), at)
    draw(store.engine, store.group_id, "LUCK", DrawAsk(granted[0], "edge"), CAMPAIGN_START)
    # and the pool's own window still applies
    with pytest.raises(PoolClosed):
        draw(
            store.engine, store.group_id, "LUCK", DrawAsk(granted[0], "late"), datetime(2026, 6, 1)
        )
    assert store.count("prize_draws") == 4


def test_a_pool_for_a_campaign_that_does_not_exist_refuses_every_draw(
    store: Store, encoder: IdentifierEncoder
) -> None:
    stock_prizes(store.engine, store.group_id, {"BAG": 10, "SAMPLE": 50})
    m = new_member(store.engine, encoder, store.group_id, "u1")
    campaign_pool(store.engine, store.group_id, campaign="NOPE")
    with pytest.raises(EntryNotAccepted, match="campaign NOPE, which does not exist"):
        draw(store.engine, store.group_id, "LUCK", DrawAsk(m, "a"), DURING)
    assert store.count("prize_draws") == 0


def test_a_merged_member_draws_as_its_survivor(store: Store, encoder: IdentifierEncoder) -> None:
    # given a member outside the campaign (older, so it survives a merge), and granted
    # members of campaign SPRING
    stock_prizes(store.engine, store.group_id, {"BAG": 10, "SAMPLE": 50})
    elder = new_member(store.engine, encoder, store.group_id, "o-elder", "openid")
    ids = [new_member(store.engine, encoder, store.group_id, f"u-{i}") for i in range(12)]
    campaign_pool(store.engine, store.group_id)
    granted = campaign_with_lottery(store.engine, store.group_id, ids, holdout_bp=1000)["granted"]
    with pytest.raises(EntryNotAccepted):
        draw(store.engine, store.group_id, "LUCK", DrawAsk(elder, "before"), DURING)
    # when OneID finds the elder and a granted member are one person
    _, survivor = merge_members(store.engine, store.group_id, elder, granted[0], "same person")
    assert survivor == elder
    # then the survivor draws (the campaign granted the member it absorbed), and a draw
    # asked by the absorbed member's id is the survivor's, sharing its per-member limit
    first = draw(store.engine, store.group_id, "LUCK", DrawAsk(elder, "a"), DURING)
    second = draw(store.engine, store.group_id, "LUCK", DrawAsk(granted[0], "b"), DURING)
    assert (first.member_id, second.member_id) == (elder, elder)
    third = draw_many(
        store.engine,
        store.group_id,
        "LUCK",
        [DrawAsk(elder, "c"), DrawAsk(granted[1], "d"), DrawAsk(granted[0], "e")],
        DURING,
    )
    assert isinstance(third[0], Drawn) and isinstance(third[1], Drawn)
    assert type(third[2]).__name__ == "DrawLimitReached"  # 3 draws per member, all used
