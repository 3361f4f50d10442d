"""Follow-up tasks over HTTP: a guide lists its tasks ranked and moves them (contacted with
a note, done, dismissed) with an Idempotency-Key; illegal moves are 409 naming the rule; a
guide can neither read nor move another guide's tasks; notes never reach a log."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import text
from tests.api.conftest import Api

from siyu.auth.keys import create_key
from siyu.guides.service import generate_tasks
from siyu.guides.tasks import TaskPlan
from siyu.privacy import Vault

NOTE = "电话回访：张女士下周到店"


@pytest.fixture
def task(api: Api) -> int:
    """M1 (served by G1, last order 2024-01-02) is at risk as of 2024-03-20: one task."""
    store = api.store
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO member_stages (group_id, member_id, stage, orders, last_order_at,"
                " computed_at) VALUES (:g, :m, 'at_risk', 1, :t, :t)"
            ),
            {"g": store.group_id, "m": api.members["M1"], "t": datetime(2024, 1, 2, 10)},
        )
        plan = TaskPlan(knee=3, as_of=datetime(2024, 3, 20), rates={1: 0.3}, returns={})
        assert generate_tasks(conn, store.group_id, plan).created == 1
        return int(
            conn.execute(
                text("SELECT task_id FROM guide_tasks WHERE group_id = :g"), {"g": store.group_id}
            ).scalar_one()
        )


def post(api: Api, path: str, role: str, key: str, body: Any = None) -> Any:
    headers = {**api.as_(role), "Idempotency-Key": key}
    return api.client.post(path, json=body, headers=headers)


def test_a_guide_lists_its_tasks_ranked_with_their_history(api: Api, task: int) -> None:
    response = api.client.get("/v1/guides/G1/tasks", headers=api.as_("guide"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 1
    (found,) = body["tasks"]
    assert found["task_id"] == task
    assert (found["member_id"], found["kind"], found["state"]) == (
        api.members["M1"],
        "win_back_at_risk",
        "open",
    )
    assert found["expected_value_fen"] == round(9_900 * 0.3)  # curve at k = 1, no returns
    assert found["name"] != "张三丰" and "*" in found["name"]  # masked
    assert [(e["state"], e["actor_key_id"]) for e in found["history"]] == [("open", None)]


def test_contacted_with_a_note_then_done_and_nothing_after(
    api: Api, task: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # when the guide logs a contact with a note
    first = post(api, f"/v1/tasks/{task}:contacted", "guide", "c-1", {"note": NOTE})
    assert first.status_code == 200, first.text
    assert (first.json()["previous_state"], first.json()["state"]) == ("open", "contacted")
    # a retry with the same key replays the answer and logs nothing twice
    again = post(api, f"/v1/tasks/{task}:contacted", "guide", "c-1", {"note": NOTE})
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    # the same key with another body is refused
    other = post(api, f"/v1/tasks/{task}:contacted", "guide", "c-1", {"note": "x"})
    assert other.status_code == 409 and other.json()["code"] == "idempotency_conflict"
    # then done
    done = post(api, f"/v1/tasks/{task}:done", "guide", "d-1")
    assert done.status_code == 200 and done.json()["state"] == "done"
    # and a closed task moves no more: 409 naming the rule, nothing applied
    for action in ("contacted", "done", "dismiss"):
        refused = post(api, f"/v1/tasks/{task}:{action}", "guide", f"late-{action}")
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "task_transition"
        assert "done and dismissed are final" in refused.json()["detail"]
    history = api.client.get("/v1/guides/G1/tasks?state=closed", headers=api.as_("guide"))
    events = history.json()["tasks"][0]["history"]
    guide_key = first.json()["actor_key_id"]
    assert [(e["state"], e["actor_key_id"], e["note"]) for e in events] == [
        ("open", None, None),
        ("contacted", guide_key, NOTE),
        ("done", guide_key, None),
    ]
    assert events[1]["actor_role"] == "guide"
    # the live list no longer holds it
    live = api.client.get("/v1/guides/G1/tasks", headers=api.as_("guide")).json()
    assert live["total"] == 0
    # the analyst sees who and when, not the note (free text, maybe personal)
    seen = api.client.get("/v1/guides/G1/tasks?state=done", headers=api.as_("analyst")).json()
    assert [e["note"] for e in seen["tasks"][0]["history"]] == [None, None, None]
    # and the note is in no log record
    assert NOTE not in caplog.text and "张女士" not in caplog.text


def test_dismiss_is_final_too(api: Api, task: int) -> None:
    assert post(api, f"/v1/tasks/{task}:dismiss", "admin", "x-1").status_code == 200
    refused = post(api, f"/v1/tasks/{task}:done", "guide", "x-2")
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        f"task {task} is dismissed, cannot become done: done and dismissed are final"
    )


def test_a_guide_cannot_read_or_move_another_guides_task(api: Api, task: int, vault: Vault) -> None:
    other = create_key(api.store.engine, vault, api.store.group_id, "guide", guide_id="G2")
    headers = {"Authorization": f"Bearer {other.secret}"}
    listed = api.client.get("/v1/guides/G1/tasks", headers=headers)
    assert listed.status_code == 403
    assert "only its own tasks" in listed.json()["detail"]
    moved = api.client.post(f"/v1/tasks/{task}:done", headers={**headers, "Idempotency-Key": "k"})
    assert moved.status_code == 403 and moved.json()["code"] == "task_forbidden"
    # nothing was applied: the task is still open, with only its first event
    with api.store.engine.connect() as conn:
        assert (
            conn.execute(
                text("SELECT state FROM guide_tasks WHERE task_id = :t"), {"t": task}
            ).scalar_one()
            == "open"
        )
        assert (
            conn.execute(
                text("SELECT COUNT(*) FROM guide_task_events WHERE task_id = :t"), {"t": task}
            ).scalar_one()
            == 1
        )
    # HQ (admin) reads any guide's tasks
    assert api.client.get("/v1/guides/G1/tasks", headers=api.as_("admin")).status_code == 200


def test_bad_input_names_the_field(api: Api, task: int) -> None:
    long = post(api, f"/v1/tasks/{task}:contacted", "guide", "n-1", {"note": "x" * 501})
    assert long.status_code == 422 and long.json()["errors"][0]["field"] == "note"
    keyless = api.client.post(f"/v1/tasks/{task}:done", headers=api.as_("guide"))
    assert keyless.status_code == 422 and "Idempotency-Key" in keyless.text
    unknown = post(api, "/v1/tasks/999999:done", "guide", "n-2")
    assert unknown.status_code == 404 and unknown.json()["code"] == "task_not_found"
    state = api.client.get("/v1/guides/G1/tasks?state=later", headers=api.as_("guide"))
    assert state.status_code == 422 and state.json()["errors"][0]["field"] == "state"
