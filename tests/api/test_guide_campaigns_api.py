"""HQ tasks and training over HTTP: an admin authors and assigns a task (M1, at risk and
served by G1, gets one, with its script in G1's list); a guide reads only its own training
and marks an item done; HQ reads the report; a body for another code is refused."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from tests.api.conftest import Api

from siyu.guides.training import parse_item, save_item

TASK = {
    "code": "winback",
    "title_zh": "回访",
    "title_en": "Call",
    "target": {"kind": "stage", "value": "at_risk"},
    "due_on": "2030-01-10",
    "script": "您好，新品到店",
}


def test_author_assign_list_report_and_training(api: Api) -> None:
    store = api.store
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO member_stages (group_id, member_id, stage, orders, last_order_at,"
                " computed_at) VALUES (:g, :m, 'at_risk', 1, :t, :t)"
            ),
            {"g": store.group_id, "m": api.members["M1"], "t": datetime(2024, 1, 2, 10)},
        )
    admin, guide = api.as_("admin"), api.as_("guide")
    wrong = api.client.put("/v1/guide-tasks/other", json=TASK, headers=admin)
    assert wrong.status_code == 422 and "code" in wrong.json()["detail"]
    bad = api.client.put("/v1/guide-tasks/winback", json={**TASK, "due_on": "x"}, headers=admin)
    assert bad.status_code == 422
    made = api.client.put("/v1/guide-tasks/winback", json={**TASK, "holdout_pct": 0}, headers=admin)
    assert made.status_code == 200 and made.json()["created"] is True
    assigned = api.client.post("/v1/guide-tasks/winback:assign", headers=admin).json()
    assert (assigned["tasked"], assigned["no_guide"]) == (1, 0)
    listed = api.client.get("/v1/guides/G1/tasks", headers=guide).json()
    (task,) = [t for t in listed["tasks"] if t["campaign_code"] == "winback"]
    assert (task["member_id"], task["script"]) == (api.members["M1"], "您好，新品到店")
    report = api.client.get("/v1/guide-tasks/winback/report", headers=api.as_("analyst"))
    assert report.status_code == 200 and report.json()["completion"]["assigned"] == 1
    # training: the guide reads its own, not another guide's, and completes an item
    item = {"code": "sop", "title_zh": "话术", "title_en": "Script", "body": "先问好"}
    save_item(store.engine, store.group_id, parse_item(item))
    assert api.client.get("/v1/guides/G2/training", headers=guide).status_code == 403
    done = api.client.post("/v1/training/sop:complete", headers=guide)
    assert done.status_code == 200 and done.json()["recorded"] is True
    (mine,) = api.client.get("/v1/guides/G1/training", headers=guide).json()["items"]
    assert mine["done_at"] is not None and mine["completed"] == 1
    missing = api.client.post("/v1/training/nope:complete", headers=guide)
    assert missing.status_code == 404 and missing.json()["code"] == "training_not_found"
