"""Every role x every endpoint, generated from the route table: a new /v1 route without a
declared permission, or without a case here, fails this test."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from tests.api.conftest import PHONE_1, Api

from siyu.app import create_app
from siyu.auth.principal import PERMISSIONS, Role
from siyu.config import Settings


def _permission(route: APIRoute) -> str | None:
    for dep in route.dependant.dependencies:
        permission = getattr(dep.call, "permission", None)
        if permission:
            return str(permission)
    return None


def _cases(api: Api) -> dict[tuple[str, str], tuple[str, dict[str, Any] | None]]:
    """A request per route that the role allowed to make it would make successfully."""
    m1 = api.members["M1"]
    order = {
        "order_id": "API-1",
        "brand_id": "B1",
        "channel": "tmall",
        "buyer_type": "tmall_ouid",
        "buyer_value": "t-api",
        "store_id": "S1",
        "ordered_at": "2024-03-01T00:00:00",
        "total_fen": 100,
        "paid_fen": 100,
    }
    event = {
        "event_id": "EV-1",
        "type": "view",
        "channel": "tmall",
        "identity_type": "tmall_ouid",
        "identity_value": "t-api",
        "occurred_at": "2024-03-01T00:00:00",
    }
    refund = {
        "refund_id": "RF-1",
        "order_id": "O1",
        "refunded_at": "2024-03-02T00:00:00",
        "amount_fen": 1,
    }
    return {
        ("GET", "/v1/members/lookup"): (f"/v1/members/lookup?type=phone&value={PHONE_1}", None),
        ("GET", "/v1/members/{member_id}"): (f"/v1/members/{m1}", None),
        ("POST", "/v1/members/{member_id}/identities"): (
            f"/v1/members/{m1}/identities",
            {"type": "tmall_ouid", "value": "t-bind", "channel": "tmall"},
        ),
        ("POST", "/v1/members:merge"): (
            "/v1/members:merge",
            {"member_ids": [m1, api.members["M2"]], "reason": "same"},
        ),
        ("POST", "/v1/merges/{merge_id}:undo"): ("/v1/merges/999999:undo", {"reason": "x"}),
        ("POST", "/v1/orders:batch"): ("/v1/orders:batch", {"items": [order]}),
        ("POST", "/v1/events:batch"): ("/v1/events:batch", {"items": [event]}),
        ("POST", "/v1/refunds:batch"): ("/v1/refunds:batch", {"items": [refund]}),
        ("GET", "/v1/members/{member_id}/balances"): (f"/v1/members/{m1}/balances", None),
        ("GET", "/v1/members/{member_id}/ledger"): (f"/v1/members/{m1}/ledger", None),
        ("POST", "/v1/members/{member_id}/points:earn"): (
            f"/v1/members/{m1}/points:earn",
            {"order_id": "O1", "store_id": "S1"},
        ),
        ("POST", "/v1/members/{member_id}/points:spend"): (
            f"/v1/members/{m1}/points:spend",
            {"points": 1, "store_id": "S1"},
        ),
        ("POST", "/v1/members/{member_id}/points:adjust"): (
            f"/v1/members/{m1}/points:adjust",
            {"points": 5, "reason": "goodwill"},
        ),
        ("POST", "/v1/members/{member_id}/stored-value:top-up"): (
            f"/v1/members/{m1}/stored-value:top-up",
            {"paid_fen": 1000, "bonus_fen": 100, "store_id": "S1"},
        ),
        ("POST", "/v1/members/{member_id}/stored-value:pay"): (
            f"/v1/members/{m1}/stored-value:pay",
            {"amount_fen": 10, "store_id": "S1"},
        ),
        ("GET", "/v1/points/rules"): ("/v1/points/rules", None),
        ("PUT", "/v1/points/rules"): ("/v1/points/rules", {"base_points_per_yuan": 2}),
        ("GET", "/v1/tiers/rules"): ("/v1/tiers/rules", None),
        ("PUT", "/v1/tiers/rules"): ("/v1/tiers/rules", {"window_days": 180}),
        ("PUT", "/v1/inventory/{sku}/locations/{location_id}"): (
            "/v1/inventory/K1/locations/S1",
            {"delta": 5, "kind": "receive", "reason": "delivery"},
        ),
        ("GET", "/v1/inventory/{sku}"): ("/v1/inventory/K1", None),
        ("PUT", "/v1/stock-locations/{location_id}"): (
            "/v1/stock-locations/W2",
            {"kind": "warehouse", "city": "上海"},
        ),
        ("PUT", "/v1/channels/{channel}/locations/{location_id}"): (
            "/v1/channels/tmall/locations/W1",
            {"safety_stock": 1},
        ),
        ("POST", "/v1/reservations"): (
            "/v1/reservations",
            {"order_id": "R-1", "lines": [{"sku": "K1", "qty": 1}]},
        ),
        ("POST", "/v1/reservations/{reservation_id}:confirm"): (
            "/v1/reservations/999:confirm",
            None,
        ),
        ("POST", "/v1/reservations/{reservation_id}:release"): (
            "/v1/reservations/999:release",
            None,
        ),
        ("POST", "/v1/members/{member_id}/stored-value:refund"): (
            f"/v1/members/{m1}/stored-value:refund",
            {"top_up_posting_id": 999999, "store_id": "S1"},
        ),
        ("GET", "/v1/guides/{guide_id}/tasks"): ("/v1/guides/G1/tasks", None),
        ("POST", "/v1/tasks/{task_id}:contacted"): ("/v1/tasks/999999:contacted", {"note": "x"}),
        ("POST", "/v1/tasks/{task_id}:done"): ("/v1/tasks/999999:done", None),
        ("POST", "/v1/tasks/{task_id}:dismiss"): ("/v1/tasks/999999:dismiss", None),
        ("PUT", "/v1/guide-tasks/{code}"): ("/v1/guide-tasks/auth", GUIDE_TASK),
        ("POST", "/v1/guide-tasks/{code}:assign"): ("/v1/guide-tasks/nope:assign", None),
        ("GET", "/v1/guide-tasks/{code}/report"): ("/v1/guide-tasks/nope/report", None),
        ("GET", "/v1/guides/{guide_id}/training"): ("/v1/guides/G1/training", None),
        ("POST", "/v1/training/{code}:complete"): ("/v1/training/nope:complete", None),
        ("GET", "/v1/commission/rules"): ("/v1/commission/rules", None),
        ("PUT", "/v1/commission/rules"): ("/v1/commission/rules", {"default_rate_bp": 100}),
        ("POST", "/v1/commission:accrue"): (
            "/v1/commission:accrue",
            {"since": "2024-03-01T00:00:00", "until": "2024-04-01T00:00:00"},
        ),
        ("POST", "/v1/commission:release"): ("/v1/commission:release", {}),
        ("POST", "/v1/guides/{guide_id}/commission:pay"): (
            "/v1/guides/G1/commission:pay",
            {"month": "2024-03"},
        ),
        ("GET", "/v1/guides/{guide_id}/commission"): (
            "/v1/guides/G1/commission?month=2024-03",
            None,
        ),
        ("GET", "/v1/stores/{store_id}/commission"): (
            "/v1/stores/S1/commission?month=2024-03",
            None,
        ),
        ("GET", "/v1/members/{member_id}/guide"): (f"/v1/members/{m1}/guide", None),
        ("POST", "/v1/members/{member_id}/guide:rebind"): (
            f"/v1/members/{m1}/guide:rebind",
            {"guide_id": "G1", "reason": "HQ's choice"},
        ),
        ("POST", "/v1/guides/{guide_id}:release"): ("/v1/guides/G9:release", {"reason": "left"}),
        ("POST", "/v1/guides/{guide_id}/shares"): (
            "/v1/guides/G1/shares",
            {"kind": "product", "target": "K1", "share_code": "auth-g1"},
        ),
        ("GET", "/v1/guides/{guide_id}/shares"): ("/v1/guides/G1/shares", None),
        ("POST", "/v1/shares/{share_code}/touches"): (
            "/v1/shares/auth-g1/touches",
            {"member_id": m1, "touched_at": "2024-03-01T00:00:00Z"},
        ),
        ("GET", "/v1/orders/{order_id}/attribution"): ("/v1/orders/O1/attribution", None),
        ("GET", "/v1/guide-classes/rules"): ("/v1/guide-classes/rules", None),
        ("PUT", "/v1/guide-classes/rules"): ("/v1/guide-classes/rules", GUIDE_CLASS_RULES),
        ("POST", "/v1/guide-classes:classify"): (
            "/v1/guide-classes:classify",
            {"since": "2024-12-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"},
        ),
        ("GET", "/v1/guide-classes"): ("/v1/guide-classes", None),
        ("GET", "/v1/guide-programme"): ("/v1/guide-programme", None),
        ("PUT", "/v1/guide-programme"): ("/v1/guide-programme", GUIDE_PROGRAMME),
        ("GET", "/v1/guide-programme/report"): (
            "/v1/guide-programme/report?since=2024-12-01T00:00:00Z&until=2025-01-01T00:00:00Z",
            None,
        ),
        ("GET", "/v1/training"): ("/v1/training", None),
        ("GET", "/v1/oneid/reviews"): ("/v1/oneid/reviews", None),
        ("GET", "/v1/oneid/reviews/{review_id}"): ("/v1/oneid/reviews/999999", None),
        ("POST", "/v1/oneid/reviews/{review_id}:accept"): ("/v1/oneid/reviews/999999:accept", None),
        ("POST", "/v1/oneid/reviews/{review_id}:reject"): ("/v1/oneid/reviews/999999:reject", None),
        ("GET", "/v1/tags"): ("/v1/tags", None),
        ("POST", "/v1/tags"): (
            "/v1/tags",
            {"slug": "authz", "name_zh": "测试", "name_en": "Test"},
        ),
        ("GET", "/v1/tags/{slug}"): ("/v1/tags/no-such-tag", None),
        ("GET", "/v1/tags/{slug}/members"): ("/v1/tags/no-such-tag/members", None),
        ("GET", "/v1/members/{member_id}/tags"): (f"/v1/members/{m1}/tags", None),
        ("GET", "/v1/members/{member_id}/tags/history"): (f"/v1/members/{m1}/tags/history", None),
        ("PUT", "/v1/members/{member_id}/tags/{slug}"): (
            f"/v1/members/{m1}/tags/no-such-tag",
            {"value": "x"},
        ),
        ("DELETE", "/v1/members/{member_id}/tags/{slug}"): (
            f"/v1/members/{m1}/tags/no-such-tag",
            None,
        ),
        ("GET", "/v1/segments"): ("/v1/segments", None),
        ("POST", "/v1/segments"): (
            "/v1/segments",
            {"slug": "authz", "name_zh": "测试", "name_en": "Test", "rule": RULE},
        ),
        ("POST", "/v1/segments:preview"): ("/v1/segments:preview", {"rule": RULE}),
        ("GET", "/v1/segments/{slug}"): ("/v1/segments/no-such", None),
        ("PATCH", "/v1/segments/{slug}"): ("/v1/segments/no-such", {"name_en": "x"}),
        ("DELETE", "/v1/segments/{slug}"): ("/v1/segments/no-such", None),
        ("GET", "/v1/segments/{slug}/versions"): ("/v1/segments/no-such/versions", None),
        ("POST", "/v1/segments/{slug}:evaluate"): ("/v1/segments/no-such:evaluate", None),
        ("GET", "/v1/segments/{slug}/members"): ("/v1/segments/no-such/members", None),
        ("GET", "/v1/segments/{slug}/export"): ("/v1/segments/no-such/export", None),
        ("GET", "/v1/segments/{slug}/history"): ("/v1/segments/no-such/history", None),
        ("GET", "/v1/members/{member_id}/segments"): (f"/v1/members/{m1}/segments", None),
        ("GET", "/v1/members/{member_id}/affinity"): (f"/v1/members/{m1}/affinity", None),
        ("GET", "/v1/affinity/rules"): ("/v1/affinity/rules", None),
        ("PUT", "/v1/affinity/rules"): ("/v1/affinity/rules", {"window_days": 180}),
        ("POST", "/v1/qr-scenes"): ("/v1/qr-scenes", {"scene": "auth", "kind": "permanent"}),
        ("GET", "/v1/qr-scenes"): ("/v1/qr-scenes", None),
        ("POST", "/v1/qr-scenes:archive"): ("/v1/qr-scenes:archive", {"scene": "no-such"}),
        ("POST", "/v1/qr-scans"): ("/v1/qr-scans", {"scene": "no-such"}),
        ("GET", "/v1/qr-scenes/report"): ("/v1/qr-scenes/report", None),
        ("GET", "/v1/qr-scenes/report/members"): ("/v1/qr-scenes/report/members?scene=x", None),
        ("GET", "/v1/qr-scenes/stars"): ("/v1/qr-scenes/stars", None),
        ("PUT", "/v1/coupon-templates/{code}"): ("/v1/coupon-templates/AUTH", COUPON),
        ("GET", "/v1/coupon-templates"): ("/v1/coupon-templates", None),
        ("POST", "/v1/coupon-templates/{code}:issue"): (
            "/v1/coupon-templates/NOPE:issue",
            {"member_ids": [m1]},
        ),
        ("GET", "/v1/members/{member_id}/coupons"): (f"/v1/members/{m1}/coupons", None),
        ("POST", "/v1/coupons/{code}:redeem"): (
            "/v1/coupons/NOSUCHCODE:redeem",
            {
                "order_id": "O-auth",
                "basket": {
                    "channel": "tmall",
                    "store_id": "S1",
                    "lines": [{"sku": "A", "qty": 1, "amount_fen": 100}],
                },
            },
        ),
        ("POST", "/v1/coupons/{code}:return"): ("/v1/coupons/NOSUCHCODE:return", {"order_id": "O"}),
        ("GET", "/v1/coupons/liability"): ("/v1/coupons/liability", None),
        ("GET", "/v1/global-holdout"): ("/v1/global-holdout", None),
        ("PUT", "/v1/global-holdout"): ("/v1/global-holdout", {"share_bp": 0}),
        ("GET", "/v1/global-holdout/report"): ("/v1/global-holdout/report", None),
        ("GET", "/v1/global-holdout/members"): ("/v1/global-holdout/members", None),
        ("PUT", "/v1/campaigns/{code}"): ("/v1/campaigns/AUTH", CAMPAIGN),
        ("GET", "/v1/campaigns"): ("/v1/campaigns", None),
        ("POST", "/v1/campaigns/{code}:launch"): ("/v1/campaigns/NOPE:launch", None),
        ("GET", "/v1/campaigns/{code}/report"): ("/v1/campaigns/NOPE/report", None),
        ("GET", "/v1/campaigns/{code}/members"): ("/v1/campaigns/NOPE/members", None),
        ("PUT", "/v1/experiments/{code}"): ("/v1/experiments/AUTH", EXPERIMENT),
        ("GET", "/v1/experiments"): ("/v1/experiments", None),
        ("GET", "/v1/experiments/{code}"): ("/v1/experiments/NOPE", None),
        ("POST", "/v1/experiments/{code}:start"): ("/v1/experiments/NOPE:start", None),
        ("POST", "/v1/experiments/{code}:stop"): ("/v1/experiments/NOPE:stop", None),
        ("POST", "/v1/experiments/{code}/exposures"): (
            "/v1/experiments/NOPE/exposures",
            {"member_ids": [m1]},
        ),
        ("GET", "/v1/experiments/{code}/results"): ("/v1/experiments/NOPE/results", None),
        ("GET", "/v1/experiments/{code}/members"): (
            "/v1/experiments/NOPE/members?variant=control",
            None,
        ),
        ("PUT", "/v1/lottery-pools/{code}"): ("/v1/lottery-pools/NO", {"code": "NO"}),
        ("GET", "/v1/lottery-pools/{code}"): ("/v1/lottery-pools/NO", None),
        ("POST", "/v1/lottery-pools/{code}:draw"): (
            "/v1/lottery-pools/NO:draw",
            {"member_id": m1},
        ),
        ("POST", "/v1/lottery-prizes/{claim_code}:claim"): (
            "/v1/lottery-prizes/NOCODE:claim",
            {"store_id": "S1"},
        ),
        ("POST", "/v1/lottery-pools/{code}:reveal"): ("/v1/lottery-pools/NO:reveal", None),
        ("GET", "/v1/lottery-pools/{code}/audit"): ("/v1/lottery-pools/NO/audit", None),
        ("PUT", "/v1/receipt-rules/{code}"): ("/v1/receipt-rules/AUTH", RECEIPT_RULE),
        ("GET", "/v1/receipt-rules"): ("/v1/receipt-rules", None),
        ("POST", "/v1/receipts"): (
            "/v1/receipts",
            {
                "rule": "NOPE",
                "member_id": m1,
                "store_id": "S1",
                "receipt_no": "R-1",
                "amount_fen": 100,
                "purchased_at": "2026-01-01T00:00:00Z",
                "image_ref": "oss://r/1.jpg",
            },
        ),
        ("GET", "/v1/receipts"): ("/v1/receipts?status=pending", None),
        ("GET", "/v1/members/{member_id}/receipts"): (f"/v1/members/{m1}/receipts", None),
        ("POST", "/v1/receipts/{receipt_id}:accept"): ("/v1/receipts/999999:accept", None),
        ("POST", "/v1/receipts/{receipt_id}:reject"): (
            "/v1/receipts/999999:reject",
            {"reason": "x"},
        ),
        ("POST", "/v1/receipts:settle"): ("/v1/receipts:settle", None),
        ("PUT", "/v1/sends/{code}"): ("/v1/sends/AUTH", SEND),
        ("GET", "/v1/sends"): ("/v1/sends", None),
        ("GET", "/v1/sends/{code}"): ("/v1/sends/NOPE", None),
        ("POST", "/v1/sends/{code}:plan"): ("/v1/sends/NOPE:plan", None),
        ("POST", "/v1/sends/{code}:send"): ("/v1/sends/NOPE:send", None),
        ("POST", "/v1/sends/{code}:cancel"): ("/v1/sends/NOPE:cancel", None),
        ("GET", "/v1/sends/{code}/figures"): ("/v1/sends/NOPE/figures", None),
        ("GET", "/v1/sends/{code}/recipients"): ("/v1/sends/NOPE/recipients", None),
        ("GET", "/v1/messaging/policy"): ("/v1/messaging/policy", None),
        ("PUT", "/v1/messaging/policy"): ("/v1/messaging/policy", {"per_week": 3}),
        ("POST", "/v1/members/{member_id}/consent"): (
            f"/v1/members/{m1}/consent",
            {"action": "withdraw", "source": "store"},
        ),
        ("GET", "/v1/members/{member_id}/consent"): (f"/v1/members/{m1}/consent", None),
        ("POST", "/v1/message-events:batch"): (
            "/v1/message-events:batch",
            {"items": [{"message_key": "x:1:1", "kind": "clicked", "event_id": "E-1"}]},
        ),
    }


IDEM = {"Idempotency-Key": "anonymous"}
CAMPAIGN = {
    "code": "AUTH",
    "name_zh": "活动",
    "name_en": "Campaign",
    "target": {"stage": "lapsed"},
    "starts_at": "2026-01-01T00:00:00Z",
    "ends_at": "2026-02-01T00:00:00Z",
    "points_bonus": 10,
}
EXPERIMENT = {
    "code": "AUTH",
    "name_zh": "实验",
    "name_en": "Experiment",
    "target": {"stage": "lapsed"},
    "variants": [
        {"name": "control", "weight_bp": 5000, "kind": "none"},
        {"name": "note", "weight_bp": 5000, "kind": "message", "ref": "M1"},
    ],
    "window_days": 30,
    "starts_at": "2026-01-01T00:00:00Z",
    "ends_at": "2026-02-01T00:00:00Z",
}
COUPON = {
    "code": "AUTH",
    "name_zh": "券",
    "name_en": "Coupon",
    "kind": "fixed",
    "off_fen": 100,
    "validity": {"days_from_issue": 7},
    "face_value_fen": 100,
    "cost_fen": 100,
}
RECEIPT_RULE = {
    "code": "AUTH",
    "name_zh": "小票",
    "name_en": "Receipt",
    "tiers": [{"min_paid_fen": 100, "points": 1}],
    "starts_at": "2026-01-01T00:00:00Z",
    "ends_at": "2027-01-01T00:00:00Z",
}
SEND = {
    "code": "AUTH",
    "channel": "sms",
    "content": {"template": "T1", "params": {"1": "x"}},
    "target": {"stage": "lapsed"},
    "scheduled_at": "2030-01-07T02:00:00Z",
}
GUIDE_TASK = {
    "code": "auth",
    "title_zh": "回访",
    "title_en": "Call",
    "target": {"kind": "stage", "value": "lapsed"},
    "due_on": "2030-01-10",
    "script": "您好",
}
GUIDE_CLASS_RULES = {
    "A": {"min": {"sales_fen": 100}, "playbook": {"zh": "工具", "en": "Tools"}},
    "B": {"min": {"orders": 1}, "playbook": {"zh": "SOP", "en": "SOPs"}},
    "C": {"playbook": {"zh": "督导", "en": "Supervision"}},
}
GUIDE_PROGRAMME = {
    "stages": [
        {
            "code": "sales",
            "name_zh": "销售",
            "name_en": "Sales",
            "starts_on": "2024-01-01",
            "focus": [{"metric": "sales_fen", "min": 100}],
        }
    ]
}
RULE = {"version": 1, "rule": {"orders": {"within_days": 30, "count": {"gte": 1}}}}


def test_every_v1_route_declares_a_permission_and_is_enforced_for_every_role(api: Api) -> None:
    routes = [
        (c.path, c.methods, c.route)
        for c in iter_route_contexts(api.app.router.routes)
        if isinstance(c.route, APIRoute) and c.path.startswith("/v1")
    ]
    cases = _cases(api)
    assert routes
    for path, methods, route in routes:
        permission = _permission(route)
        assert permission in PERMISSIONS, f"{path} declares no known permission"
        for method in methods:
            assert (method, path) in cases, f"add a case for {method} {path}"
            url, body = cases[(method, path)]
            # without credentials: 401
            anonymous = api.client.request(method, url, json=body, headers=IDEM)
            assert anonymous.status_code == 401, (path, anonymous.text)
            assert anonymous.headers["content-type"] == "application/problem+json"
            for role in Role:
                headers = {**api.as_(role), "Idempotency-Key": f"{role}-{method}-{path}"}
                response = api.client.request(method, url, json=body, headers=headers)
                allowed = role in PERMISSIONS[permission]
                if allowed:
                    assert (
                        response.status_code != 403
                        or "scope" in response.text
                        or ("only" in response.text)
                    ), (role, path, response.text)
                else:
                    assert response.status_code == 403, (role, path, response.text)


@pytest.mark.parametrize("header", ["Bearer sy_not-a-key", "Bearer ", "Basic abc"])
def test_bad_credentials_are_401_with_one_message(api: Api, header: str) -> None:
    response = api.client.get(f"/v1/members/{api.members['M1']}", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


def test_a_revoked_key_stops_working(api: Api) -> None:
    from siyu.auth.keys import authenticate, revoke_key
    from siyu.privacy import Vault

    vault = Vault(bytes(range(32)))
    key_id = authenticate(api.store.engine, vault, api.keys["analyst"]).key_id
    revoke_key(api.store.engine, api.store.group_id, key_id)
    response = api.client.get(f"/v1/members/{api.members['M1']}", headers=api.as_("analyst"))
    assert response.status_code == 401


# The routes a platform calls. A platform cannot present an API key, so none opens them:
# each is authenticated by the platform's own proof (a signature over an encrypted push, a
# secret in the URL; messaging.callbacks). Listed so that a new one is added on purpose.
CALLBACKS = {
    ("GET", "/callbacks/{channel}"): "/callbacks/wechat_subscribe",
    ("POST", "/callbacks/{channel}"): "/callbacks/wechat_subscribe",
    ("POST", "/callbacks/{channel}/{secret}"): "/callbacks/sms/not-the-channel-secret",
}
INFRASTRUCTURE = {"/healthz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect"}


def test_every_route_outside_v1_is_a_callback_refused_without_the_platforms_proof(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the app with a WeChat and an SMS callback configured
    messaging = tmp_path / "messaging.toml"
    messaging.write_text(
        '[wechat_subscribe]\nappid = "wx-app"\ncallback_token_env = "CB_TOKEN"\n'
        'encoding_aes_key_env = "CB_KEY"\n[sms]\ncallback_secret_env = "CB_SECRET"\n'
    )
    monkeypatch.setenv("CB_TOKEN", "token")
    monkeypatch.setenv("CB_KEY", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG")
    monkeypatch.setenv("CB_SECRET", "s" * 40)
    settings = Settings(
        database_url=api.store.engine.url.render_as_string(hide_password=False),
        secret_key=bytes(range(32)),
        group_id=api.store.group_id,
        messaging_file=str(messaging),
    )
    app = create_app(settings, rate_per_second=0)
    routes = {
        (method, str(c.path))
        for c in iter_route_contexts(app.router.routes)
        if isinstance(c.route, APIRoute)
        for method in c.methods
    }
    # then every route is under /v1 (the matrix above), the console, or a known callback
    others = {
        (m, p)
        for m, p in routes
        if not p.startswith(("/v1/", "/console")) and p not in INFRASTRUCTURE
    }
    assert others == set(CALLBACKS), "a route outside /v1: declare a permission or list it"
    now = str(int(time.time()))
    query = {
        "timestamp": now,
        "nonce": "1",
        "echostr": "e",
        "signature": "0" * 40,
        "msg_signature": "0" * 40,
    }
    body = "<xml><Encrypt>AAAA</Encrypt></xml>"
    with TestClient(app, raise_server_exceptions=False) as client:
        for (method, _), url in CALLBACKS.items():
            # without the platform's proof: 401, with no key and with every role's key
            for headers in [{}, *(api.as_(role) for role in Role)]:
                answer = client.request(method, url, params=query, content=body, headers=headers)
                assert answer.status_code == 401, (method, url, answer.text)
                assert answer.json()["code"] == "callback_refused"
    app.state.services.engine.dispose()
