"""The campaigns API: HQ plans, launches and reads a campaign's report; the members behind
its figures page; analysts read, never write; bad plans name the field."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from tests.api.conftest import Api
from tests.api.test_coupons_api import TEMPLATE

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
