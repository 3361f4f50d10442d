"""Stock over HTTP: scopes, 409 when out of stock, idempotent reservations."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api


def put(api: Api, role: str, sku: str, loc: str, body: dict[str, Any], key: str) -> Any:
    headers = {**api.as_(role), "Idempotency-Key": key}
    return api.client.put(f"/v1/inventory/{sku}/locations/{loc}", json=body, headers=headers)


def reserve(api: Api, role: str, body: dict[str, Any]) -> Any:
    return api.client.post("/v1/reservations", json=body, headers=api.as_(role))


def test_a_store_sets_only_its_own_stock(api: Api) -> None:
    ok = put(api, "store", "K1", "S1", {"on_hand": 3, "reason": "count"}, "c1")
    assert ok.status_code == 200 and ok.json()["available"] == 3
    assert ok.json()["movement"] == "count"
    other = put(api, "store", "K1", "S2", {"on_hand": 3, "reason": "count"}, "c2")
    assert other.status_code == 403
    neither = put(api, "admin", "K1", "S1", {"reason": "nothing"}, "c3")
    assert neither.status_code == 422 and neither.json()["errors"][0]["field"] == "on_hand"
    unknown = put(api, "admin", "K1", "NOPE", {"on_hand": 1, "reason": "r"}, "c4")
    assert unknown.status_code == 404
    # the store sees its own location, the channel its own ATP
    seen = api.client.get("/v1/inventory/K1", headers=api.as_("store")).json()
    assert [loc["location_id"] for loc in seen["locations"]] == ["S1"]
    put(api, "admin", "K1", "W1", {"on_hand": 10, "reason": "count"}, "w1")
    tmall = api.client.get("/v1/inventory/K1", headers=api.as_("channel")).json()
    assert tmall["channels"] == {"tmall": 3 + 10 - 2}


def test_reservations_over_http(api: Api) -> None:
    put(api, "admin", "K1", "W1", {"on_hand": 2, "reason": "count"}, "w1")
    body = {"order_id": "T-1", "lines": [{"sku": "K1", "qty": 2}], "city": "上海"}
    made = reserve(api, "channel", body)
    assert made.status_code == 201, made.text
    again = reserve(api, "channel", body)
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    none_left = reserve(api, "channel", {"order_id": "T-2", "lines": [{"sku": "K1", "qty": 1}]})
    assert none_left.status_code == 409 and none_left.json()["code"] == "out_of_stock"
    rid = made.json()["reservation_id"]
    confirmed = api.client.post(f"/v1/reservations/{rid}:confirm", headers=api.as_("channel"))
    assert confirmed.json()["status"] == "confirmed"
    released = api.client.post(f"/v1/reservations/{rid}:release", headers=api.as_("channel"))
    assert released.status_code == 409 and released.json()["code"] == "reservation_closed"
    level = api.client.get("/v1/inventory/K1", headers=api.as_("admin")).json()["locations"]
    assert [(x["location_id"], x["on_hand"], x["reserved"]) for x in level] == [("W1", 0, 0)]
