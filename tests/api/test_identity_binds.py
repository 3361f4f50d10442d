"""Binding identities through the API, both dialects: a refused bind answers 409 however
often it is retried, and a card is bound and looked up in its brand."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from tests.api.conftest import Api

from siyu.config import DEFAULT_STRONG_TYPES
from siyu.identity.resolve import resolve_all


def _bind(api: Api, member: int, body: dict[str, Any], key: str | None = None) -> Any:
    headers = {**api.as_("admin"), **({"Idempotency-Key": key} if key else {})}
    return api.client.post(f"/v1/members/{member}/identities", headers=headers, json=body)


def _conflicts(api: Api) -> int:
    with api.store.engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT COUNT(*) FROM identity_conflicts WHERE group_id = :g"),
                {"g": api.store.group_id},
            ).scalar_one()
        )


def test_a_refused_bind_retried_with_new_keys_answers_the_same_409(api: Api) -> None:
    # given M1, bound to a WeChat unionid
    m1 = api.members["M1"]
    first = _bind(api, m1, {"type": "unionid", "value": "u-1", "channel": "miniprogram"}, "u1")
    assert first.status_code == 200, first.text
    # when a second unionid is bound to M1, then retried under new Idempotency-Keys
    second = {"type": "unionid", "value": "u-2", "channel": "miniprogram"}
    answers = [_bind(api, m1, second, f"bind-{n}") for n in range(3)]
    # then every answer is the policy's 409, and the conflict is recorded once
    assert [a.status_code for a in answers] == [409, 409, 409], answers[-1].text
    assert {a.json()["code"] for a in answers} == {"identity_conflict"}
    assert len({a.json()["detail"] for a in answers}) == 1
    assert _conflicts(api) == 1
    # and without a key too
    assert _bind(api, m1, second).status_code == 409
    # and a batch resolve that refuses the same link records it no second time
    resolve_all(api.store.engine, api.store.group_id, DEFAULT_STRONG_TYPES)
    resolve_all(api.store.engine, api.store.group_id, DEFAULT_STRONG_TYPES)
    assert _conflicts(api) == 1


def test_a_card_is_bound_in_the_members_brand_unless_a_scope_is_named(api: Api) -> None:
    m1, m2 = api.members["M1"], api.members["M2"]
    # when B2's card number D002 is bound to M1 (brand B1) without a scope, twice
    refused = [_bind(api, m1, {"type": "card", "value": "D002", "channel": "pos"}) for _ in "ab"]
    # then it is a second B1 card for M1: refused, and M2 (B2's D002) is untouched
    assert [r.status_code for r in refused] == [409, 409], refused[-1].text
    assert "both card" in refused[0].json()["detail"]
    assert api.client.get(f"/v1/members/{m2}", headers=api.as_("admin")).json()["member_id"] == m2
    # and looking up D002 without its brand finds two holders and asks for the scope
    lookup = "/v1/members/lookup?type=card&value=D002"
    several = api.client.get(lookup, headers=api.as_("admin"))
    assert several.status_code == 422
    assert several.json()["errors"] == [
        {"field": "scope", "rule": "members of several scopes hold this card: name the scope"}
    ]
    found = api.client.get(lookup + "&scope=B2", headers=api.as_("admin"))
    assert found.status_code == 200 and found.json()["member_id"] == m2
    shown = {(i["type"], i["scope"]) for i in found.json()["identities"]}
    assert ("card", "B2") in shown and ("phone", "") in shown


def test_bad_scopes_are_refused_naming_the_field(api: Api) -> None:
    m1 = api.members["M1"]
    cases = [
        ({"type": "card", "value": "C5", "scope": "B9"}, "no brand 'B9' in this brand group"),
        ({"type": "phone", "value": "13700000000", "scope": "B1"}, "phone is global"),
        ({"type": "openid", "value": "o-1", "scope": "wx a"}, "without spaces"),
    ]
    for body, rule in cases:
        answer = _bind(api, m1, {**body, "channel": "pos"})
        assert answer.status_code == 422, answer.text
        [error] = answer.json()["errors"]
        assert error["field"] == "scope" and rule in error["rule"], error
    too_long = _bind(api, m1, {"type": "openid", "value": "o", "channel": "pos", "scope": "x" * 65})
    assert too_long.status_code == 422 and too_long.json()["errors"][0]["field"] == "scope"
    # an openid named in its app joins the member, as the default scope would
    bound = _bind(api, m1, {"type": "openid", "value": "o-2", "channel": "pos", "scope": "wx-a"})
    assert bound.status_code == 200 and bound.json()["member_id"] == m1
