"""The segments API on the API brand (tests/api/conftest.py: M1 with orders at S1, M2 at S2),
landed in the app's warehouse: define, preview, evaluate, read members, export in the
role's masks, sizes per day; refusals name the rule's field."""

from __future__ import annotations

import csv
import io

from tests.api.conftest import PHONE_1, Api

from siyu.analytics.landing import land
from siyu.privacy import mask_phone

BOUGHT = {"version": 1, "rule": {"orders": {"count": {"gte": 1}}}}


def _land(api: Api) -> None:
    land(api.store.engine, api.store.group_id, api.warehouse)


def _define(api: Api, slug: str, rule: object) -> dict[str, object]:
    body = {"slug": slug, "name_zh": "买过", "name_en": "Bought", "rule": rule}
    response = api.client.post("/v1/segments", json=body, headers=api.as_("admin"))
    assert response.status_code == 201, response.text
    made: dict[str, object] = response.json()
    return made


def _buyers(api: Api) -> set[int]:
    with api.store.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT DISTINCT member_id FROM orders WHERE group_id = "
            f"'{api.store.group_id}' AND status <> 'cancelled' AND member_id IS NOT NULL"
        ).all()
    return {int(r[0]) for r in rows}


def test_define_preview_evaluate_and_read_a_segment(api: Api) -> None:
    _land(api)
    admin, analyst = api.as_("admin"), api.as_("analyst")
    made = _define(api, "buyers", BOUGHT)
    assert (made["version"], made["size"], made["evaluated_at"]) == (1, None, None)
    buyers = _buyers(api)
    assert buyers  # the brand has orders
    preview = api.client.post(
        "/v1/segments:preview", json={"rule": BOUGHT, "sample": 1}, headers=analyst
    ).json()
    assert (preview["size"], preview["sample"]) == (len(buyers), sorted(buyers)[:1])
    run = api.client.post("/v1/segments/buyers:evaluate", headers=admin)
    assert run.status_code == 200, run.text
    (evaluation,) = run.json()["evaluations"]
    assert (evaluation["size"], evaluation["entered"], evaluation["left"]) == (
        len(buyers),
        len(buyers),
        0,
    )
    got = api.client.get("/v1/segments/buyers", headers=analyst).json()
    assert got["size"] == len(buyers) and got["evaluated_at"] is not None
    page = api.client.get("/v1/segments/buyers/members?per=25", headers=analyst).json()
    assert page["total"] == len(buyers)
    assert {m["member_id"] for m in page["members"]} == buyers
    days = api.client.get("/v1/segments/buyers/history", headers=analyst).json()["days"]
    assert [(d["size"], d["entered"]) for d in days] == [(len(buyers), len(buyers))]
    m1 = api.members["M1"]
    assert m1 in buyers
    mine = api.client.get(f"/v1/members/{m1}/segments", headers=admin).json()
    assert [s["slug"] for s in mine["segments"]] == ["buyers"]


def test_the_export_is_in_the_roles_masks(api: Api) -> None:
    _land(api)
    _define(api, "buyers", BOUGHT)
    api.client.post("/v1/segments/buyers:evaluate", headers=api.as_("admin"))
    m1 = api.members["M1"]
    phones = {}
    for role in ("admin", "analyst"):
        response = api.client.get("/v1/segments/buyers/export", headers=api.as_(role))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))
        assert {int(r["member_id"]) for r in rows} == _buyers(api)
        phones[role] = {int(r["member_id"]): r["phone"] for r in rows}
    assert phones["admin"][m1].endswith(PHONE_1)  # stored in E.164
    assert phones["analyst"][m1] == mask_phone(phones["admin"][m1]) != phones["admin"][m1]
    # a guide may read segments but not export them
    assert api.client.get("/v1/segments/buyers/export", headers=api.as_("guide")).status_code == (
        403
    )


def test_refusals_name_the_field_and_the_rule(api: Api) -> None:
    admin = api.as_("admin")
    bad_rule = {"version": 1, "rule": {"all": [{"orders": {"within_days": -1}}]}}
    body = {"slug": "x", "name_zh": "x", "name_en": "x", "rule": bad_rule}
    refused = api.client.post("/v1/segments", json=body, headers=admin)
    assert refused.status_code == 422
    assert "rule.all[0].orders.within_days" in refused.text
    _define(api, "buyers", BOUGHT)
    taken = api.client.post(
        "/v1/segments",
        json={"slug": "buyers", "name_zh": "x", "name_en": "x", "rule": BOUGHT},
        headers=admin,
    )
    assert taken.status_code == 409 and "already a segment" in taken.text
    # no warehouse landed yet: a preview says what to do
    preview = api.client.post("/v1/segments:preview", json={"rule": BOUGHT}, headers=admin)
    assert preview.status_code == 422 and "siyu warehouse land" in preview.text
    missing = api.client.get("/v1/segments/nope/members", headers=admin)
    assert missing.status_code == 404
    nested = {"version": 1, "rule": {"segment": "nope"}}
    body = {"slug": "y", "name_zh": "y", "name_en": "y", "rule": nested}
    assert "does not exist" in api.client.post("/v1/segments", json=body, headers=admin).text
    # a new rule is a new version; the same rule is not
    same = api.client.patch("/v1/segments/buyers", json={"rule": BOUGHT}, headers=admin).json()
    assert same["version"] == 1
    other = {"version": 1, "rule": {"orders": {"count": {"gte": 2}}}}
    changed = api.client.patch("/v1/segments/buyers", json={"rule": other}, headers=admin).json()
    assert changed["version"] == 2
    versions = api.client.get("/v1/segments/buyers/versions", headers=admin).json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]


def test_nul_characters_are_refused_in_names_and_documents(api: Api) -> None:
    # PostgreSQL refuses NUL in text and JSON: without these checks the fuzzing found a 500
    admin = api.as_("admin")
    nul_rule = {"version": 1, "rule": {"bought": {"category": ["茶\x00"]}}}
    cases = [
        ("/v1/segments", {"slug": "a", "name_zh": "a\x00", "name_en": "a", "rule": BOUGHT}),
        ("/v1/segments", {"slug": "b", "name_zh": "b", "name_en": "b", "rule": nul_rule}),
        ("/v1/tags", {"slug": "c", "name_zh": "c\x00", "name_en": "c"}),
        ("/v1/tags", {"slug": "d", "name_zh": "d", "name_en": "d", "owner": "k\x00"}),
        (
            "/v1/tags",
            {"slug": "e", "name_zh": "e", "name_en": "e", "definition": {"\x00": 1}},
        ),
    ]
    for path, body in cases:
        refused = api.client.post(path, json=body, headers=admin)
        assert refused.status_code == 422, (path, body, refused.text)
    # and nothing was written
    assert api.client.get("/v1/segments", headers=admin).json()["segments"] == []
    slugs = {t["slug"] for t in api.client.get("/v1/tags", headers=admin).json()["tags"]}
    assert not slugs & {"c", "d", "e"}
