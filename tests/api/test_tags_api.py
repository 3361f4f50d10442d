"""The tags API: define, set and remove manual tags, read them back; a guide tags only
its own members; validation errors name the field and the rule."""

from __future__ import annotations

from tests.api.conftest import Api


def _define(api: Api, slug: str = "vip", **extra: object) -> None:
    body = {"slug": slug, "name_zh": "贵宾", "name_en": "VIP", **extra}
    response = api.client.post("/v1/tags", json=body, headers=api.as_("admin"))
    assert response.status_code == 201, response.text


def test_hq_defines_sets_reads_and_removes_a_tag(api: Api) -> None:
    _define(api)
    m1 = api.members["M1"]
    admin = api.as_("admin")
    put = api.client.put(f"/v1/members/{m1}/tags/vip", json={"value": "gold"}, headers=admin)
    assert put.json() == {"member_id": m1, "slug": "vip", "change": "enter"}
    again = api.client.put(f"/v1/members/{m1}/tags/vip", json={"value": "gold"}, headers=admin)
    assert again.json()["change"] == "none"
    held = api.client.get(f"/v1/members/{m1}/tags", headers=api.as_("analyst")).json()
    assert [(t["slug"], t["value"], t["set_by"][:4]) for t in held["tags"]] == [
        ("vip", "gold", "key:")
    ]
    tag = api.client.get("/v1/tags/vip", headers=api.as_("analyst")).json()
    assert (tag["members"], tag["kind"], tag["refresh"]) == (1, "manual", "manual")
    page = api.client.get("/v1/tags/vip/members?limit=1", headers=admin).json()
    assert page["total"] == 1 and page["members"][0]["member_id"] == m1
    gone = api.client.delete(f"/v1/members/{m1}/tags/vip", headers=admin)
    assert gone.json()["change"] == "leave"
    assert api.client.delete(f"/v1/members/{m1}/tags/vip", headers=admin).json()["change"] == (
        "none"
    )
    changes = api.client.get(f"/v1/members/{m1}/tags/history", headers=admin).json()["changes"]
    assert [c["change"] for c in changes] == ["leave", "enter"]
    assert [t["slug"] for t in api.client.get("/v1/tags", headers=admin).json()["tags"]] == ["vip"]


def test_a_define_is_idempotent_with_its_key(api: Api) -> None:
    body = {"slug": "vip", "name_zh": "贵宾", "name_en": "VIP"}
    headers = {**api.as_("admin"), "Idempotency-Key": "define-vip"}
    first = api.client.post("/v1/tags", json=body, headers=headers)
    second = api.client.post("/v1/tags", json=body, headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.headers.get("Idempotent-Replayed") == "true"
    # without the key, the same slug again is refused, naming the field
    taken = api.client.post("/v1/tags", json=body, headers=api.as_("admin"))
    assert taken.status_code == 422
    assert "slug" in taken.text and "already a tag" in taken.text


def test_validation_errors_name_the_field(api: Api) -> None:
    admin = api.as_("admin")
    bad = {"slug": "Not OK", "name_zh": "x", "name_en": "x"}
    response = api.client.post("/v1/tags", json=bad, headers=admin)
    assert response.status_code == 422 and "slug" in response.text
    kind = {"slug": "k", "name_zh": "x", "name_en": "x", "kind": "magic"}
    assert api.client.post("/v1/tags", json=kind, headers=admin).status_code == 422
    _define(api, "rule", kind="automatic", definition={"rule": "orders >= 3"})
    m1 = api.members["M1"]
    refused = api.client.put(f"/v1/members/{m1}/tags/rule", headers=admin)
    assert refused.status_code == 422 and "automatic" in refused.text
    missing = api.client.put(f"/v1/members/{m1}/tags/nope", headers=admin)
    assert missing.status_code == 404
    long = api.client.put(f"/v1/members/{m1}/tags/rule", json={"value": "v" * 300}, headers=admin)
    assert long.status_code == 422 and "value" in long.text


def test_a_guide_tags_its_own_members_only(api: Api) -> None:
    _define(api)
    guide = api.as_("guide")  # G1 sold to M1 (order O1), never to M2
    m1, m2 = api.members["M1"], api.members["M2"]
    own = api.client.put(f"/v1/members/{m1}/tags/vip", headers=guide)
    assert own.status_code == 200 and own.json()["change"] == "enter"
    other = api.client.put(f"/v1/members/{m2}/tags/vip", headers=guide)
    assert other.status_code == 403 and "scope" in other.text
    assert api.client.get(f"/v1/members/{m2}/tags", headers=guide).status_code == 403
    # HQ tags M2; the guide's member list of the tag still shows only its own member
    api.client.put(f"/v1/members/{m2}/tags/vip", headers=api.as_("admin"))
    page = api.client.get("/v1/tags/vip/members", headers=guide).json()
    assert (page["total"], [h["member_id"] for h in page["members"]]) == (1, [m1])
    # a guide defines no tag, an analyst sets none
    body = {"slug": "g", "name_zh": "x", "name_en": "x"}
    assert api.client.post("/v1/tags", json=body, headers=guide).status_code == 403
    analyst = api.client.put(f"/v1/members/{m1}/tags/vip", headers=api.as_("analyst"))
    assert analyst.status_code == 403


def test_a_merged_members_id_answers_for_its_survivor(api: Api) -> None:
    _define(api)
    admin = api.as_("admin")
    m1, m2 = api.members["M1"], api.members["M2"]
    api.client.put(f"/v1/members/{m2}/tags/vip", headers=admin)
    merged = api.client.post(
        "/v1/members:merge", json={"member_ids": [m1, m2], "reason": "same"}, headers=admin
    )
    assert merged.status_code == 200, merged.text
    held = api.client.get(f"/v1/members/{m2}/tags", headers=admin).json()
    assert held["member_id"] == m1 and [t["slug"] for t in held["tags"]] == ["vip"]
