"""Commission through the API: HQ puts the rules and runs the jobs; a guide key sees only
its own statement, a store key its stores' guides; a bad rule document names the field.

The brand (tests/api/conftest.py): order O1, 9,900 fen paid on 2024-01-02 at S1, keyed in
by guide G1 (store S1)."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.api.conftest import Api

RULES = {"default_rate_bp": 200, "freeze_days": 10, "rules": []}
JAN = {"since": "2024-01-01T00:00:00", "until": "2024-02-01T00:00:00"}


def test_hq_runs_the_month_and_each_key_sees_its_own(api: Api) -> None:
    admin = api.as_("admin")
    put = api.client.put("/v1/commission/rules", json=RULES, headers=admin)
    assert put.status_code == 200, put.text
    assert put.json()["version"] == 1
    run = api.client.post("/v1/commission:accrue", json=JAN, headers=admin)
    assert run.json()["accrued_fen"] == 198  # 2 % of 9,900
    again = api.client.post("/v1/commission:accrue", json=JAN, headers=admin)
    assert (again.json()["accrued"], again.json()["already"]) == (0, 1)
    early = api.client.post(
        "/v1/commission:release", json={"at": "2024-01-12T09:59:59"}, headers=admin
    )
    assert early.json()["released"] == 0  # the freeze ends 2024-01-12T10:00
    done = api.client.post(
        "/v1/commission:release", json={"at": "2024-01-12T10:00:00"}, headers=admin
    )
    assert done.json()["released_fen"] == 198
    paid = api.client.post("/v1/guides/G1/commission:pay", json={"month": "2024-01"}, headers=admin)
    assert paid.json()["paid_fen"] == 198

    mine = api.client.get("/v1/guides/G1/commission?month=2024-01", headers=api.as_("guide"))
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert (
        body["totals"]["commission_fen"] == 198 == sum(x["commission_fen"] for x in body["lines"])
    )
    assert [x["kind"] for x in body["lines"]] == ["cm_accrue", "cm_release"]
    # paid today: January closed with it payable; the payment is a line of this month
    assert body["totals"]["closing"]["cm_payable"] == 198
    month = datetime.now(UTC).strftime("%Y-%m")
    now = api.client.get(f"/v1/guides/G1/commission?month={month}", headers=api.as_("guide"))
    assert now.json()["totals"]["paid_fen"] == 198
    assert now.json()["totals"]["closing"] == {
        "cm_accrued": -198,
        "cm_frozen": 0,
        "cm_payable": 0,
        "cm_paid": 198,
    }

    other = api.client.get("/v1/guides/G2/commission?month=2024-01", headers=api.as_("guide"))
    assert other.status_code == 403
    by_store = api.client.get("/v1/guides/G1/commission?month=2024-01", headers=api.as_("store"))
    assert by_store.json()["totals"]["commission_fen"] == 198
    store = api.client.get("/v1/stores/S1/commission?month=2024-01", headers=api.as_("store"))
    assert store.json()["by_guide"]["G1"]["released_fen"] == 198
    paid_at_store = api.client.get(
        f"/v1/stores/S1/commission?month={month}", headers=api.as_("store")
    )
    assert paid_at_store.json()["totals"]["paid_fen"] == 198
    assert (
        api.client.get(
            "/v1/stores/S2/commission?month=2024-01", headers=api.as_("store")
        ).status_code
        == 403
    )
    assert (
        api.client.get(
            "/v1/stores/S1/commission?month=2024-01", headers=api.as_("guide")
        ).status_code
        == 403
    )


def test_a_bad_rule_document_is_refused_naming_the_field(api: Api) -> None:
    bad = {"rules": [{"name": "x", "rate_bp": 20_000}]}
    response = api.client.put("/v1/commission/rules", json=bad, headers=api.as_("admin"))
    assert response.status_code == 422
    assert "rate_bp" in response.text
    assert api.client.get("/v1/commission/rules", headers=api.as_("admin")).json()["version"] == 0
