"""Members over HTTP: masking by role, scope by store/guide/member, bind and merge."""

from __future__ import annotations

from tests.api.conftest import NAME_1, PHONE_1, PHONE_2, Api


def _phone(profile: dict) -> str:  # type: ignore[type-arg]
    return next(i["value"] for i in profile["identities"] if i["type"] == "phone")


def test_an_analyst_sees_masked_phones_and_names_an_admin_the_clear_ones(api: Api) -> None:
    url = "/v1/members/lookup?type=phone&value=138 1234 5678"
    analyst = api.client.get(url, headers=api.as_("analyst")).json()
    admin = api.client.get(url, headers=api.as_("admin")).json()
    assert _phone(analyst) == "138****5678" and analyst["name"] == "张**"
    assert _phone(admin) == "+86" + PHONE_1 and admin["name"] == NAME_1
    assert analyst["member_id"] == admin["member_id"] == api.members["M1"]
    assert (admin["birth_date"], analyst["birth_date"]) == ("1990-04-01", None)


def test_a_store_key_gets_403_on_another_stores_member(api: Api) -> None:
    own = api.client.get(f"/v1/members/{api.members['M1']}", headers=api.as_("store"))
    other = api.client.get(f"/v1/members/{api.members['M2']}", headers=api.as_("store"))
    assert own.status_code == 200
    assert other.status_code == 403 and other.json()["code"] == "forbidden"
    by_phone = api.client.get(
        f"/v1/members/lookup?type=phone&value={PHONE_2}", headers=api.as_("store")
    )
    assert by_phone.status_code == 403


def test_a_member_token_sees_only_itself_and_a_guide_only_its_members(api: Api) -> None:
    assert (
        api.client.get(f"/v1/members/{api.members['M1']}", headers=api.as_("member")).status_code
        == 200
    )
    assert (
        api.client.get(f"/v1/members/{api.members['M2']}", headers=api.as_("member")).status_code
        == 403
    )
    assert (
        api.client.get(f"/v1/members/{api.members['M1']}", headers=api.as_("guide")).status_code
        == 200
    )
    assert (
        api.client.get(f"/v1/members/{api.members['M2']}", headers=api.as_("guide")).status_code
        == 403
    )


def test_bad_input_is_a_problem_naming_the_field(api: Api) -> None:
    bad_phone = api.client.get(
        "/v1/members/lookup?type=phone&value=12345", headers=api.as_("admin")
    )
    assert bad_phone.status_code == 422
    assert bad_phone.json()["errors"][0]["field"] == "value"
    missing = api.client.get("/v1/members/lookup?type=phone", headers=api.as_("admin"))
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "value"
    unknown = api.client.get("/v1/members/999999", headers=api.as_("admin"))
    assert unknown.status_code == 404
    extra = api.client.post(
        f"/v1/members/{api.members['M1']}/identities",
        headers=api.as_("admin"),
        json={"type": "openid", "value": "o", "channel": "pos", "x": 1},
    )
    assert extra.status_code == 422 and extra.json()["errors"][0]["field"] == "x"


def test_binding_an_identity_that_belongs_to_another_member_merges_and_can_be_undone(
    api: Api,
) -> None:
    m1, m2 = api.members["M1"], api.members["M2"]
    # when M2's card (issued by brand B2) is bound to M1 by the admin
    bound = api.client.post(
        f"/v1/members/{m1}/identities",
        headers=api.as_("admin"),
        json={"type": "card", "value": "D002", "channel": "pos", "scope": "B2"},
    )
    assert bound.status_code == 200, bound.text
    [merge_id] = bound.json()["merges"]
    # then M2 answers as M1 (the older)
    assert api.client.get(f"/v1/members/{m2}", headers=api.as_("admin")).json()["member_id"] == m1
    # and the merge can be undone
    undone = api.client.post(
        f"/v1/merges/{merge_id}:undo", headers=api.as_("admin"), json={"reason": "two people"}
    )
    assert undone.status_code == 200 and undone.json()["restored_member_id"] == m2
    assert api.client.get(f"/v1/members/{m2}", headers=api.as_("admin")).json()["member_id"] == m2
