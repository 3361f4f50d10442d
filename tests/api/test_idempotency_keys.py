"""One Idempotency-Key rule on every endpoint that takes one: the same key and body replay
the first answer; the same key with another body is a 409 `idempotency_conflict` and
applies nothing."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api


def _send(api: Api, method: str, url: str, body: dict[str, Any], key: str) -> Any:
    headers = {**api.as_("admin"), "Idempotency-Key": key}
    return api.client.request(method, url, json=body, headers=headers)


def _level(api: Api, sku: str, location: str) -> tuple[int, int]:
    seen = api.client.get(f"/v1/inventory/{sku}", headers=api.as_("admin")).json()
    found = [x for x in seen["locations"] if x["location_id"] == location]
    return (found[0]["on_hand"], len(found)) if found else (0, 0)


def _movements(api: Api) -> int:
    return api.store.count("stock_movements")


def test_a_stock_count_with_a_reused_key_and_another_body_is_409(api: Api) -> None:
    # given a count of 5 under key k1
    url = "/v1/inventory/K1/locations/S1"
    first = _send(api, "PUT", url, {"on_hand": 5, "reason": "count"}, "k1")
    assert first.status_code == 200, first.text
    # when the same key comes back with the same body, it is a replay of the first answer
    again = _send(api, "PUT", url, {"on_hand": 5, "reason": "count"}, "k1")
    assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    # when it comes back with another count, another SKU or another kind of movement
    for other_url, body in (
        (url, {"on_hand": 9, "reason": "count"}),
        ("/v1/inventory/K2/locations/S1", {"on_hand": 5, "reason": "count"}),
        (url, {"delta": 4, "kind": "receive", "reason": "count"}),
        (url, {"on_hand": 5, "reason": "recount"}),
    ):
        refused = _send(api, "PUT", other_url, body, "k1")
        # then each is refused and nothing is applied
        assert refused.status_code == 409, (body, refused.text)
        assert refused.json()["code"] == "idempotency_conflict"
    assert _level(api, "K1", "S1") == (5, 1)
    assert _level(api, "K2", "S1") == (0, 0)
    assert _movements(api) == 1


def test_a_key_reused_by_another_api_key_for_another_movement_is_409(api: Api) -> None:
    # given the admin moved K1 under key shared-1 (movement keys are the group's)
    url = "/v1/inventory/K1/locations/S1"
    assert _send(api, "PUT", url, {"delta": 3, "kind": "receive", "reason": "in"}, "shared-1")
    # when the store key uses the same key for another movement
    headers = {**api.as_("store"), "Idempotency-Key": "shared-1"}
    body = {"delta": 7, "kind": "receive", "reason": "in"}
    refused = api.client.put(url, json=body, headers=headers)
    # then it is refused, and nothing is applied
    assert refused.status_code == 409 and refused.json()["code"] == "idempotency_conflict"
    assert _level(api, "K1", "S1") == (3, 1)


def test_a_refused_movement_leaves_the_key_unused(api: Api) -> None:
    # given a sale that is refused (nothing on the shelf)
    url = "/v1/inventory/K1/locations/S1"
    sale = {"delta": -1, "kind": "sale", "reason": "till"}
    assert _send(api, "PUT", url, sale, "sale-1").json()["code"] == "out_of_stock"
    # when stock arrives and the till retries with the same key, the sale goes through
    assert _send(api, "PUT", url, {"on_hand": 2, "reason": "count"}, "c").status_code == 200
    retried = _send(api, "PUT", url, sale, "sale-1")
    assert retried.status_code == 200, retried.text
    assert retried.json()["on_hand"] == 1


def test_a_ledger_posting_with_a_reused_key_and_another_body_is_409(api: Api) -> None:
    m1 = api.members["M1"]
    url = f"/v1/members/{m1}/stored-value:top-up"
    first = _send(api, "POST", url, {"paid_fen": 100}, "t1")
    again = _send(api, "POST", url, {"paid_fen": 100}, "t1")
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    refused = _send(api, "POST", url, {"paid_fen": 101}, "t1")
    assert refused.status_code == 409 and refused.json()["code"] == "idempotency_conflict"
    spent = _send(api, "POST", f"/v1/members/{m1}/stored-value:pay", {"amount_fen": 1}, "t1")
    assert spent.status_code == 409 and spent.json()["code"] == "idempotency_conflict"
    balances = api.client.get(f"/v1/members/{m1}/balances", headers=api.as_("admin")).json()
    assert balances["stored_value_fen"] == 100


def test_earning_by_another_order_with_a_reused_key_is_409(api: Api) -> None:
    # given a second order of M1, and O1 earned under key e1
    order = {
        "order_id": "O2",
        "brand_id": "B1",
        "channel": "pos",
        "buyer_type": "card",
        "buyer_value": "C001",
        "ordered_at": "2024-01-03T10:00:00",
        "total_fen": "5000",
        "paid_fen": "5000",
        "store_id": "S1",
    }
    made = api.client.post("/v1/orders:batch", json={"items": [order]}, headers=api.as_("admin"))
    assert made.json()["created"] == 1
    m1 = api.members["M1"]
    url = f"/v1/members/{m1}/points:earn"
    first = _send(api, "POST", url, {"order_id": "O1"}, "e1")
    assert first.status_code == 200, first.text
    again = _send(api, "POST", url, {"order_id": "O1"}, "e1")
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    # when the same key asks to earn another order, it is refused and O2 earns nothing
    refused = _send(api, "POST", url, {"order_id": "O2"}, "e1")
    assert refused.status_code == 409 and refused.json()["code"] == "idempotency_conflict"
    balances = api.client.get(f"/v1/members/{m1}/balances", headers=api.as_("admin")).json()
    assert balances["points"] == first.json()["balances"]["points"]
    # and a key of a posting is not reused to earn an order either
    _send(api, "POST", f"/v1/members/{m1}/stored-value:top-up", {"paid_fen": 1}, "t9")
    reused = _send(api, "POST", url, {"order_id": "O2"}, "t9")
    assert reused.status_code == 409 and reused.json()["code"] == "idempotency_conflict"


def test_ingest_and_bind_with_a_reused_key_and_another_body_are_409(api: Api) -> None:
    url = f"/v1/members/{api.members['M1']}/identities"
    body = {"type": "openid", "value": "o-idem", "channel": "miniprogram"}
    assert _send(api, "POST", url, body, "b1").status_code == 200
    refused = _send(api, "POST", url, {**body, "value": "o-other"}, "b1")
    assert refused.status_code == 409 and refused.json()["code"] == "idempotency_conflict"
    event = {
        "event_id": "EV-9",
        "type": "view",
        "channel": "tmall",
        "identity_type": "tmall_ouid",
        "identity_value": "t-9",
        "occurred_at": "2024-03-01T00:00:00",
    }
    assert _send(api, "POST", "/v1/events:batch", {"items": [event]}, "ev").status_code == 200
    other = {**event, "event_id": "EV-10"}
    refused = _send(api, "POST", "/v1/events:batch", {"items": [other]}, "ev")
    assert refused.status_code == 409 and refused.json()["code"] == "idempotency_conflict"
    assert api.store.count("events") == 1
