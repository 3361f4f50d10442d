"""The faces of binding and distribution: HQ rebinds and releases, a guide sees the guide
of its own members only and records its own shares, a channel records touches once per
key, an order's attribution is explained to HQ and to its guide."""

from __future__ import annotations

from datetime import datetime

from tests.api.conftest import Api

from siyu.guides.attribution import attribute


def _idem(api: Api, role: str, key: str) -> dict[str, str]:
    return {**api.as_(role), "Idempotency-Key": key}


def test_hq_rebinds_and_a_guide_then_sees_its_new_member(api: Api) -> None:
    c, m2 = api.client, api.members["M2"]
    # given M2, whom guide G1 never served: out of G1's scope
    assert c.get(f"/v1/members/{m2}/guide", headers=api.as_("guide")).status_code == 403
    # when HQ binds M2 to G1 (and retries the request)
    body = {"guide_id": "G1", "reason": "moved to Shanghai"}
    first = c.post(f"/v1/members/{m2}/guide:rebind", json=body, headers=_idem(api, "admin", "r1"))
    retry = c.post(f"/v1/members/{m2}/guide:rebind", json=body, headers=_idem(api, "admin", "r1"))
    # then M2's guide is G1 by HQ, once, and G1 now reads it
    assert first.status_code == 200, first.text
    assert retry.json() == first.json()
    assert first.json()["guide"]["rule"] == "hq" and len(first.json()["history"]) == 1
    seen = c.get(f"/v1/members/{m2}/guide", headers=api.as_("guide"))
    assert seen.status_code == 200 and seen.json()["guide"]["guide_id"] == "G1"
    # and an unknown guide is 404 with its code
    bad = c.post(
        f"/v1/members/{m2}/guide:rebind",
        json={"guide_id": "G9", "reason": "x"},
        headers=_idem(api, "admin", "r2"),
    )
    assert (bad.status_code, bad.json()["code"]) == (404, "guide_not_found")
    # when G1 leaves, S1 has no other guide: M2 is unbound, the history says why
    gone = c.post(
        "/v1/guides/G1:release", json={"reason": "resigned"}, headers=_idem(api, "admin", "l1")
    )
    assert gone.json() == {"guide_id": "G1", "released": 1, "rebound": 0}
    after = c.get(f"/v1/members/{m2}/guide", headers=api.as_("admin")).json()
    assert after["guide"] is None
    assert [(h["guide_id"], h["ended_reason"], h["note"]) for h in after["history"]] == [
        ("G1", "guide_left", "resigned")
    ]


def test_a_share_touched_then_an_order_is_explained(api: Api) -> None:
    c, m1 = api.client, api.members["M1"]
    share = {"kind": "product", "target": "K1", "share_code": "g1-durian"}
    # a guide records its own shares only
    made = c.post("/v1/guides/G1/shares", json=share, headers=api.as_("guide"))
    assert made.status_code == 200, made.text
    other = c.post("/v1/guides/G2/shares", json=share, headers=api.as_("guide"))
    assert other.status_code == 403
    # a channel records a touch once per key
    touch = {"member_id": m1, "touched_at": "2024-01-01T10:00:00Z"}
    t1 = c.post("/v1/shares/g1-durian/touches", json=touch, headers=_idem(api, "channel", "k1"))
    t2 = c.post("/v1/shares/g1-durian/touches", json=touch, headers=_idem(api, "channel", "k1"))
    assert t1.status_code == 200, t1.text
    assert t1.json()["touch_id"] == t2.json()["touch_id"]
    missing = c.post(
        "/v1/shares/nope-nope/touches", json=touch, headers=_idem(api, "channel", "k2")
    )
    assert (missing.status_code, missing.json()["code"]) == (404, "share_not_found")
    # a guide lists its own shares, with their opens, and no other guide's
    listed = c.get("/v1/guides/G1/shares", headers=api.as_("guide")).json()["shares"]
    assert [(x["share_code"], x["touches"]) for x in listed] == [("g1-durian", 1)]
    assert c.get("/v1/guides/G2/shares", headers=api.as_("guide")).status_code == 403
    # when January is attributed, O1 (at G1's till a day later) is G1's by its share
    attribute(api.store.engine, api.store.group_id, datetime(2024, 1, 1), datetime(2024, 2, 1))
    why = c.get("/v1/orders/O1/attribution", headers=api.as_("guide"))
    assert why.status_code == 200, why.text
    got = why.json()
    assert (got["guide_id"], got["basis"], got["share_code"], got["touch_id"]) == (
        "G1",
        "share",
        "g1-durian",
        t1.json()["touch_id"],
    )
    assert got["touched_at"].startswith("2024-01-01T10:00:00")
    assert c.get("/v1/orders/NOPE/attribution", headers=api.as_("admin")).status_code == 404
