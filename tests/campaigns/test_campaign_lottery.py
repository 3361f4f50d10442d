"""A campaign offering a lottery, on SQLite and PostgreSQL: the plan names a pool that
exists and is the campaign's (saving or launching says which field when not), and the
report counts the pool's draws, wins and winners, with the members behind the winners,
against numbers worked out by hand."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError as PlanInvalid
from sqlalchemy import text
from tests.conftest import Store
from tests.coupons.helpers import new_member
from tests.lotteries.helpers import (
    CAMPAIGN_END,
    CAMPAIGN_START,
    campaign_pool,
    campaign_with_lottery,
    define_pool,
    stock_prizes,
)

from siyu.campaigns import plan as plans
from siyu.campaigns.launch import launch
from siyu.campaigns.report import members, report
from siyu.errors import NotFoundError, ValidationError
from siyu.identity.ingest import IdentifierEncoder
from siyu.identity.service import merge_members
from siyu.lotteries.draw import DrawAsk, draw


def _plan(**fields: Any) -> plans.Plan:
    doc: dict[str, Any] = {
        "code": "SPRING",
        "name_zh": "春季唤醒",
        "name_en": "Spring wake-up",
        "target": {"stage": "at_risk"},
        "starts_at": CAMPAIGN_START.isoformat(),
        "ends_at": CAMPAIGN_END.isoformat(),
        "lottery": "LUCK",
    }
    return plans.Plan.model_validate({**doc, **fields})


def test_a_lottery_alone_is_an_incentive() -> None:
    assert _plan().lottery == "LUCK" and not _plan().coupons
    with pytest.raises(PlanInvalid, match="coupons or points_bonus or lottery"):
        _plan(lottery=None)
    with pytest.raises(PlanInvalid, match="lottery"):
        _plan(lottery="x" * 65)


def test_the_plans_pool_must_exist_and_be_the_campaigns(store: Store) -> None:
    stock_prizes(store.engine, store.group_id, {"BAG": 10, "SAMPLE": 50})
    # a pool that does not exist: 404 naming the field, nothing saved
    with pytest.raises(NotFoundError, match="lottery: no prize pool 'LUCK'"):
        plans.save(store.engine, store.group_id, _plan(), None)
    assert store.count("campaigns") == 0
    # a pool anyone may enter, or another campaign's: 422 naming the field
    define_pool(store.engine, store.group_id, code="FREE")
    with pytest.raises(ValidationError) as free:
        plans.save(store.engine, store.group_id, _plan(lottery="FREE"), None)
    assert free.value.field == "lottery"
    assert "entry 'campaign' naming campaign SPRING; it has entry 'free'" in free.value.rule
    campaign_pool(store.engine, store.group_id, code="OTHER", campaign="AUTUMN")
    with pytest.raises(ValidationError, match="it has entry campaign AUTUMN"):
        plans.save(store.engine, store.group_id, _plan(lottery="OTHER"), None)
    assert store.count("campaigns") == 0
    # the campaign's own pool: saved
    campaign_pool(store.engine, store.group_id)
    assert plans.save(store.engine, store.group_id, _plan(), None).plan.lottery == "LUCK"
    # and a launch checks it again: a plan stored naming a pool that is not there (an
    # older plan, a pool of another group) launches nothing
    with store.engine.begin() as conn:
        body = _plan(lottery="GONE").model_dump_json()
        conn.execute(
            text("UPDATE campaigns SET body = :b WHERE group_id = :g"),
            {"b": body, "g": store.group_id},
        )
    with pytest.raises(NotFoundError, match="lottery: no prize pool 'GONE'"):
        launch(store.engine, store.group_id, "SPRING", at=CAMPAIGN_START)
    with store.engine.connect() as conn:
        status = conn.execute(
            text("SELECT status FROM campaigns WHERE group_id = :g"), {"g": store.group_id}
        ).scalar_one()
    assert status == "draft" and store.count("campaign_members") == 0


def test_the_report_counts_draws_wins_and_winners(store: Store, encoder: IdentifierEncoder) -> None:
    # given a pool whose every roll falls on prize A (two units), and prize B that no roll
    # reaches (so the pool is never exhausted: a roll on A once it is gone is sold_out)
    stock_prizes(store.engine, store.group_id, {"BAG": 10, "SAMPLE": 10})
    prizes = [
        {
            "code": "A",
            "name_zh": "帆布袋",
            "name_en": "Tote bag",
            "sku": "BAG",
            "location_id": "S1",
            "odds_ppm": 1_000_000,
            "units": 2,
        },
        {
            "code": "B",
            "name_zh": "试用装",
            "name_en": "Sample",
            "sku": "SAMPLE",
            "location_id": "S1",
            "odds_ppm": 0,
            "units": 5,
        },
    ]
    elder = new_member(store.engine, encoder, store.group_id, "o-elder", "openid")
    ids = [new_member(store.engine, encoder, store.group_id, f"u-{i}") for i in range(30)]
    campaign_pool(store.engine, store.group_id, prizes=prizes)
    arms = campaign_with_lottery(store.engine, store.group_id, ids)
    g = arms["granted"]
    assert len(g) >= 3 and arms["holdout"]
    # when g0 draws on day 1 (won), g1 on day 2 (won, the last A), g2 and g0 on day 3
    # (sold_out both)
    day = [CAMPAIGN_START + timedelta(days=d, hours=1) for d in range(4)]
    for member, key, at in ((g[0], "a", day[1]), (g[1], "b", day[2])):
        assert draw(store.engine, store.group_id, "LUCK", DrawAsk(member, key), at).outcome == "won"
    for member, key in ((g[2], "c"), (g[0], "d")):
        drawn = draw(store.engine, store.group_id, "LUCK", DrawAsk(member, key), day[3])
        assert drawn.outcome == "sold_out"
    # then the report: 4 draws, 2 won, by 2 members; prizes add nothing to the cost
    out = report(store.engine, store.group_id, "SPRING", CAMPAIGN_END)
    assert (out.lottery, out.draws, out.wins, out.winners) == ("LUCK", 4, 2, 2)
    assert out.cost_fen == 0
    assert members(store.engine, store.group_id, "SPRING", "treatment", "winners") == sorted(g[:2])
    assert members(store.engine, store.group_id, "SPRING", "holdout", "winners") == []
    # and up to the middle of day 1 only g0's draw counts
    early = report(store.engine, store.group_id, "SPRING", day[1] + timedelta(hours=1))
    assert (early.draws, early.wins, early.winners) == (1, 1, 1)
    assert members(
        store.engine, store.group_id, "SPRING", "treatment", "winners", day[1] + timedelta(hours=1)
    ) == [g[0]]
    # and a merge later changes no figure: the draw log keeps the member who drew
    merge_members(store.engine, store.group_id, elder, g[1], "same person")
    again = report(store.engine, store.group_id, "SPRING", CAMPAIGN_END)
    assert (again.draws, again.wins, again.winners) == (4, 2, 2)


def test_a_campaign_without_a_lottery_reports_none(
    store: Store, encoder: IdentifierEncoder
) -> None:
    from tests.coupons.helpers import save_template

    ids = [new_member(store.engine, encoder, store.group_id, f"u-{i}") for i in range(4)]
    save_template(store.engine, store.group_id)
    campaign_with_lottery(store.engine, store.group_id, ids, lottery=None, coupons=["SPRING20"])
    out = report(store.engine, store.group_id, "SPRING", CAMPAIGN_END)
    assert (out.lottery, out.draws, out.wins, out.winners) == (None, 0, 0, 0)
    assert members(store.engine, store.group_id, "SPRING", "treatment", "winners") == []
