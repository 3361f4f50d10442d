"""The faces of guide classes: HQ puts rules (a bad one is 422 naming the field) and classes
a period; HQ reads every guide's class with its metrics and playbook, a store key its
stores' guides, a guide key only itself."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from tests.api.conftest import Api

RULES = {
    "A": {"min": {"orders": 1}, "playbook": {"zh": "工具", "en": "Tools"}},
    "B": {"min": {"members_bound": 1}, "playbook": {"zh": "SOP", "en": "SOPs"}},
    "C": {"playbook": {"zh": "督导", "en": "Supervision"}},
}
SOLD = datetime(2024, 12, 5, 10)
DECEMBER = {"since": "2024-12-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"}


def test_hq_classes_and_each_key_sees_its_own(api: Api) -> None:
    c, g = api.client, api.store.group_id
    # given guides G1 (S1, one attributed December order), G2 (S1) and G3 (S2)
    with api.store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO guides (group_id, guide_id, store_id, alias) VALUES "
                "(:g, 'G2', 'S1', '小李'), (:g, 'G3', 'S2', '小陈')"
            ),
            {"g": g},
        )
        conn.execute(
            text(
                "INSERT INTO orders (group_id, order_id, brand_id, channel, store_id, guide_id, "
                "buyer_identity_id, member_id, status, ordered_at, paid_at, total_fen, "
                "discount_fen, paid_fen) SELECT CAST(:g AS VARCHAR(64)), 'O-G1', 'B1', 'pos', "
                "'S1', 'G1', identity_id, member_id, 'paid', :t, :t, 500, 0, 500 FROM identities "
                "WHERE group_id = :g AND member_id = :m LIMIT 1"
            ),
            {"g": g, "m": api.members["M1"], "t": SOLD},
        )
        conn.execute(
            text(
                "INSERT INTO order_attributions (group_id, order_id, member_id, guide_id, basis, "
                "window_days, protect_days, ordered_at, attributed_at) VALUES "
                "(:g, 'O-G1', :m, 'G1', 'till', 7, 30, :t, :t)"
            ),
            {"g": g, "m": api.members["M1"], "t": SOLD},
        )
    admin = api.as_("admin")
    # classifying before any rules: 409 with its code
    early = c.post("/v1/guide-classes:classify", json=DECEMBER, headers=admin)
    assert (early.status_code, early.json()["code"]) == (409, "class_rules_missing")
    # a rule on an unknown metric: 422 naming it; nothing stored
    bad = {**RULES, "A": {**RULES["A"], "min": {"salez_fen": 1}}}
    refused = c.put("/v1/guide-classes/rules", json=bad, headers=admin)
    assert refused.status_code == 422 and "salez_fen" in refused.text
    assert c.get("/v1/guide-classes/rules", headers=admin).status_code == 409
    # when HQ puts rules and classes December
    put = c.put("/v1/guide-classes/rules", json=RULES, headers=admin)
    assert put.status_code == 200 and put.json()["version"] == 1
    done = c.post("/v1/guide-classes:classify", json=DECEMBER, headers=admin)
    assert done.status_code == 200, done.text
    assert done.json()["by_class"] == {"A": 1, "B": 0, "C": 2}
    # then HQ sees all three, G1 in A with its metrics and playbook
    hq = c.get("/v1/guide-classes", headers=api.as_("analyst")).json()["classes"]
    assert {r["guide_id"]: r["class"] for r in hq} == {"G1": "A", "G2": "C", "G3": "C"}
    g1 = next(r for r in hq if r["guide_id"] == "G1")
    assert g1["metrics"]["sales_fen"] == 500 and g1["playbook"]["en"] == "Tools"
    assert g1["since"] == "2024-12-01T00:00:00Z" and g1["rules_version"] == 1
    # a store key (S1) sees G1 and G2; a guide key (G1) only itself
    store = c.get("/v1/guide-classes", headers=api.as_("store")).json()["classes"]
    assert sorted(r["guide_id"] for r in store) == ["G1", "G2"]
    mine = c.get("/v1/guide-classes", headers=api.as_("guide")).json()["classes"]
    assert [r["guide_id"] for r in mine] == ["G1"]
    other = c.get("/v1/guide-classes", params={"guide_id": "G2"}, headers=api.as_("guide"))
    assert other.status_code == 403 and "only" in other.text
    # a period asked by one end only is refused naming the missing end
    half = c.get("/v1/guide-classes", params={"since": "2024-12-01T00:00:00Z"}, headers=admin)
    assert half.status_code == 422 and "until" in half.text
