"""A hand merge over HTTP is a person's decision batch OneID keeps: `resolve_all` rebuilds
members from identities and links, so the merge records an evidence link that holds the
pair together; undoing the merge blocks that link, so the pair stays apart."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from tests.api.conftest import Api

from siyu.config import DEFAULT_STRONG_TYPES
from siyu.identity.service import resolve_all


def _merge(api: Api, a: int, b: int, key: str = "hand-merge") -> Any:
    return api.client.post(
        "/v1/members:merge",
        json={"member_ids": [a, b], "reason": "same person, HQ checked"},
        headers={**api.as_("admin"), "Idempotency-Key": key},
    )


def _bind(api: Api, member: int, body: dict[str, Any]) -> None:
    bound = api.client.post(f"/v1/members/{member}/identities", json=body, headers=api.as_("admin"))
    assert bound.status_code == 200, bound.text


def _resolve(api: Api) -> None:
    resolve_all(api.store.engine, api.store.group_id, DEFAULT_STRONG_TYPES)


def _rows(api: Api, sql: str, **params: Any) -> list[Any]:
    with api.store.engine.connect() as conn:
        return list(conn.execute(text(sql), {"g": api.store.group_id, **params}).all())


def _identities_of(api: Api, member: int) -> set[int]:
    rows = _rows(api, "SELECT identity_id FROM identities WHERE member_id = :m", m=member)
    return {int(r.identity_id) for r in rows}


def _holders(api: Api, identities: set[int]) -> set[int]:
    listed = ",".join(str(i) for i in sorted(identities))  # integers read from the store
    rows = _rows(api, f"SELECT member_id FROM identities WHERE identity_id IN ({listed})")
    return {int(r.member_id) for r in rows}


def _status(api: Api, member: int) -> tuple[str, int | None]:
    sql = "SELECT status, merged_into FROM members WHERE group_id = :g AND member_id = :m"
    [row] = _rows(api, sql, m=member)
    return str(row.status), row.merged_into


def _merges(api: Api) -> list[Any]:
    return _rows(
        api,
        "SELECT merge_id, mode, survivor_id, merged_id, undone_at FROM merges "
        "WHERE group_id = :g ORDER BY merge_id",
    )


def _points(api: Api, member: int) -> int:
    seen = api.client.get(f"/v1/members/{member}/balances", headers=api.as_("admin")).json()
    assert seen["member_id"] == member, seen
    return int(seen["points"])


def _conflict_kinds(api: Api) -> list[str]:
    rows = _rows(api, "SELECT kind FROM identity_conflicts WHERE group_id = :g ORDER BY kind")
    return [str(r.kind) for r in rows]


def test_a_hand_merge_survives_batch_oneid_and_its_undo_does_too(api: Api) -> None:
    m1, m2 = api.members["M1"], api.members["M2"]
    everything = _identities_of(api, m1) | _identities_of(api, m2)
    of_m2 = _identities_of(api, m2)
    before = len(_merges(api))
    for member, points in ((m1, 100), (m2, 30)):
        earned = api.client.post(
            f"/v1/members/{member}/points:earn",
            json={"points": points},
            headers={**api.as_("admin"), "Idempotency-Key": f"earn-{member}"},
        )
        assert earned.status_code == 200, earned.text
    # when HQ merges M1 and M2 by hand (no identifier in common) and batch OneID runs
    merged = _merge(api, m1, m2)
    assert merged.status_code == 200, merged.text
    merge_id, survivor = merged.json()["merge_id"], merged.json()["survivor_id"]
    assert survivor == m1  # the older
    _resolve(api)
    _resolve(api)
    # then they are still one member: the decision holds, recorded once, not undone
    assert _holders(api, everything) == {m1}
    assert _status(api, m2) == ("merged", m1)
    [merge] = _merges(api)[before:]
    assert (merge.merge_id, merge.mode, merge.undone_at) == (merge_id, "manual", None)
    # and the balances stay with the survivor (a split used to hand them to a new member)
    assert _points(api, m1) == 130
    # and the merge is bridged by one evidence link, written by the hand merge
    [link] = _rows(
        api,
        "SELECT channel, kind, blocked FROM identity_links WHERE group_id = :g "
        "AND channel = 'oneid.manual'",
    )
    assert (link.kind, bool(link.blocked)) == ("evidence", False)
    # when the merge is undone and batch OneID runs again
    undone = api.client.post(
        f"/v1/merges/{merge_id}:undo", json={"reason": "two people"}, headers=api.as_("admin")
    )
    assert undone.status_code == 200, undone.text
    assert undone.json()["links_blocked"] >= 1
    _resolve(api)
    # then they stay apart, M2 with its own identities, and the link stays blocked
    assert _status(api, m2) == ("active", None)
    assert _holders(api, of_m2) == {m2}
    assert _holders(api, everything - of_m2) == {m1}
    link_sql = "SELECT blocked FROM identity_links WHERE group_id = :g AND channel = 'oneid.manual'"
    assert [bool(r.blocked) for r in _rows(api, link_sql)] == [True]
    assert [m.merge_id for m in _merges(api)[before:]] == [merge_id]
    # and merging them by hand again is the newest decision: the link holds them again
    again = _merge(api, m1, m2, key="hand-merge-again")
    assert again.status_code == 200, again.text
    _resolve(api)
    assert _holders(api, everything) == {m1}


def test_a_hand_merge_of_two_cards_of_one_brand_is_kept_as_a_duplicate_registration(
    api: Api,
) -> None:
    m1, m2 = api.members["M1"], api.members["M2"]
    # given M2 holds a card of brand B1 too, as M1 does (two registrations of one person)
    _bind(api, m2, {"type": "card", "value": "C777", "channel": "pos", "scope": "B1"})
    everything = _identities_of(api, m1) | _identities_of(api, m2)
    # when HQ merges them by hand (the policy would refuse a till's link between them)
    merged = _merge(api, m1, m2)
    assert merged.status_code == 200, merged.text
    _resolve(api)
    # then HQ's decision stands: one member, reported as a duplicate registration
    assert _holders(api, everything) == {m1}
    assert _status(api, m2) == ("merged", m1)
    assert _conflict_kinds(api) == ["duplicate_registration"]
    assert [m.undone_at for m in _merges(api) if m.mode == "manual"] == [None]


def test_a_hand_merge_of_two_unionids_is_refused_and_writes_nothing(api: Api) -> None:
    m1, m2 = api.members["M1"], api.members["M2"]
    # given each member signed in with a WeChat account of its own (a unionid each)
    _bind(api, m1, {"type": "unionid", "value": "u-one", "channel": "miniprogram"})
    _bind(api, m2, {"type": "unionid", "value": "u-two", "channel": "miniprogram"})
    merges_before, links_before = len(_merges(api)), _rows(api, "SELECT * FROM identity_links")
    # when HQ merges them by hand
    refused = _merge(api, m1, m2)
    # then the policy refuses, naming the rule: batch OneID would split them again
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "merge_conflict" and "unionid" in refused.json()["detail"]
    # and nothing was written: two members, no merge, no link
    assert _status(api, m2) == ("active", None)
    assert len(_merges(api)) == merges_before
    assert _rows(api, "SELECT * FROM identity_links") == links_before
