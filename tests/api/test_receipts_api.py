"""The receipts API: HQ defines a rule, a member uploads its own receipts once per key, a
store reviews its own stores' receipts only, HQ any; analysts read without the photos;
errors name the field and the rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.api.conftest import Api

RULE: dict[str, Any] = {
    "code": "BASKET",
    "name_zh": "小票满额礼",
    "name_en": "Basket reward",
    "tiers": [{"min_paid_fen": 10000, "points": 100}, {"min_paid_fen": 30000, "points": 400}],
    "starts_at": "2020-01-01T00:00:00Z",
    "ends_at": "2099-01-01T00:00:00Z",
    "limits": {"per_day": 5},
    "auto_accept": {"max_amount_fen": 20000, "home_store_only": True},
}


def _receipt(number: str, amount_fen: int = 15000, store_id: str = "S1", **more: Any) -> dict:
    bought = datetime.now(UTC) - timedelta(hours=1)
    return {
        "rule": "BASKET",
        "store_id": store_id,
        "receipt_no": number,
        "amount_fen": amount_fen,
        "purchased_at": bought.isoformat(),
        "image_ref": f"oss://receipts/{number}.jpg",
        **more,
    }


def _post(api: Api, role: str, body: dict, key: str) -> Any:
    headers = {**api.as_(role), "Idempotency-Key": key}
    return api.client.post("/v1/receipts", json=body, headers=headers)


def _define(api: Api) -> None:
    response = api.client.put("/v1/receipt-rules/BASKET", json=RULE, headers=api.as_("admin"))
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 1


def test_a_member_uploads_its_own_receipt_once_and_earns_the_tier(api: Api) -> None:
    _define(api)
    listed = api.client.get("/v1/receipt-rules", headers=api.as_("member")).json()
    assert [r["code"] for r in listed["rules"]] == ["BASKET"]
    upload = _receipt("A-1")
    first = _post(api, "member", upload, "k1")
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["status"], body["reviewer"]) == ("accepted", "auto")
    assert body["reward"]["points"] == 100 and body["reward"]["posting_id"]
    assert body["image_ref"] == "oss://receipts/A-1.jpg"
    again = _post(api, "member", upload, "k1").json()
    assert again["replayed"] and again["receipt_id"] == body["receipt_id"]
    m1 = api.members["M1"]
    balances = api.client.get(f"/v1/members/{m1}/balances", headers=api.as_("member")).json()
    assert balances["points"] == 100, balances
    mine = api.client.get(f"/v1/members/{m1}/receipts", headers=api.as_("member")).json()
    assert [r["receipt_id"] for r in mine["receipts"]] == [body["receipt_id"]]
    # a member uploads for itself only
    other = _post(api, "member", _receipt("A-2", member_id=api.members["M2"]), "k2")
    assert other.status_code == 403


def test_bad_input_names_the_field(api: Api) -> None:
    _define(api)
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    for change, field in [
        ({"amount_fen": -5}, "amount_fen"),
        ({"purchased_at": future}, "purchased_at"),
        ({"store_id": "S9"}, "store_id"),
    ]:
        response = _post(api, "member", {**_receipt("B-1"), **change}, f"bad-{field}")
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == field
    below = _post(api, "member", _receipt("B-2", amount_fen=9999), "below")
    assert below.status_code == 409
    assert below.json()["code"] == "receipt_not_eligible"
    assert "amount_fen" in below.json()["detail"]


def test_a_store_reviews_its_own_stores_receipts_and_hq_any(api: Api) -> None:
    _define(api)
    m2 = api.members["M2"]
    # M1's home store is S1: a receipt from S2 is reviewed
    at_s2 = _post(api, "member", _receipt("C-1", store_id="S2"), "c1").json()
    assert at_s2["status"] == "pending"
    # above the auto-accept amount at S1: reviewed too
    at_s1 = _post(api, "member", _receipt("C-2", amount_fen=30000), "c2").json()
    assert "max_amount_fen" in at_s1["reasons"][0]["detail"]
    assert at_s1["status"] == "pending"
    queue = api.client.get("/v1/receipts?status=pending", headers=api.as_("store")).json()
    assert [r["receipt_id"] for r in queue["receipts"]] == [at_s1["receipt_id"]]
    other = api.client.post(f"/v1/receipts/{at_s2['receipt_id']}:accept", headers=api.as_("store"))
    assert other.status_code == 403
    accepted = api.client.post(
        f"/v1/receipts/{at_s1['receipt_id']}:accept", headers=api.as_("store")
    ).json()
    assert accepted["status"] == "accepted" and accepted["reward"]["points"] == 400
    rejected = api.client.post(
        f"/v1/receipts/{at_s2['receipt_id']}:reject",
        json={"reason": "the photo is of another receipt"},
        headers=api.as_("admin"),
    ).json()
    assert rejected["status"] == "rejected"
    assert rejected["reasons"][-1]["detail"] == "the photo is of another receipt"
    late = api.client.post(f"/v1/receipts/{at_s2['receipt_id']}:accept", headers=api.as_("admin"))
    assert late.status_code == 409 and late.json()["code"] == "receipt_decided"
    # the same receipt from someone else is a duplicate; analysts read without the photo
    dup = _post(api, "admin", _receipt("C-2", amount_fen=30000, member_id=m2), "c3").json()
    assert dup["status"] == "duplicate"
    seen = api.client.get("/v1/receipts", headers=api.as_("analyst")).json()["receipts"]
    assert len(seen) == 3 and all(r["image_ref"] is None for r in seen)
    settled = api.client.post("/v1/receipts:settle", headers=api.as_("admin")).json()
    assert settled["settled"] == 0
