"""Batch ingestion with a result per item, and Idempotency-Key semantics, including
concurrent retries on PostgreSQL."""

from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from tests.api.conftest import NAME_1, NAME_2, PHONE_1, PHONE_2, Api


def _order(order_id: str, channel: str = "tmall", **extra: Any) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "brand_id": "B1",
        "channel": channel,
        "buyer_type": "tmall_ouid",
        "buyer_value": "t-9",
        "ordered_at": "2024-03-01T08:00:00",
        "total_fen": 1000,
        "paid_fen": 900,
        **extra,
    }


def test_orders_batch_answers_per_item_and_never_applies_twice(api: Api) -> None:
    items = [_order("T-1"), _order("T-2", paid_fen=5000), _order("T-1")]
    first = api.client.post("/v1/orders:batch", json={"items": items}, headers=api.as_("admin"))
    assert first.status_code == 200, first.text
    body = first.json()
    assert [i["status"] for i in body["items"]] == ["created", "rejected", "created"]
    assert body["items"][1]["errors"] == [
        {"field": "paid_fen", "rule": "must not exceed total_fen"}
    ]
    again = api.client.post(
        "/v1/orders:batch", json={"items": items[:1]}, headers=api.as_("admin")
    ).json()
    assert again["items"][0]["status"] == "duplicate"
    assert api.store.count("orders") == 2  # O1 from the brand files + T-1


def test_a_channel_key_sends_only_its_channel(api: Api) -> None:
    items = [_order("C-1"), _order("C-2", channel="jd")]
    body = api.client.post(
        "/v1/orders:batch", json={"items": items}, headers=api.as_("channel")
    ).json()
    assert [i["status"] for i in body["items"]] == ["created", "rejected"]
    assert body["items"][1]["errors"][0]["field"] == "channel"


def _refund(refund_id: str, amount: int, order_id: str = "O1") -> dict[str, Any]:
    return {
        "refund_id": refund_id,
        "order_id": order_id,
        "refunded_at": "2024-01-05T10:00:00",
        "amount_fen": amount,
    }


def test_refunds_batch_never_refunds_more_than_was_paid(api: Api) -> None:
    # given O1 (pos, store S1) paid 9900 fen
    url, admin = "/v1/refunds:batch", api.as_("admin")
    # when one batch refunds 5000 + 4000 + 1000 of it
    items = [_refund("RF-1", 5000), _refund("RF-2", 4000), _refund("RF-3", 1000)]
    body = api.client.post(url, json={"items": items}, headers=admin).json()
    # then the refund that would pass the paid amount is rejected with the sums
    assert [i["status"] for i in body["items"]] == ["created", "created", "rejected"]
    assert body["items"][2]["errors"] == [
        {
            "field": "amount_fen",
            "rule": "refunds of order 'O1' would total 10000 fen, more than its paid_fen 9900 "
            "(9000 refunded before this one)",
        }
    ]
    # and a later batch may refund what is left; a resent refund is a duplicate, not a second
    later = [_refund("RF-4", 900), _refund("RF-1", 5000), _refund("RF-5", 1)]
    body = api.client.post(url, json={"items": later}, headers=admin).json()
    assert [i["status"] for i in body["items"]] == ["created", "duplicate", "rejected"]
    assert api.store.count("refunds") == 3


def test_refunds_batch_keeps_keys_to_their_orders(api: Api) -> None:
    # given O1 was a till order of store S1; the channel key sends for tmall only
    body = api.client.post(
        "/v1/refunds:batch", json={"items": [_refund("RF-9", 1)]}, headers=api.as_("channel")
    ).json()
    assert body["items"][0]["errors"] == [
        {"field": "order_id", "rule": "this key refunds 'tmall' orders only"}
    ]
    body = api.client.post(
        "/v1/refunds:batch", json={"items": [_refund("RF-9", 1)]}, headers=api.as_("store")
    ).json()
    assert body["items"][0]["status"] == "created"


def test_same_idempotency_key_replays_and_a_different_body_is_409(api: Api) -> None:
    headers = {**api.as_("admin"), "Idempotency-Key": "bind-1"}
    url = f"/v1/members/{api.members['M1']}/identities"
    body = {"type": "openid", "value": "o-idem", "channel": "miniprogram"}
    first = api.client.post(url, json=body, headers=headers)
    second = api.client.post(url, json=body, headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    other = api.client.post(url, json={**body, "value": "o-other"}, headers=headers)
    assert other.status_code == 409 and other.json()["code"] == "idempotency_conflict"


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_concurrent_retries_apply_once(api: Api) -> None:
    headers = {**api.as_("admin"), "Idempotency-Key": "batch-42"}
    payload = {"items": [_order(f"R-{i}") for i in range(50)]}

    def send(_: int) -> int:
        return api.client.post("/v1/orders:batch", json=payload, headers=headers).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(send, range(16)))
    assert set(statuses) <= {200, 409}
    assert statuses.count(200) >= 1
    assert api.store.count("orders") == 1 + 50
    replay = api.client.post("/v1/orders:batch", json=payload, headers=headers)
    assert replay.status_code == 200 and replay.json()["created"] == 50


def test_no_phone_or_name_reaches_the_logs(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    # given every log record at every level is captured (except the test's own HTTP
    # client, which logs the URLs it requests; it is not part of the server)
    caplog.set_level(logging.DEBUG)
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # when phones and names travel through lookups, profiles, binds and ingestion
    for phone in (PHONE_1, PHONE_2, "+86" + PHONE_1):
        api.client.get(f"/v1/members/lookup?type=phone&value={phone}", headers=api.as_("admin"))
    api.client.get("/v1/members/lookup?type=phone&value=13700000000", headers=api.as_("admin"))
    api.client.post(
        f"/v1/members/{api.members['M1']}/identities",
        headers=api.as_("admin"),
        json={"type": "phone", "value": "13766665555", "channel": "pos"},
    )
    api.client.post(
        "/v1/orders:batch",
        headers=api.as_("admin"),
        json={"items": [{**_order("L-1"), "buyer_type": "phone", "buyer_value": "13755554444"}]},
    )
    api.client.get("/v1/members/lookup?type=phone&value=not-a-phone", headers=api.as_("admin"))
    # then the logs say what happened without any of them
    # (request ids are random hex and may hold a short fragment such as "5678" by chance)
    text = re.sub(r'"request_id": "[0-9a-f]+"', '"request_id": "-"', caplog.text)
    assert "siyu.access" in {r.name for r in caplog.records}
    assert '"route": "/v1/members/lookup"' in text
    for secret in (
        PHONE_1,
        PHONE_2,
        "13700000000",
        "13766665555",
        "13755554444",
        "not-a-phone",
        NAME_1,
        NAME_2,
        "1234****",
        "5678",
    ):
        assert secret not in text, secret
