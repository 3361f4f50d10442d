"""The ledger over HTTP: scopes, 409 on a refusal with nothing applied, replays."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import text
from tests.api.conftest import Api
from tests.ledger.invariants import check_invariants

from siyu.ledger import jobs, points
from siyu.store.times import stored_now


def post(api: Api, role: str, path: str, body: dict[str, Any], key: str) -> Any:
    headers = {**api.as_(role), "Idempotency-Key": key}
    return api.client.post(f"/v1/members/{path}", json=body, headers=headers)


def test_top_up_pay_refund_and_the_statement(api: Api) -> None:
    m1 = api.members["M1"]
    top = post(
        api,
        "store",
        f"{m1}/stored-value:top-up",
        {"paid_fen": 1000, "bonus_fen": 100, "store_id": "S1"},
        "t1",
    )
    assert top.status_code == 200, top.text
    assert top.json()["balances"]["sv_principal"] == 1000
    paid = post(api, "member", f"{m1}/stored-value:pay", {"amount_fen": 110}, "p1")
    assert paid.json()["detail"] == {"amount_fen": 110, "principal_fen": 100, "bonus_fen": 10}
    # the member reads its own balances and statement
    balances = api.client.get(f"/v1/members/{m1}/balances", headers=api.as_("member")).json()
    assert balances["stored_value_fen"] == 990
    assert balances["stored_value_principal_fen"] == 900
    page = api.client.get(f"/v1/members/{m1}/ledger?limit=2", headers=api.as_("member")).json()
    assert [e["kind"] for e in page["entries"]] == ["pay", "pay"]
    assert page["next_before"] is not None
    rest = api.client.get(
        f"/v1/members/{m1}/ledger?before={page['next_before']}", headers=api.as_("member")
    ).json()
    assert [e["kind"] for e in rest["entries"]] == ["top_up", "top_up"]
    assert rest["next_before"] is None
    posting = top.json()["posting_id"]
    refund = post(api, "admin", f"{m1}/stored-value:refund", {"top_up_posting_id": posting}, "r1")
    assert refund.json()["detail"]["principal_fen"] == 900
    again = post(api, "admin", f"{m1}/stored-value:refund", {"top_up_posting_id": posting}, "r2")
    assert again.status_code == 409 and again.json()["code"] == "already_refunded"


def test_a_refused_payment_is_a_409_problem_and_applies_nothing(api: Api) -> None:
    m1 = api.members["M1"]
    post(api, "admin", f"{m1}/stored-value:top-up", {"paid_fen": 50}, "t")
    refused = post(api, "channel", f"{m1}/stored-value:pay", {"amount_fen": 51}, "too-much")
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "insufficient_balance"
    assert "needs 51, the balance is 50" in refused.json()["detail"]
    balances = api.client.get(f"/v1/members/{m1}/balances", headers=api.as_("admin")).json()
    assert balances["stored_value_fen"] == 50


def test_a_retry_is_replayed_and_a_reused_key_is_refused(api: Api) -> None:
    m1 = api.members["M1"]
    first = post(api, "channel", f"{m1}/points:earn", {"points": 30, "order_id": "T1"}, "o-T1")
    again = post(api, "channel", f"{m1}/points:earn", {"points": 30, "order_id": "T1"}, "o-T1")
    assert again.json()["posting_id"] == first.json()["posting_id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["balances"]["points"] == 30
    other = post(api, "channel", f"{m1}/points:earn", {"points": 31, "order_id": "T1"}, "o-T1")
    assert other.status_code == 409 and other.json()["code"] == "idempotency_conflict"
    missing = api.client.post(
        f"/v1/members/{m1}/points:earn", json={"points": 1}, headers=api.as_("channel")
    )
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "Idempotency-Key"


def test_scopes_of_postings_and_statements(api: Api) -> None:
    m1, m2 = api.members["M1"], api.members["M2"]
    # a store posts only at its own stores, for its members or one present at its till
    # (tests/api/test_till_postings.py has the till's rules)
    at_s2 = post(api, "store", f"{m1}/stored-value:top-up", {"paid_fen": 5, "store_id": "S2"}, "s2")
    assert at_s2.status_code == 403 and "store_id" in at_s2.json()["detail"]
    card = {"type": "card", "value": "D002"}
    body = {"paid_fen": 5, "store_id": "S1", "presented": card}
    assert post(api, "store", f"{m2}/stored-value:top-up", body, "s1").status_code == 200
    # a channel only for its channel
    jd = post(api, "channel", f"{m1}/points:earn", {"points": 5, "channel": "jd"}, "jd")
    assert jd.status_code == 403 and "channel" in jd.json()["detail"]
    # a member sees only itself, and pays only for itself
    other = api.client.get(f"/v1/members/{m2}/ledger", headers=api.as_("member"))
    assert other.status_code == 403
    assert post(api, "member", f"{m2}/points:spend", {"points": 1}, "x").status_code == 403
    # only HQ adjusts
    assert (
        post(api, "store", f"{m1}/points:adjust", {"points": 5, "reason": "r"}, "a").status_code
        == 403
    )


def test_balances_follow_a_merge_and_come_back_on_undo(api: Api) -> None:
    from tests.ledger.invariants import check_invariants

    m1, m2 = api.members["M1"], api.members["M2"]
    post(api, "admin", f"{m1}/points:earn", {"points": 100}, "e1")
    post(api, "admin", f"{m2}/points:earn", {"points": 30}, "e2")
    post(api, "admin", f"{m2}/stored-value:top-up", {"paid_fen": 500, "bonus_fen": 50}, "t2")
    merged = api.client.post(
        "/v1/members:merge",
        json={"member_ids": [m1, m2], "reason": "same person"},
        headers=api.as_("admin"),
    )
    assert merged.status_code == 200, merged.text
    survivor = merged.json()["survivor_id"]
    absorbed = m2 if survivor == m1 else m1

    def held(member: int) -> dict[str, int]:
        with api.store.engine.connect() as conn:
            return dict(
                conn.exec_driver_sql(
                    "SELECT asset, balance FROM ledger_accounts WHERE owner = 'member' "
                    f"AND group_id = '{api.store.group_id}' AND member_id = {member}"
                ).all()
            )

    assert held(survivor) == {"points": 130, "sv_principal": 500, "sv_bonus": 50}
    assert held(absorbed) == {"points": 0, "sv_principal": 0, "sv_bonus": 0}
    # the absorbed id still answers, with the survivor's balances
    seen = api.client.get(f"/v1/members/{absorbed}/balances", headers=api.as_("admin")).json()
    assert (seen["member_id"], seen["points"]) == (survivor, 130)
    check_invariants(api.store.engine, api.store.group_id)
    # the survivor pays 110 of the 550 (100 principal, 10 bonus), then the merge is undone
    post(api, "admin", f"{survivor}/stored-value:pay", {"amount_fen": 110}, "p")
    undo = api.client.post(
        f"/v1/merges/{merged.json()['merge_id']}:undo",
        json={"reason": "two people"},
        headers=api.as_("admin"),
    )
    assert undo.status_code == 200, undo.text
    # the absorbed member gets its points lot back and the stored value that is left of it
    back = held(absorbed)
    assert back["points"] == (30 if absorbed == m2 else 100)
    assert back["sv_principal"] + back["sv_bonus"] == 550 - 110
    assert sum(held(survivor).values()) + sum(back.values()) == 130 + 550 - 110
    check_invariants(api.store.engine, api.store.group_id)


def test_rules_are_read_and_replaced_by_hq_and_orders_earn_by_them(api: Api) -> None:
    m1 = api.members["M1"]
    default = api.client.get("/v1/points/rules", headers=api.as_("analyst")).json()
    assert default["version"] == 0 and default["rules"]["base_points_per_yuan"] == 1
    new = {
        "base_points_per_yuan": 2,
        "rules": [{"name": "fruit", "category": "水果", "points_per_yuan": 5}],
    }
    put = api.client.put("/v1/points/rules", json=new, headers=api.as_("admin"))
    assert put.status_code == 200 and put.json()["version"] == 1
    bad = api.client.put(
        "/v1/tiers/rules",
        json={"tiers": [{"code": "a", "name": "a", "min_orders": 1}]},
        headers=api.as_("admin"),
    )
    assert bad.status_code == 422 and "first tier" in bad.json()["detail"]
    # O1 (99 yuan, no lines) earns at the new base rate, once
    earned = post(api, "store", f"{m1}/points:earn", {"order_id": "O1", "store_id": "S1"}, "o1")
    assert earned.status_code == 200, earned.text
    assert earned.json()["detail"]["points"] == 198
    again = post(api, "store", f"{m1}/points:earn", {"order_id": "O1", "store_id": "S1"}, "o1-b")
    assert again.json()["posting_id"] == earned.json()["posting_id"]
    other = post(api, "admin", f"{api.members['M2']}/points:earn", {"order_id": "O1"}, "o1-m2")
    assert other.status_code == 404
    neither = post(api, "admin", f"{m1}/points:earn", {}, "nothing")
    assert neither.status_code == 422 and neither.json()["errors"][0]["field"] == "points"
    # O1 was placed on 2024-01-02, so its points expired at the end of 2025 (the earn
    # rule's end of the next year): the profile's balance does not count them
    assert earned.json()["detail"]["expires_at"] == "2025-12-31T23:59:59"
    profile = api.client.get(f"/v1/members/{m1}", headers=api.as_("admin")).json()
    assert profile["balances"]["points"] == 0 and profile["tiers"] == []


def _balances(api: Api, member: int) -> Any:
    return api.client.get(f"/v1/members/{member}/balances", headers=api.as_("admin")).json()


def test_points_past_their_date_leave_every_balance_before_the_expiry_job_runs(api: Api) -> None:
    # given a member with two lots, 50 points past their date since yesterday and 30 that
    # are not, and the expiry job (`siyu loyalty expire-points`) not run since
    m1 = api.members["M1"]
    post(api, "admin", f"{m1}/points:earn", {"points": 50}, "e-50")
    later = post(api, "admin", f"{m1}/points:earn", {"points": 30}, "e-30").json()
    yesterday = stored_now() - timedelta(days=1)
    with api.store.engine.begin() as conn:
        conn.execute(
            text("UPDATE point_lots SET expires_at = :y WHERE group_id = :g AND points = 50"),
            {"y": yesterday, "g": api.store.group_id},
        )
    # when the balances are read, through the ledger and through the profile
    shown = _balances(api, m1)
    profile = api.client.get(f"/v1/members/{m1}", headers=api.as_("admin")).json()
    # then neither counts the expired points, and only the live lot is still to expire
    assert shown["points"] == 30 and profile["balances"]["points"] == 30
    expires = later["detail"]["expires_at"]
    assert shown["points_expiring"] == [{"expires_at": f"{expires}Z", "points": 30}]
    # and they cannot be spent either
    refused = post(api, "member", f"{m1}/points:spend", {"points": 31}, "s-31")
    assert refused.status_code == 409 and "the balance is 30" in refused.json()["detail"]
    # when the expiry job runs afterwards, it turns them into breakage
    assert points.expire_due(api.store.engine, api.store.group_id, stored_now()) == 1
    # then the balance shown does not move, and the statement shows the expiry
    assert _balances(api, m1)["points"] == 30
    page = api.client.get(f"/v1/members/{m1}/ledger", headers=api.as_("admin")).json()
    newest = page["entries"][0]
    assert (newest["kind"], newest["amount"], newest["balance_after"]) == ("expire", -50, 30)
    check_invariants(api.store.engine, api.store.group_id)


def test_orders_settled_late_are_dated_when_they_were_placed(api: Api) -> None:
    # given M1's order O1 placed on 2024-01-02 (the brand files) and O2 placed 40 days ago,
    # neither settled yet
    m1 = api.members["M1"]
    placed = stored_now() - timedelta(days=40)
    order = {
        "order_id": "O2",
        "brand_id": "B1",
        "channel": "pos",
        "buyer_type": "card",
        "buyer_value": "C001",
        "ordered_at": placed.isoformat(),
        "total_fen": 5000,
        "paid_fen": 5000,
        "store_id": "S1",
    }
    sent = api.client.post("/v1/orders:batch", json={"items": [order]}, headers=api.as_("admin"))
    assert sent.status_code == 200, sent.text
    # when the settle job runs today
    report = jobs.settle_orders(api.store.engine, api.store.group_id)
    assert report.orders_earned == 2
    # then the statement shows each earning on the day its order was placed, newest first,
    # and the day it was recorded beside it
    page = api.client.get(f"/v1/members/{m1}/ledger", headers=api.as_("admin")).json()
    earned = [e for e in page["entries"] if e["kind"] == "earn"]
    assert [e["business_at"] for e in earned] == [f"{placed.isoformat()}Z", "2024-01-02T10:00:00Z"]
    today = stored_now().date().isoformat()
    assert {e["created_at"][:10] for e in earned} == {today}
    # and O1's points, earned in 2024, expired at the end of 2025: the balance holds O2's
    shown = _balances(api, m1)
    assert shown["points"] == 50
    assert shown["points_expiring"] == [
        {"expires_at": f"{placed.year + 1}-12-31T23:59:59Z", "points": 50}
    ]
    check_invariants(api.store.engine, api.store.group_id)
