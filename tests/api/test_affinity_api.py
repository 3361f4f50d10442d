"""The affinity score over HTTP: a member's breakdown within the caller's scope, the rules
read and replaced by HQ only, a refused document answered 422 naming each field."""

from __future__ import annotations

from tests.api.conftest import Api

# No decay and a window of ten years, so M1's one order (99 yuan, 2024-01-02) counts whole
# whatever day the test runs: orders 10 + 0.99 hundred yuan × 100 = 109.
RULES = {
    "coefficients": {"orders": 10, "spend_per_100_yuan": 100, "sign_in": 1},
    "window_days": 3650,
    "half_life_days": None,
    "bands": [{"value": "high", "min_score": 100}, {"value": "low", "min_score": 1}],
}


def test_hq_sets_the_rules_and_a_member_reads_as_they_say(api: Api) -> None:
    admin, m1 = api.as_("admin"), api.members["M1"]
    # given the defaults: version 0
    first = api.client.get("/v1/affinity/rules", headers=admin)
    assert first.status_code == 200 and first.json()["version"] == 0
    assert first.json()["rules"]["half_life_days"] == 90
    # when HQ replaces them, then version 1 is in force
    put = api.client.put("/v1/affinity/rules", json=RULES, headers=admin)
    assert put.status_code == 200, put.text
    assert put.json() == {"version": 1, "rules": RULES}
    # and M1's score is explained behaviour by behaviour
    got = api.client.get(f"/v1/members/{m1}/affinity", headers=admin)
    assert got.status_code == 200, got.text
    body = got.json()
    assert (body["member_id"], body["rules_version"], body["score"], body["band"]) == (
        m1,
        1,
        109,
        "high",
    )
    assert body["parts"] == [
        {"behaviour": "orders", "count": 1, "decayed": 1, "coefficient": 10, "points": 10},
        {
            "behaviour": "spend_per_100_yuan",
            "count": 0.99,
            "decayed": 0.99,
            "coefficient": 100,
            "points": 99,
        },
        {"behaviour": "sign_in", "count": 0, "decayed": 0, "coefficient": 1, "points": 0},
    ]
    # and M2, without facts, scores 0 with no band
    m2 = api.client.get(f"/v1/members/{api.members['M2']}/affinity", headers=admin).json()
    assert (m2["score"], m2["band"]) == (0, None)


def test_the_score_is_read_within_scope(api: Api) -> None:
    m1, m2 = api.members["M1"], api.members["M2"]
    # a store reads its own members' (M1 ordered at S1), not another store's
    assert api.client.get(f"/v1/members/{m1}/affinity", headers=api.as_("store")).status_code == 200
    assert api.client.get(f"/v1/members/{m2}/affinity", headers=api.as_("store")).status_code == 403
    # a guide its own member only; an analyst any; the member itself and a channel none
    assert api.client.get(f"/v1/members/{m1}/affinity", headers=api.as_("guide")).status_code == 200
    assert api.client.get(f"/v1/members/{m2}/affinity", headers=api.as_("guide")).status_code == 403
    for role, status in (("analyst", 200), ("member", 403), ("channel", 403)):
        got = api.client.get(f"/v1/members/{m2}/affinity", headers=api.as_(role))
        assert got.status_code == status, (role, got.text)
    # and an unknown member is 404
    missing = api.client.get("/v1/members/999999/affinity", headers=api.as_("admin"))
    assert missing.status_code == 404


def test_only_hq_writes_the_rules_and_a_refusal_names_the_field(api: Api) -> None:
    for role in ("analyst", "store", "guide", "channel", "member"):
        put = api.client.put("/v1/affinity/rules", json=RULES, headers=api.as_(role))
        assert put.status_code == 403, role
    admin = api.as_("admin")
    bad = {
        "coefficients": {"sign_in": -1, "likes": 2},
        "half_life_days": 0,
        "bands": [{"value": "a", "min_score": 1}, {"value": "b", "min_score": 5}],
    }
    refused = api.client.put("/v1/affinity/rules", json=bad, headers=admin)
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    errors = {e["field"]: e["rule"] for e in refused.json()["errors"]}
    assert errors["coefficients.sign_in"] == "must be a number ≥ 0 and ≤ 10000"
    assert "half_life_days" in errors and "bands" in errors
    # and nothing was stored: still the defaults
    assert api.client.get("/v1/affinity/rules", headers=admin).json()["version"] == 0
