"""The campaigns API: HQ plans, launches and reads a campaign's report; the members behind
its figures page; analysts read, never write; bad plans name the field."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import text
from tests.api.conftest import Api
from tests.api.test_coupons_api import TEMPLATE

from siyu.campaigns import global_holdout

PLAN: dict[str, Any] = {
    "code": "WAKE",
    "name_zh": "唤醒",
    "name_en": "Wake-up",
    "target": {"stage": "at_risk"},
    "starts_at": "2026-01-01T00:00:00Z",
    "ends_at": "2099-01-01T00:00:00Z",
    "coupons": ["SPRING20"],
    "holdout_bp": 5000,
}


def test_plan_launch_report_and_members(api: Api) -> None:
    admin = api.as_("admin")
    assert (
        api.client.put("/v1/coupon-templates/SPRING20", json=TEMPLATE, headers=admin).status_code
        == 200
    )
    with api.store.engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO member_stages (group_id, member_id, stage, orders, computed_at)
                    SELECT group_id, member_id, 'at_risk', 1, CURRENT_TIMESTAMP FROM members
                    WHERE group_id = :g AND status = 'active'"""),
            {"g": api.store.group_id},
        )
    put = api.client.put("/v1/campaigns/WAKE", json=PLAN, headers=admin)
    assert put.status_code == 200 and put.json()["status"] == "draft"
    assert (
        api.client.put("/v1/campaigns/WAKE", json=PLAN, headers=api.as_("analyst")).status_code
        == 403
    )
    launched = api.client.post("/v1/campaigns/WAKE:launch", headers=admin).json()
    assert launched["treatment"] + launched["holdout"] == launched["target"] > 0
    assert launched["coupons"]["SPRING20"]["issued"] == launched["treatment"]
    again = api.client.put("/v1/campaigns/WAKE", json=PLAN, headers=admin)
    assert (again.status_code, again.json()["code"]) == (409, "campaign_state")
    report = api.client.get("/v1/campaigns/WAKE/report", headers=api.as_("analyst")).json()
    assert report["treatment"]["members"] == launched["treatment"]
    assert report["coupons_issued"] == launched["treatment"]
    page = api.client.get("/v1/campaigns/WAKE/members?arm=holdout&limit=1", headers=admin).json()
    assert page["total"] == launched["holdout"] and len(page["member_ids"]) <= 1
    listed = api.client.get("/v1/campaigns", headers=api.as_("analyst")).json()["campaigns"]
    assert [(c["code"], c["status"]) for c in listed] == [("WAKE", "launched")]


def test_bad_plans_name_the_field(api: Api) -> None:
    admin = api.as_("admin")
    bad = api.client.put("/v1/campaigns/WAKE", json={**PLAN, "holdout_bp": 9000}, headers=admin)
    assert bad.status_code == 422 and "holdout_bp" in bad.text
    other = api.client.put("/v1/campaigns/OTHER", json=PLAN, headers=admin)
    assert other.status_code == 422 and "code" in other.text
    missing = api.client.post("/v1/campaigns/NOPE:launch", headers=admin)
    assert missing.status_code == 404 and "campaign" in missing.text
    api.client.put("/v1/campaigns/WAKE", json={**PLAN, "coupons": ["NOPE"]}, headers=admin)
    no_template = api.client.post("/v1/campaigns/WAKE:launch", headers=admin)
    assert no_template.status_code == 404 and "template" in no_template.text


def test_a_campaigns_lottery_its_draws_and_winners(api: Api) -> None:
    from tests.api.test_lotteries_api import POOL
    from tests.api.test_lotteries_api import _pool as stock_and_define

    admin = api.as_("admin")
    plan = {**PLAN, "coupons": [], "lottery": "LUCK", "holdout_bp": 0}
    # a plan naming a pool that does not exist: 404 naming the field
    missing = api.client.put("/v1/campaigns/WAKE", json=plan, headers=admin)
    assert missing.status_code == 404 and "lottery" in missing.json()["detail"]
    # a pool anyone may enter: 422 naming the field
    stock_and_define(api)
    free = api.client.put("/v1/campaigns/WAKE", json={**plan, "lottery": "SPRING"}, headers=admin)
    assert free.status_code == 422 and "lottery" in free.text
    # the campaign's own pool, for the whole target (no holdout)
    pool = {**POOL, "code": "LUCK", "entry": "campaign", "campaign": "WAKE"}
    defined = api.client.put("/v1/lottery-pools/LUCK", json=pool, headers=admin)
    assert defined.status_code == 200 and defined.json()["campaign"] == "WAKE"
    with api.store.engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO member_stages (group_id, member_id, stage, orders, computed_at)
                    SELECT group_id, member_id, 'at_risk', 1, CURRENT_TIMESTAMP FROM members
                    WHERE group_id = :g AND status = 'active'"""),
            {"g": api.store.group_id},
        )
    # a member not yet granted (the campaign not launched) is refused its draw
    me = {**api.as_("member"), "Idempotency-Key": "luck-1"}
    assert api.client.put("/v1/campaigns/WAKE", json=plan, headers=admin).status_code == 200
    early = api.client.post("/v1/lottery-pools/LUCK:draw", json={}, headers=me)
    assert (early.status_code, early.json()["code"]) == (409, "entry_not_accepted")
    assert "member_id" in early.json()["detail"]
    # once launched, it draws (every roll wins), and the report counts it
    assert api.client.post("/v1/campaigns/WAKE:launch", headers=admin).status_code == 200
    me = {**api.as_("member"), "Idempotency-Key": "luck-2"}
    won = api.client.post("/v1/lottery-pools/LUCK:draw", json={}, headers=me)
    assert won.status_code == 200 and won.json()["outcome"] == "won", won.text
    report = api.client.get("/v1/campaigns/WAKE/report", headers=api.as_("analyst")).json()
    assert (report["lottery"], report["draws"], report["wins"], report["winners"]) == (
        "LUCK",
        1,
        1,
        1,
    )
    winners = api.client.get(
        "/v1/campaigns/WAKE/members?arm=treatment&who=winners", headers=api.as_("analyst")
    ).json()
    assert winners["member_ids"] == [api.members["M1"]]


def test_hq_sets_the_global_holdout_analysts_read_it_and_launches_leave_it_out(
    api: Api,
) -> None:
    admin, analyst = api.as_("admin"), api.as_("analyst")
    # given no holdout ever set
    assert api.client.get("/v1/global-holdout", headers=analyst).json() == {
        "share_bp": 0,
        "updated_at": None,
        "started_at": None,
    }
    # a share out of range, or not a number, is refused naming the field; nothing is set
    for bad in ({"share_bp": 5001}, {"share_bp": -1}, {"share_bp": "half"}, {}):
        refused = api.client.put("/v1/global-holdout", json=bad, headers=admin)
        assert refused.status_code == 422 and "share_bp" in refused.text, bad
    assert api.client.get("/v1/global-holdout", headers=analyst).json()["share_bp"] == 0
    # an analyst cannot set it
    assert (
        api.client.put("/v1/global-holdout", json={"share_bp": 100}, headers=analyst).status_code
        == 403
    )
    # when HQ holds out every member it can (half), then a campaign is launched
    put = api.client.put("/v1/global-holdout", json={"share_bp": 5000}, headers=admin)
    assert put.status_code == 200, put.text
    assert put.json()["share_bp"] == 5000 and put.json()["updated_at"].endswith("Z")
    assert "salt" not in put.json()
    api.client.put("/v1/coupon-templates/SPRING20", json=TEMPLATE, headers=admin)
    api.client.put("/v1/campaigns/WAKE", json=PLAN, headers=admin)
    launched = api.client.post("/v1/campaigns/WAKE:launch", headers=admin).json()
    # then the launch leaves out exactly the members the holdout holds (Python's bucket)
    with api.store.engine.connect() as conn:
        held = global_holdout.current(conn, api.store.group_id)
        targeted = (
            conn.execute(
                text(
                    "SELECT member_id FROM member_stages WHERE group_id = :g AND stage = 'at_risk'"
                ),
                {"g": api.store.group_id},
            )
            .scalars()
            .all()
        )
    assert launched["global_holdout"] == sum(held.holds(int(m)) for m in targeted)
    assert launched["target"] == len(targeted)
    # and setting it again keeps the salt (the same members stay held out)
    api.client.put("/v1/global-holdout", json={"share_bp": 5000}, headers=admin)
    with api.store.engine.connect() as conn:
        assert global_holdout.current(conn, api.store.group_id).salt == held.salt


def test_the_global_holdouts_report_and_its_members(api: Api) -> None:
    admin, analyst = api.as_("admin"), api.as_("analyst")
    # nothing held out: no report, and the route says how to set one
    missing = api.client.get("/v1/global-holdout/report", headers=analyst)
    assert missing.status_code == 404 and "/v1/global-holdout" in missing.text
    api.client.put("/v1/global-holdout", json={"share_bp": 2500}, headers=admin)
    time.sleep(1.1)  # times are stored to the second: read in the next one
    # months out of range are refused naming the field
    for bad in ("0", "25", "six"):
        refused = api.client.get(f"/v1/global-holdout/report?months={bad}", headers=analyst)
        assert refused.status_code == 422 and "months" in refused.text, bad
    # when an analyst reads three months
    got = api.client.get("/v1/global-holdout/report?months=3", headers=analyst)
    assert got.status_code == 200, got.text
    doc = got.json()
    # then the months are the brand's, the last up to now, and this month is when the
    # holdout began (it was set just now)
    assert doc["share_bp"] == 2500 and doc["timezone"] == "Asia/Shanghai"
    assert [m["phase"] for m in doc["months"]] == ["before", "before", "started"]
    assert doc["months"][-1]["end"] == doc["until"]
    # and every live member is on one side, about a quarter held out
    with api.store.engine.connect() as conn:
        live = conn.execute(
            text("SELECT COUNT(*) FROM members WHERE group_id = :g AND status <> 'merged'"),
            {"g": api.store.group_id},
        ).scalar_one()
    last = doc["months"][-1]
    assert last["held_out"]["people"] + last["others"]["people"] == live
    # and the members behind the held-out count page through the same members
    month = last["period"]
    page = api.client.get(
        f"/v1/global-holdout/members?period={month}&side=held_out&limit=5", headers=analyst
    ).json()
    assert page["total"] == last["held_out"]["people"] and len(page["member_ids"]) <= 5
    with api.store.engine.connect() as conn:
        held = global_holdout.current(conn, api.store.group_id)
    assert all(held.holds(m) for m in page["member_ids"])
    # and a period that is not a month of the report is refused naming it
    refused = api.client.get("/v1/global-holdout/members?period=1999-01", headers=analyst)
    assert refused.status_code == 422 and "period" in refused.text
