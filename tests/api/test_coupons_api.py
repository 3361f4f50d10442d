"""The coupons API: HQ defines a template and issues; a till redeems once with its key;
scopes hold (a store at its own stores, a channel on its own, a member its own coupons);
a refund returns the coupon; liability answers; errors name the field and rule."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api

TEMPLATE: dict[str, Any] = {
    "code": "SPRING20",
    "name_zh": "春季满减",
    "name_en": "Spring 20 off 100",
    "kind": "threshold",
    "tiers": [{"min_paid_fen": 10000, "off_fen": 2000}],
    "validity": {"days_from_issue": 30},
    "face_value_fen": 2000,
    "cost_fen": 1500,
    "limits": {"per_member": 2},
}


def _basket(store: str = "S1", channel: str = "pos", amount: int = 12000) -> dict[str, Any]:
    return {
        "channel": channel,
        "store_id": store,
        "lines": [{"sku": "A", "qty": 1, "amount_fen": amount}],
    }


def _issue(api: Api, *members: int, key: str = "wave-1") -> list[dict[str, Any]]:
    headers = {**api.as_("admin"), "Idempotency-Key": key}
    put = api.client.put("/v1/coupon-templates/SPRING20", json=TEMPLATE, headers=api.as_("admin"))
    assert put.status_code == 200, put.text
    answer = api.client.post(
        "/v1/coupon-templates/SPRING20:issue", json={"member_ids": list(members)}, headers=headers
    )
    assert answer.status_code == 200, answer.text
    coupons: list[dict[str, Any]] = answer.json()["coupons"]
    return coupons


def test_issue_redeem_once_return_and_report(api: Api) -> None:
    m1, m2 = api.members["M1"], api.members["M2"]
    coupons = _issue(api, m1, m2)
    code = next(c["code"] for c in coupons if c["member_id"] == m1)
    till = {**api.as_("store"), "Idempotency-Key": "till-1"}
    body = {"order_id": "O-1", "basket": _basket(), "member_id": m1}
    first = api.client.post(f"/v1/coupons/{code}:redeem", json=body, headers=till)
    assert first.status_code == 200, first.text
    assert (first.json()["off_fen"], first.json()["replayed"]) == (2000, False)
    again = api.client.post(f"/v1/coupons/{code}:redeem", json=body, headers=till)
    assert again.json()["replayed"] is True
    other = {**api.as_("store"), "Idempotency-Key": "till-2"}
    used = api.client.post(
        f"/v1/coupons/{code}:redeem", json={**body, "order_id": "O-2"}, headers=other
    )
    assert (used.status_code, used.json()["code"]) == (409, "coupon_not_redeemable")
    # the member sees it redeemed; an analyst sees the code masked
    mine = api.client.get(f"/v1/members/{m1}/coupons", headers=api.as_("member")).json()
    assert [(c["code"], c["status"]) for c in mine["coupons"]] == [(code, "redeemed")]
    masked = api.client.get(f"/v1/members/{m1}/coupons", headers=api.as_("analyst")).json()
    assert masked["coupons"][0]["code"] == "••••" + code[-4:]
    # the refund returns it
    back = api.client.post(
        f"/v1/coupons/{code}:return",
        json={"order_id": "O-1"},
        headers={**api.as_("store"), "Idempotency-Key": "refund-1"},
    )
    assert back.status_code == 200 and back.json()["status"] == "issued"
    report = api.client.get("/v1/coupons/liability", headers=api.as_("analyst")).json()
    (row,) = report["templates"]
    assert (row["issued"], row["redeemed"], row["returned"], row["outstanding"]) == (2, 1, 1, 2)
    assert api.client.get("/v1/coupons/liability", headers=api.as_("store")).status_code == 403


def test_scopes_of_the_redeemers(api: Api) -> None:
    m1, m2 = api.members["M1"], api.members["M2"]
    coupons = {c["member_id"]: c["code"] for c in _issue(api, m1, m2)}
    body = {"order_id": "O-9", "basket": _basket(store="S2")}
    elsewhere = api.client.post(
        f"/v1/coupons/{coupons[m1]}:redeem",
        json=body,
        headers={**api.as_("store"), "Idempotency-Key": "k1"},
    )
    assert elsewhere.status_code == 403 and "store_id" in elsewhere.json()["detail"]
    other_channel = api.client.post(
        f"/v1/coupons/{coupons[m1]}:redeem",
        json={"order_id": "O-9", "basket": _basket(channel="jd")},
        headers={**api.as_("channel"), "Idempotency-Key": "k2"},
    )
    assert other_channel.status_code == 403
    # a member cannot redeem another member's coupon, even knowing its code
    theirs = api.client.post(
        f"/v1/coupons/{coupons[m2]}:redeem",
        json={"order_id": "O-9", "basket": _basket(channel="wechat_mp", store=None)},
        headers={**api.as_("member"), "Idempotency-Key": "k3"},
    )
    assert (theirs.status_code, theirs.json()["code"]) == (409, "coupon_not_redeemable")
    # the till has no key? refused, naming the header
    no_key = api.client.post(
        f"/v1/coupons/{coupons[m1]}:redeem", json=body, headers=api.as_("store")
    )
    assert no_key.status_code == 422
    # an analyst may not issue, a guide may not define
    assert (
        api.client.post(
            "/v1/coupon-templates/SPRING20:issue",
            json={"member_ids": [m1]},
            headers={**api.as_("analyst"), "Idempotency-Key": "x"},
        ).status_code
        == 403
    )
    assert (
        api.client.put(
            "/v1/coupon-templates/SPRING20", json=TEMPLATE, headers=api.as_("guide")
        ).status_code
        == 403
    )


def test_bad_templates_and_baskets_name_the_field(api: Api) -> None:
    bad = {**TEMPLATE, "percent_off": 10}
    answer = api.client.put("/v1/coupon-templates/SPRING20", json=bad, headers=api.as_("admin"))
    assert answer.status_code == 422 and "percent_off" in answer.text
    other = api.client.put("/v1/coupon-templates/OTHER", json=TEMPLATE, headers=api.as_("admin"))
    assert other.status_code == 422 and "code" in other.text
    (coupon,) = _issue(api, api.members["M1"])
    small = api.client.post(
        f"/v1/coupons/{coupon['code']}:redeem",
        json={"order_id": "O-1", "basket": _basket(amount=500)},
        headers={**api.as_("admin"), "Idempotency-Key": "small"},
    )
    assert (small.status_code, small.json()["code"]) == (409, "coupon_not_applicable")
    empty = api.client.post(
        f"/v1/coupons/{coupon['code']}:redeem",
        json={"order_id": "O-1", "basket": {"channel": "pos", "lines": []}},
        headers={**api.as_("admin"), "Idempotency-Key": "empty"},
    )
    assert empty.status_code == 422 and "lines" in empty.text
