"""The review queue over HTTP, both dialects: HQ only (analysts read, admins decide), the
pair side by side masked per role, keyset paging strongest first, decisions made once
with Idempotency-Key replays, an accepted merge undone through /v1/merges, and no
personal data in any log record."""

from __future__ import annotations

import json
import logging
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import insert, text
from tests.api.conftest import NAME_1, NAME_2, PHONE_1, PHONE_2, Api

from siyu.config import DEFAULT_STRONG_TYPES
from siyu.identity.models import match_reviews
from siyu.identity.resolve import resolve_all
from siyu.importer.service import import_rows
from siyu.privacy import Vault
from siyu.store.times import stored_now

WEIGHTS = [
    {"field": "name", "level": "exact", "weight": 6.5},
    {"field": "phone", "level": "two digits off", "weight": 1.5},
]
OUTSIDE_HQ = ("store", "guide", "channel", "member")


def seed(api: Api, a: int, b: int, weight: float = 9.0, status: str = "pending") -> int:
    low, high = sorted((a, b))
    with api.store.engine.begin() as conn:
        return int(
            conn.execute(
                insert(match_reviews)
                .values(
                    group_id=api.store.group_id,
                    member_a=low,
                    member_b=high,
                    match_weight=weight,
                    match_probability=2**weight / (1 + 2**weight),
                    field_weights=json.dumps(WEIGHTS),
                    status=status,
                    model_id=1,
                    detected_at=stored_now(),
                )
                .returning(match_reviews.c.review_id)
            ).scalar_one()
        )


def post(api: Api, path: str, role: str, key: str | None = None) -> Any:
    headers = {**api.as_(role), **({"Idempotency-Key": key} if key else {})}
    return api.client.post(path, headers=headers)


@pytest.fixture
def pair(api: Api) -> int:
    """A pending review of the brand's two members."""
    return seed(api, api.members["M1"], api.members["M2"])


def test_only_hq_reads_the_queue_and_only_admins_decide(api: Api, pair: int) -> None:
    reads = ["/v1/oneid/reviews", f"/v1/oneid/reviews/{pair}"]
    for path in reads:
        # HQ reads it
        for role in ("admin", "analyst"):
            assert api.client.get(path, headers=api.as_(role)).status_code == 200, (role, path)
        # a store, a guide, an integration, a member: 403, and without a key 401
        for role in OUTSIDE_HQ:
            refused = api.client.get(path, headers=api.as_(role))
            assert refused.status_code == 403 and refused.json()["code"] == "forbidden", role
        assert api.client.get(path).status_code == 401
    # and only an admin decides: an analyst's decision is refused like the others'
    for action in ("accept", "reject"):
        for role in ("analyst", *OUTSIDE_HQ):
            refused = post(api, f"/v1/oneid/reviews/{pair}:{action}", role)
            assert refused.status_code == 403, (role, action)
    shown = api.client.get(f"/v1/oneid/reviews/{pair}", headers=api.as_("admin")).json()
    assert shown["status"] == "pending"


def test_the_pair_is_side_by_side_masked_per_role(
    api: Api, pair: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # when an admin and an analyst open the pair
    admin = api.client.get(f"/v1/oneid/reviews/{pair}", headers=api.as_("admin")).json()
    analyst = api.client.get(f"/v1/oneid/reviews/{pair}", headers=api.as_("analyst")).json()
    # then both see the two members, a then b, and the weight of each field
    for seen in (admin, analyst):
        ids = [m["member_id"] for m in seen["members"]]
        assert ids == sorted((api.members["M1"], api.members["M2"]))
        assert seen["fields"] == WEIGHTS and seen["same_member"] is False
        assert seen["match_weight"] == 9.0 and 0.99 < seen["match_probability"] < 1
    # and the admin reads names and phones in the clear, the analyst their masks
    names = {m["member"]["name"] for m in admin["members"]}
    assert names == {NAME_1, NAME_2}
    phones = {
        i["value"]
        for m in admin["members"]
        for i in m["member"]["identities"]
        if i["type"] == "phone"
    }
    assert phones == {f"+86{PHONE_1}", f"+86{PHONE_2}"}
    text_seen = json.dumps(analyst, ensure_ascii=False)
    for secret in (NAME_1, NAME_2, PHONE_1, PHONE_2, "1990-04-01"):
        assert secret not in text_seen, secret
    assert f"{PHONE_1[:3]}****{PHONE_1[-4:]}" in text_seen
    # and the list masks names for everyone
    listed = api.client.get("/v1/oneid/reviews", headers=api.as_("admin")).json()
    assert NAME_1 not in json.dumps(listed, ensure_ascii=False)
    # and no log record holds a name or a phone
    for secret in (NAME_1, NAME_2, PHONE_1, PHONE_2):
        assert secret not in caplog.text


def test_the_queue_pages_strongest_first(api: Api, vault: Vault) -> None:
    # given six more members and pending, accepted and rejected pairs among them
    rows = [
        {
            "member_ref": f"P{i}",
            "brand_id": "B1",
            "registered_at": f"2024-03-0{i}T10:00:00",
            "channel": "pos",
            "card": f"P00{i}",
        }
        for i in range(1, 7)
    ]
    import_rows(api.store.engine, vault, api.store.group_id, "members", rows)
    resolve_all(api.store.engine, api.store.group_id, DEFAULT_STRONG_TYPES)
    with api.store.engine.connect() as conn:
        ids = dict(
            conn.execute(
                text("SELECT source_ref, member_id FROM members WHERE group_id = :g"),
                {"g": api.store.group_id},
            ).all()
        )
    p = [ids[f"P{i}"] for i in range(1, 7)]
    weights = [3.5, 12.0, 7.25, 7.25, 15.0]
    for (a, b), weight in zip(pairwise(p), weights, strict=True):
        seed(api, a, b, weight)
    seed(api, p[0], p[2], 20.0, status="rejected")
    # when the queue is read two at a time
    seen, after, totals = [], None, set()
    while True:
        query = "/v1/oneid/reviews?limit=2" + (f"&after={after}" if after else "")
        page = api.client.get(query, headers=api.as_("analyst")).json()
        seen += page["reviews"]
        totals.add(page["total"])
        after = page["next_after"]
        if after is None:
            break
    # then every pending pair comes once, strongest first, ties by id
    assert [r["match_weight"] for r in seen] == [15.0, 12.0, 7.25, 7.25, 3.5]
    assert seen[2]["review_id"] < seen[3]["review_id"]
    assert totals == {5} and {r["status"] for r in seen} == {"pending"}
    # and the status filter shows the rejected one only, and names its rule when wrong
    rejected = api.client.get("/v1/oneid/reviews?status=rejected", headers=api.as_("admin"))
    assert [r["match_weight"] for r in rejected.json()["reviews"]] == [20.0]
    bad = api.client.get("/v1/oneid/reviews?status=maybe", headers=api.as_("admin"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "status"
    assert api.client.get("/v1/oneid/reviews?limit=0", headers=api.as_("admin")).status_code == 422


def test_accepting_merges_once_replays_and_can_be_undone(api: Api, pair: int) -> None:
    m1, m2 = api.members["M1"], api.members["M2"]
    # when an admin accepts the pair
    first = post(api, f"/v1/oneid/reviews/{pair}:accept", "admin", "acc-1")
    assert first.status_code == 200, first.text
    decided = first.json()
    assert decided["status"] == "accepted" and decided["survivor_id"] == m1
    # then a retry with the same key replays the answer and merges nothing again
    again = post(api, f"/v1/oneid/reviews/{pair}:accept", "admin", "acc-1")
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == decided
    # and a new request is refused: a review is decided once
    for action, key in (("accept", "acc-2"), ("reject", "rej-1"), ("reject", None)):
        refused = post(api, f"/v1/oneid/reviews/{pair}:{action}", "admin", key)
        assert refused.status_code == 409, refused.text
        assert refused.json()["code"] == "review_decided"
        assert "accepted" in refused.json()["detail"]
    # and the younger member now answers as the survivor, the review as accepted
    profile = api.client.get(f"/v1/members/{m2}", headers=api.as_("admin")).json()
    assert profile["member_id"] == m1
    assert {i["value"] for i in profile["identities"] if i["type"] == "card"} == {"C001", "D002"}
    shown = api.client.get(f"/v1/oneid/reviews/{pair}", headers=api.as_("admin")).json()
    assert (shown["status"], shown["merge_id"], shown["same_member"]) == (
        "accepted",
        decided["merge_id"],
        True,
    )
    assert shown["decided_by"].startswith("key:") and shown["decided_at"]
    # when the merge is undone
    undo = api.client.post(
        f"/v1/merges/{decided['merge_id']}:undo",
        headers=api.as_("admin"),
        json={"reason": "two people"},
    )
    assert undo.status_code == 200, undo.text
    # then the review is undone and both members are back
    shown = api.client.get(f"/v1/oneid/reviews/{pair}", headers=api.as_("admin")).json()
    assert (shown["status"], shown["same_member"]) == ("undone", False)
    assert api.client.get(f"/v1/members/{m2}", headers=api.as_("admin")).json()["member_id"] == m2


def test_rejecting_keeps_both_and_unknown_reviews_are_404(api: Api, pair: int) -> None:
    rejected = post(api, f"/v1/oneid/reviews/{pair}:reject", "admin", "rej-1")
    assert rejected.status_code == 200
    assert rejected.json() == {
        "review_id": pair,
        "status": "rejected",
        "merge_id": None,
        "survivor_id": None,
    }
    m2 = api.members["M2"]
    assert api.client.get(f"/v1/members/{m2}", headers=api.as_("admin")).json()["member_id"] == m2
    refused = post(api, f"/v1/oneid/reviews/{pair}:accept", "admin", "acc-1")
    assert refused.status_code == 409 and "rejected" in refused.json()["detail"]
    # the rejection's key replays it (an empty body is no body), on another endpoint it
    # is the idempotency conflict, as everywhere
    replayed = api.client.post(
        f"/v1/oneid/reviews/{pair}:reject",
        headers={**api.as_("admin"), "Idempotency-Key": "rej-1"},
        json={},
    )
    assert replayed.status_code == 200 and replayed.headers["Idempotent-Replayed"] == "true"
    reused = post(api, f"/v1/oneid/reviews/{pair}:accept", "admin", "rej-1")
    assert reused.status_code == 409 and reused.json()["code"] == "idempotency_conflict"
    for path in (f"/v1/oneid/reviews/{pair + 99}", f"/v1/oneid/reviews/{pair + 99}:accept"):
        method = api.client.get if not path.endswith(":accept") else api.client.post
        missing = method(path, headers=api.as_("admin"))
        assert missing.status_code == 404 and missing.json()["code"] == "review_not_found"
