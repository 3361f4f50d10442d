"""The faces of HQ's programme by stage: HQ puts the stages (a bad one is 422 naming the
field), the report of a period is HQ's for every guide, a store key's for its stores'
guides and a guide key's for itself (another guide's is 403); a period before the first
stage is 409; HQ reads training completion over each item's audience."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from tests.api.conftest import Api

from siyu.guides.attribution import attribute
from siyu.guides.training import complete, parse_item, save_item

PROGRAMME = {
    "stages": [
        {
            "code": "sales",
            "name_zh": "销售",
            "name_en": "Sales",
            "starts_on": "2024-12-01",
            "focus": [{"metric": "sales_fen", "min": 500}, {"metric": "orders"}],
        }
    ]
}
DECEMBER = {"since": "2024-12-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"}


def test_programme_report_in_each_keys_scope(api: Api) -> None:
    c, g = api.client, api.store.group_id
    admin, store, guide = api.as_("admin"), api.as_("store"), api.as_("guide")
    # given guides G1 (S1, one attributed December order of 500 fen), G2 (S1), G3 (S2)
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
            {"g": g, "m": api.members["M1"], "t": datetime(2024, 12, 5, 10)},
        )
    attribute(api.store.engine, g, datetime(2024, 12, 1), datetime(2025, 1, 1))
    missing = c.get("/v1/guide-programme", headers=admin)
    assert missing.status_code == 409 and missing.json()["code"] == "programme_missing"
    # a bad programme is refused naming the field; a good one is version 1
    bad = {"stages": [{**PROGRAMME["stages"][0], "focus": [{"metric": "ordrs"}]}]}
    refused = c.put("/v1/guide-programme", json=bad, headers=admin)
    assert refused.status_code == 422 and "ordrs" in refused.text
    twice = {"stages": [PROGRAMME["stages"][0], {**PROGRAMME["stages"][0], "code": "again"}]}
    overlap = c.put("/v1/guide-programme", json=twice, headers=admin)
    assert overlap.status_code == 422 and "stages.1.starts_on" in overlap.text
    put = c.put("/v1/guide-programme", json=PROGRAMME, headers=admin)
    assert put.status_code == 200 and put.json()["version"] == 1
    # HQ sees every guide, G1 meeting its target exactly
    report = c.get("/v1/guide-programme/report", params=DECEMBER, headers=admin).json()
    assert report["stage"]["code"] == "sales"
    rows = {r["guide_id"]: r for r in report["guides"]}
    assert set(rows) == {"G1", "G2", "G3"}
    assert rows["G1"]["met_all"] is True and rows["G2"]["met_all"] is False
    assert rows["G1"]["metrics"][0] == {
        "metric": "sales_fen",
        "value": 500,
        "min": 500,
        "max": None,
        "met": True,
    }
    assert report["totals"][0]["value"] == 500 and report["totals"][0]["guides_met"] == 1
    # a store key its stores' guides, a guide key only itself
    mine = c.get("/v1/guide-programme/report", params=DECEMBER, headers=store).json()
    assert [r["guide_id"] for r in mine["guides"]] == ["G1", "G2"]
    own = c.get("/v1/guide-programme/report", params=DECEMBER, headers=guide).json()
    assert [r["guide_id"] for r in own["guides"]] == ["G1"]
    other = c.get(
        "/v1/guide-programme/report", params={**DECEMBER, "guide_id": "G2"}, headers=guide
    )
    assert other.status_code == 403
    early = {"since": "2024-11-01T00:00:00Z", "until": "2024-12-01T00:00:00Z"}
    before = c.get("/v1/guide-programme/report", params=early, headers=admin)
    assert before.status_code == 409 and before.json()["code"] == "programme_not_started"
    # training: an item for class A has no audience before any class is computed
    item = {"code": "tools", "title_zh": "工具", "title_en": "Tools", "body": "x"}
    save_item(api.store.engine, g, parse_item({**item, "for_class": "A"}))
    complete(api.store.engine, g, "G1", "tools")
    (row,) = c.get("/v1/training", headers=api.as_("analyst")).json()["items"]
    assert (row["completed"], row["guides"], row["outside"]) == (0, 0, 1)
    assert row["by_class"]["-"] == {"completed": 1, "guides": 3}
