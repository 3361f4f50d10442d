"""The QR scenes API: HQ registers codes (WeChat's limits answered by field and rule), a
channel records scans once per key, roles hold, and the report's counts open their
members."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from tests.api.conftest import Api


def test_register_scan_report_and_roles(api: Api) -> None:
    admin = api.as_("admin")
    m1, m2 = api.members["M1"], api.members["M2"]
    body = {"scene": "S1-door", "kind": "permanent", "store_id": "S1", "campaign": "spring"}
    made = api.client.post("/v1/qr-scenes", json=body, headers=admin)
    assert made.status_code == 200, made.text
    assert made.json()["store_id"] == "S1" and made.json()["expires_at"] is None
    # the same again answers the code; elsewhere is a conflict
    assert api.client.post("/v1/qr-scenes", json=body, headers=admin).status_code == 200
    other = api.client.post("/v1/qr-scenes", json={**body, "store_id": "S2"}, headers=admin)
    assert (other.status_code, other.json()["code"]) == (409, "scene_exists")
    # WeChat's limits, named
    long = api.client.post(
        "/v1/qr-scenes", json={"scene": "a" * 65, "kind": "permanent"}, headers=admin
    )
    assert long.status_code == 422 and "scene: 1 to 64 characters" in long.text
    too_long_life = {
        "scene": "tmp",
        "kind": "temporary",
        "expires_at": (datetime.now(UTC) + timedelta(days=31)).isoformat(),
    }
    refused = api.client.post("/v1/qr-scenes", json=too_long_life, headers=admin)
    assert refused.status_code == 422 and "expires_at" in refused.text
    # only HQ defines; an analyst reads the list; a member may not scan
    assert api.client.post("/v1/qr-scenes", json=body, headers=api.as_("store")).status_code == 403
    listed = api.client.get("/v1/qr-scenes", headers=api.as_("analyst"))
    assert [s["scene"] for s in listed.json()["scenes"]] == ["S1-door"]
    scan = {"scene": "S1-door", "member_id": m1, "acquired": True}
    as_member = {**api.as_("member"), "Idempotency-Key": "m-1"}
    assert api.client.post("/v1/qr-scans", json=scan, headers=as_member).status_code == 403
    # a channel's scan, delivered twice, is recorded once
    channel = {**api.as_("channel"), "Idempotency-Key": "wx-1"}
    first = api.client.post("/v1/qr-scans", json=scan, headers=channel)
    again = api.client.post("/v1/qr-scans", json=scan, headers=channel)
    assert first.status_code == 200, first.text
    assert (first.json()["first_touch"], again.json()["replayed"]) == (True, True)
    assert api.store.count("qr_scans") == 1
    shared = {"scene": "S1-door", "member_id": m2, "referrer_member_id": m1, "acquired": True}
    api.client.post("/v1/qr-scans", json=shared, headers={**channel, "Idempotency-Key": "wx-2"})
    unknown = api.client.post(
        "/v1/qr-scans", json={"scene": "nowhere"}, headers={**channel, "Idempotency-Key": "wx-3"}
    )
    assert unknown.status_code == 404
    # the report: M1 has one paid order of 99 yuan (the brand's orders.csv), M2 none
    report = api.client.get("/v1/qr-scenes/report", headers=api.as_("analyst"))
    assert report.status_code == 200, report.text
    (row,) = report.json()["scenes"]
    assert report.json()["knee"] == 4
    assert (row["acquired"], row["reached_orders"]["1"], row["revenue_fen"]) == (2, 1, 9900)
    members = api.client.get(
        "/v1/qr-scenes/report/members",
        params={"scene": "S1-door", "min_orders": 1},
        headers=api.as_("analyst"),
    )
    assert members.json()["member_ids"] == [m1]
    stars = api.client.get("/v1/qr-scenes/stars", headers=api.as_("analyst")).json()["stars"]
    assert stars == [{"member_id": m1, "brought": 1, "scans": 1, "brought_member_ids": [m2]}]
    assert api.client.get("/v1/qr-scenes/report", headers=api.as_("guide")).status_code == 403
    # archiving: later scans are flagged and acquire no one
    done = api.client.post("/v1/qr-scenes:archive", json={"scene": "S1-door"}, headers=admin)
    assert done.status_code == 200 and done.json()["archived_at"] is not None
    late = api.client.post(
        "/v1/qr-scans",
        json={"scene": "S1-door", "identity_id": 5},
        headers={**channel, "Idempotency-Key": "wx-4"},
    )
    assert (late.json()["flag"], late.json()["first_touch"]) == ("archived", False)
    with api.store.engine.connect() as conn:
        flagged = conn.execute(
            text("SELECT COUNT(*) FROM qr_scans WHERE group_id = :g AND flag = 'archived'"),
            {"g": api.store.group_id},
        ).scalar_one()
    assert flagged == 1
