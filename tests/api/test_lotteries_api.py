"""The lotteries API: HQ defines a pool (the answer publishes the commitment, never the
seed); a member draws for itself once per key; a store hands the prize over at its own
stores only, once; analysts audit; errors name the field and rule."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api

from siyu.inventory.stock import set_stock

POOL: dict[str, Any] = {
    "code": "SPRING",
    "name_zh": "春季抽奖",
    "name_en": "Spring draw",
    "starts_at": "2020-01-01T00:00:00Z",
    "ends_at": "2099-01-01T00:00:00Z",
    "entry": "free",
    "per_member": 2,
    "prizes": [
        {
            "code": "BAG",
            "name_zh": "帆布袋",
            "name_en": "Tote bag",
            "sku": "BAG",
            "location_id": "S1",
            "odds_ppm": 1_000_000,
            "units": 5,
        }
    ],
}


def _pool(api: Api) -> dict[str, Any]:
    set_stock(
        api.store.engine,
        api.store.group_id,
        "BAG",
        "S1",
        delta=5,
        kind="receive",
        reason="prizes",
        idempotency_key="in:bag",
    )
    put = api.client.put("/v1/lottery-pools/SPRING", json=POOL, headers=api.as_("admin"))
    assert put.status_code == 200, put.text
    answer: dict[str, Any] = put.json()
    return answer


def test_define_draw_claim_and_audit(api: Api) -> None:
    pool = _pool(api)
    assert len(pool["seed_sha256"]) == 64 and pool["seed"] is None
    me = {**api.as_("member"), "Idempotency-Key": "d1"}
    first = api.client.post("/v1/lottery-pools/SPRING:draw", json={}, headers=me)
    assert first.status_code == 200, first.text
    won = first.json()
    assert (won["outcome"], won["member_id"], won["replayed"]) == (
        "won",
        api.members["M1"],
        False,
    )
    again = api.client.post("/v1/lottery-pools/SPRING:draw", json={}, headers=me)
    assert again.json()["replayed"] is True and again.json()["claim_code"] == won["claim_code"]
    # a member draws only for itself
    other = {**api.as_("member"), "Idempotency-Key": "d2"}
    body = {"member_id": api.members["M2"]}
    assert (
        api.client.post("/v1/lottery-pools/SPRING:draw", json=body, headers=other).status_code
        == 403
    )
    # the store hands the prize over at its own store, once
    code = won["claim_code"]
    till = {**api.as_("store"), "Idempotency-Key": "c1"}
    elsewhere = api.client.post(
        f"/v1/lottery-prizes/{code}:claim", json={"store_id": "S2"}, headers=till
    )
    assert elsewhere.status_code == 403
    done = api.client.post(
        f"/v1/lottery-prizes/{code}:claim", json={"store_id": "S1"}, headers=till
    )
    assert done.status_code == 200, done.text
    twice = api.client.post(
        f"/v1/lottery-prizes/{code}:claim",
        json={"store_id": "S1"},
        headers={**api.as_("store"), "Idempotency-Key": "c2"},
    )
    assert (twice.status_code, twice.json()["code"]) == (409, "prize_not_claimable")
    audit = api.client.get("/v1/lottery-pools/SPRING/audit", headers=api.as_("analyst"))
    assert audit.status_code == 200 and audit.json()["ok"] is True
    assert audit.json()["won"] == {"BAG": 1}
    assert (
        api.client.get("/v1/lottery-pools/SPRING/audit", headers=api.as_("store")).status_code
        == 403
    )
    # the seed stays secret while the pool runs
    early = api.client.post("/v1/lottery-pools/SPRING:reveal", headers=api.as_("admin"))
    assert (early.status_code, early.json()["code"]) == (409, "pool_still_open")


def test_limits_and_bad_pools_name_the_rule(api: Api) -> None:
    _pool(api)
    for i in range(2):
        headers = {**api.as_("store"), "Idempotency-Key": f"k{i}"}
        ok = api.client.post(
            "/v1/lottery-pools/SPRING:draw", json={"member_id": api.members["M2"]}, headers=headers
        )
        assert ok.status_code == 200, ok.text
    third = api.client.post(
        "/v1/lottery-pools/SPRING:draw",
        json={"member_id": api.members["M2"]},
        headers={**api.as_("store"), "Idempotency-Key": "k3"},
    )
    assert (third.status_code, third.json()["code"]) == (409, "draw_limit_reached")
    no_key = api.client.post("/v1/lottery-pools/SPRING:draw", json={}, headers=api.as_("member"))
    assert no_key.status_code == 422
    changed = api.client.put(
        "/v1/lottery-pools/SPRING", json={**POOL, "per_member": 9}, headers=api.as_("admin")
    )
    assert (changed.status_code, changed.json()["code"]) == (409, "pool_already_defined")
    too_likely = {**POOL, "code": "X", "prizes": [{**POOL["prizes"][0], "odds_ppm": 2_000_000}]}
    bad = api.client.put("/v1/lottery-pools/X", json=too_likely, headers=api.as_("admin"))
    assert bad.status_code == 422 and "odds_ppm" in bad.text
    assert (
        api.client.put("/v1/lottery-pools/SPRING", json=POOL, headers=api.as_("store")).status_code
        == 403
    )
