"""The experiments API: HQ saves a draft, starts it (the global holdout left out and
counted), logs exposures once, stops it; analysts read the plan, the results and the
members behind each figure (masked), never write; bad plans and states name the field."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from tests.api.conftest import NAME_1, PHONE_1, Api

PLAN: dict[str, Any] = {
    "code": "KNEE2",
    "name_zh": "第二单实验",
    "name_en": "Second order test",
    "target": {"stage": "new_1"},
    "variants": [
        {"name": "control", "weight_bp": 5000, "kind": "none"},
        {"name": "note", "weight_bp": 5000, "kind": "message", "ref": "M1"},
    ],
    "window_days": 30,
    "pre_period_days": 30,
    "starts_at": "2026-01-01T00:00:00Z",
    "ends_at": "2099-01-01T00:00:00Z",
}

# what the `note` variant names: a draft send to that variant, planned by the start
SEND: dict[str, Any] = {
    "code": "M1",
    "channel": "wechat_subscribe",
    "content": {"template": "TPL-1", "params": {"thing1": "第二单有礼"}},
    "target": {"experiment": "KNEE2", "variant": "note"},
    "scheduled_at": "2026-01-01T02:00:00Z",
}


def _send(api: Api, **fields: Any) -> None:
    saved = api.client.put(
        f"/v1/sends/{fields.get('code', 'M1')}", json={**SEND, **fields}, headers=api.as_("admin")
    )
    assert saved.status_code == 200, saved.text


def _in_stage(api: Api) -> None:
    with api.store.engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO member_stages (group_id, member_id, stage, orders, computed_at)
                    SELECT group_id, member_id, 'new_1', 1, CURRENT_TIMESTAMP FROM members
                    WHERE group_id = :g AND status = 'active'"""),
            {"g": api.store.group_id},
        )


def test_save_start_expose_results_members_and_stop(api: Api) -> None:
    admin, analyst = api.as_("admin"), api.as_("analyst")
    _in_stage(api)
    _send(api)
    put = api.client.put("/v1/experiments/KNEE2", json=PLAN, headers=admin)
    assert put.status_code == 200 and put.json()["status"] == "draft", put.text
    assert api.client.put("/v1/experiments/KNEE2", json=PLAN, headers=analyst).status_code == 403
    one = api.client.get("/v1/experiments/KNEE2", headers=analyst).json()
    assert one["plan"]["variants"][1]["name"] == "note" and one["started_at"] is None
    started = api.client.post("/v1/experiments/KNEE2:start", headers=admin)
    assert started.status_code == 200, started.text
    counts = started.json()
    assert counts["target"] == 2 and counts["global_holdout"] == 0
    assert sum(counts["variants"].values()) == counts["assigned"] == 2
    # the note's send was planned by the start, to the note's members
    note = counts["messages"]["note"]
    assert (note["send"], note["state"], note["planned_now"]) == ("M1", "planned", True)
    assert sum(note["recipients"].values()) == counts["variants"]["note"]
    assert counts["coupons"] == {} and counts["campaigns"] == {}
    # started again: nothing written twice, the send left as planned
    again = api.client.post("/v1/experiments/KNEE2:start", headers=admin).json()
    assert again["assigned"] == 0 and again["messages"]["note"]["planned_now"] is False
    assert again["messages"]["note"]["recipients"] == note["recipients"]
    fixed = api.client.put("/v1/experiments/KNEE2", json=PLAN, headers=admin)
    assert (fixed.status_code, fixed.json()["code"]) == (409, "experiment_state")
    m1 = api.members["M1"]
    body = {"member_ids": [m1], "at": "2026-01-02T00:00:00Z"}
    first = api.client.post("/v1/experiments/KNEE2/exposures", json=body, headers=admin)
    assert first.json() == {"exposed": 1}
    again = api.client.post("/v1/experiments/KNEE2/exposures", json=body, headers=admin)
    assert again.json() == {"exposed": 0}
    out = api.client.get("/v1/experiments/KNEE2/results", headers=analyst).json()
    assert out["control"] == "control" and sum(out["overall"]["counts"].values()) == 2
    assert {c["metric"] for c in out["overall"]["comparisons"]} >= {"revenue_fen", "repurchase"}
    assert [s["stage"] for s in out["stages"]] == ["new_1"]
    exposed = api.client.get("/v1/experiments/KNEE2/results?anchor=exposure", headers=analyst)
    assert sum(exposed.json()["overall"]["counts"].values()) == 1
    variant = next(v for v, n in out["overall"]["counts"].items() if n)
    page = api.client.get(
        f"/v1/experiments/KNEE2/members?variant={variant}&stage=new_1", headers=analyst
    ).json()
    assert page["total"] == out["overall"]["counts"][variant] == len(page["members"])
    for row in page["members"]:
        assert row["name"] not in (NAME_1, None) and row["phone"] != PHONE_1
    none = api.client.get(
        f"/v1/experiments/KNEE2/members?variant={variant}&metric=repurchase", headers=analyst
    ).json()
    assert none["total"] == 0
    not_bought = api.client.get(
        f"/v1/experiments/KNEE2/members?variant={variant}&metric=repurchase&positive=false",
        headers=analyst,
    ).json()
    assert not_bought["total"] == page["total"]
    listed = api.client.get("/v1/experiments", headers=analyst).json()["experiments"]
    assert [(e["code"], e["status"]) for e in listed] == [("KNEE2", "running")]
    assert api.client.post("/v1/experiments/KNEE2:stop", headers=analyst).status_code == 403
    stopped = api.client.post("/v1/experiments/KNEE2:stop", headers=admin).json()
    assert stopped["status"] == "stopped" and stopped["stopped_at"]
    twice = api.client.post("/v1/experiments/KNEE2:stop", headers=admin)
    assert (twice.status_code, twice.json()["code"]) == (409, "experiment_state")
    restart = api.client.post("/v1/experiments/KNEE2:start", headers=admin)
    assert restart.status_code == 409


def test_the_global_holdout_is_counted_not_assigned(api: Api) -> None:
    from siyu.campaigns import global_holdout

    admin = api.as_("admin")
    _in_stage(api)
    held = global_holdout.set_share(api.store.engine, api.store.group_id, 5000)
    expected = sum(held.holds(m) for m in api.members.values())
    _send(api)
    api.client.put("/v1/experiments/KNEE2", json=PLAN, headers=admin)
    counts = api.client.post("/v1/experiments/KNEE2:start", headers=admin).json()
    assert (counts["target"], counts["global_holdout"]) == (2, expected)
    assert counts["assigned"] == 2 - expected


def test_bad_input_names_the_field(api: Api) -> None:
    admin = api.as_("admin")
    heavy = [{**PLAN["variants"][0], "weight_bp": 9000}, PLAN["variants"][1]]
    bad = api.client.put("/v1/experiments/KNEE2", json={**PLAN, "variants": heavy}, headers=admin)
    assert bad.status_code == 422 and "weight_bp" in bad.text
    other = api.client.put("/v1/experiments/OTHER", json=PLAN, headers=admin)
    assert other.status_code == 422 and "code" in other.text
    missing = api.client.post("/v1/experiments/NOPE:start", headers=admin)
    assert missing.status_code == 404 and "experiment" in missing.text
    # the note's send must exist, and target exactly this experiment's variant
    no_send = api.client.put("/v1/experiments/KNEE2", json=PLAN, headers=admin)
    assert no_send.status_code == 404 and "variants[1].ref: no send 'M1'" in no_send.text
    _send(api, target={"experiment": "KNEE2", "variant": "control"})
    elsewhere = api.client.put("/v1/experiments/KNEE2", json=PLAN, headers=admin)
    assert elsewhere.status_code == 422, elsewhere.text
    assert "variants[1].ref" in elsewhere.text and "variant note" in elsewhere.text
    _send(api, code="M2")
    to_m2 = [PLAN["variants"][0], {**PLAN["variants"][1], "ref": "M2"}]
    draft = api.client.put("/v1/experiments/KNEE2", json={**PLAN, "variants": to_m2}, headers=admin)
    assert draft.status_code == 200
    not_running = api.client.post("/v1/experiments/KNEE2:stop", headers=admin)
    assert not_running.status_code == 409 and "draft" in not_running.text
    no_variant = api.client.get("/v1/experiments/KNEE2/members?variant=zzz", headers=admin)
    assert no_variant.status_code == 422 and "variant" in no_variant.text
    no_metric = api.client.get(
        "/v1/experiments/KNEE2/members?variant=control&metric=joy", headers=admin
    )
    assert no_metric.status_code == 422 and "metric" in no_metric.text
    anchor = api.client.get("/v1/experiments/KNEE2/results?anchor=later", headers=admin)
    assert anchor.status_code == 422 and "anchor" in anchor.text
    empty = api.client.post(
        "/v1/experiments/KNEE2/exposures", json={"member_ids": []}, headers=admin
    )
    assert empty.status_code == 422 and "member_ids" in empty.text
