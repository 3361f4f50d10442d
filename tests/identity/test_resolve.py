"""OneID on the store, both dialects: who becomes one member, who never does, and how a
merge is undone."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from tests.brandfiles import write, write_reference
from tests.conftest import Store

from siyu.config import DEFAULT_STRONG_TYPES
from siyu.identity.attach import attach
from siyu.identity.errors import MergeError
from siyu.identity.ingest import IdentifierEncoder
from siyu.identity.merge import unmerge
from siyu.identity.resolve import resolve_all
from siyu.importer.service import import_directory
from siyu.privacy import Vault


def _ident(
    type_: str,
    value: str,
    at: str,
    linked: tuple[str, str] | None = None,
    verified: bool = False,
    channel: str = "miniprogram",
    brand: str | None = None,
) -> dict[str, str]:
    row = {
        "type": type_,
        "value": value,
        "channel": channel,
        "observed_at": at,
        "verified": "true" if verified else "false",
    }
    if linked:
        row.update(linked_type=linked[0], linked_value=linked[1])
    if brand:
        row["brand_id"] = brand  # a card's scope
    return row


def _load(
    store: Store,
    vault: Vault,
    tmp: Path,
    members: list[dict[str, str]],
    identities: list[dict[str, str]],
) -> None:
    write_reference(tmp)
    if members:
        write(tmp / "members.csv", members)
    if identities:
        write(tmp / "identities.csv", identities)
    import_directory(store.engine, vault, store.group_id, tmp, tmp / "rejects")


def _member_of(store: Store, encoder: IdentifierEncoder, type_: str, value: str) -> int:
    key = encoder.encode(type_, value).key
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT member_id FROM identities WHERE group_id = :g AND type = :t "
                    "AND value_key = :k"
                ),
                {"g": store.group_id, "t": type_, "k": key},
            ).scalar_one()
        )


def _resolve(store: Store):  # type: ignore[no-untyped-def]
    return resolve_all(store.engine, store.group_id, DEFAULT_STRONG_TYPES)


def _member(
    ref: str, at: str, card: str | None = None, phone: str | None = None, brand: str = "B1"
) -> dict[str, str]:
    row = {"member_ref": ref, "brand_id": brand, "registered_at": at, "channel": "pos"}
    if card:
        row["card"] = card
    if phone:
        row["phone"] = phone
    return row


def test_one_person_across_channels_becomes_one_member(
    store: Store, vault: Vault, encoder: IdentifierEncoder, tmp_path: Path
) -> None:
    # given a till card with a phone, a mini-program account that verified the same phone,
    # a WeCom contact on the same unionid, and a Tmall account carrying the phone's hash
    from siyu.identity.types import phone_hash_of

    _load(
        store,
        vault,
        tmp_path,
        [_member("M1", "2023-05-01T00:00:00", "C1", "13812345678")],
        [
            _ident("openid", "o-1", "2024-01-01T00:00:00", ("unionid", "u-1"), True),
            _ident("phone", "13812345678", "2024-01-01T00:00:00", ("unionid", "u-1"), True),
            _ident(
                "external_userid", "wm-1", "2024-02-01T00:00:00", ("unionid", "u-1"), True, "wecom"
            ),
            _ident(
                "tmall_ouid",
                "t-1",
                "2024-03-01T00:00:00",
                ("phone_hash", phone_hash_of("+8613812345678")),
                False,
                "tmall",
            ),
        ],
    )
    # when OneID resolves
    report = _resolve(store)
    # then all of them are the legacy member, whose id is kept
    ids = {
        _member_of(store, encoder, t, v)
        for t, v in [
            ("card", "C1"),
            ("openid", "o-1"),
            ("unionid", "u-1"),
            ("external_userid", "wm-1"),
            ("tmall_ouid", "t-1"),
            ("phone", "13812345678"),
        ]
    }
    assert len(ids) == 1
    with store.engine.connect() as conn:
        legacy = conn.execute(
            text("SELECT member_id FROM members WHERE source_ref = 'M1' AND group_id = :g"),
            {"g": store.group_id},
        ).scalar_one()
    assert ids == {legacy}
    assert report.members == 1
    # and resolving again changes nothing
    again = _resolve(store)
    assert (again.moved_identities, again.merges, again.new_members) == (0, 0, 0)


def test_a_family_phone_typed_at_the_till_does_not_merge_two_people(
    store: Store, vault: Vault, encoder: IdentifierEncoder, tmp_path: Path
) -> None:
    # given a husband whose WeChat verified his phone, and a wife who registered her card
    # at the till with his phone but bound that card to her own WeChat
    _load(
        store,
        vault,
        tmp_path,
        [_member("W", "2024-01-01T00:00:00", "C-WIFE", "13800000001")],
        [
            _ident("phone", "13800000001", "2024-02-01T00:00:00", ("unionid", "u-husband"), True),
            _ident(
                "card", "C-WIFE", "2024-02-02T00:00:00", ("unionid", "u-wife"), True, brand="B1"
            ),
        ],
    )
    # when OneID resolves
    report = _resolve(store)
    # then husband and wife stay two members and the refused link is reported
    husband = _member_of(store, encoder, "unionid", "u-husband")
    wife = _member_of(store, encoder, "unionid", "u-wife")
    assert husband != wife
    assert _member_of(store, encoder, "card", "C-WIFE") == wife
    assert _member_of(store, encoder, "phone", "13800000001") == husband
    assert report.conflicts == 1
    with store.engine.connect() as conn:
        kinds = (
            conn.execute(
                text("SELECT kind FROM identity_conflicts WHERE group_id = :g"),
                {"g": store.group_id},
            )
            .scalars()
            .all()
        )
    assert kinds == ["exclusive_clash"]


def test_a_phone_change_merges_and_is_reported_but_two_phones_at_once_do_not(
    store: Store, vault: Vault, encoder: IdentifierEncoder, tmp_path: Path
) -> None:
    # given one unionid that verified an old phone in 2023 and a new one from 2024 on,
    # and another unionid that verified two phones in the same weeks
    _load(
        store,
        vault,
        tmp_path,
        [],
        [
            _ident("phone", "13811110000", "2023-01-01T00:00:00", ("unionid", "u-a"), True),
            _ident("phone", "13811110000", "2023-06-01T00:00:00", ("unionid", "u-a"), True),
            _ident("phone", "13822220000", "2024-01-01T00:00:00", ("unionid", "u-a"), True),
            _ident("phone", "13833330000", "2024-01-01T00:00:00", ("unionid", "u-b"), True),
            _ident("phone", "13833330000", "2024-03-01T00:00:00", ("unionid", "u-b"), True),
            _ident("phone", "13844440000", "2024-02-01T00:00:00", ("unionid", "u-b"), True),
        ],
    )
    report = _resolve(store)
    # then the change is one member, reported
    assert _member_of(store, encoder, "phone", "13811110000") == _member_of(
        store, encoder, "phone", "13822220000"
    )
    assert report.phone_changes == 1
    # and the overlapping pair is refused
    assert _member_of(store, encoder, "phone", "13833330000") != _member_of(
        store, encoder, "phone", "13844440000"
    )
    assert report.conflicts == 1


def test_weak_identifiers_never_merge_two_members(
    store: Store, vault: Vault, encoder: IdentifierEncoder, tmp_path: Path
) -> None:
    # given two people who share a nickname and a family tablet
    _load(
        store,
        vault,
        tmp_path,
        [],
        [
            _ident("openid", "o-1", "2024-01-01T00:00:00", ("nickname", "小美")),
            _ident("openid", "o-2", "2024-01-02T00:00:00", ("nickname", "小美")),
            _ident("openid", "o-1", "2024-01-01T00:00:00", ("device_id", "ipad-1")),
            _ident("openid", "o-2", "2024-01-02T00:00:00", ("device_id", "ipad-1")),
        ],
    )
    _resolve(store)
    assert _member_of(store, encoder, "openid", "o-1") != _member_of(
        store, encoder, "openid", "o-2"
    )


def test_the_older_member_survives_and_unmerge_restores_both(
    store: Store, vault: Vault, encoder: IdentifierEncoder, tmp_path: Path
) -> None:
    # given two legacy members of two brands, the younger registered first in our files,
    # linked by one verified phone
    _load(
        store,
        vault,
        tmp_path,
        [
            _member("YOUNG", "2024-06-01T00:00:00", "D9", "13855556666", brand="B2"),
            _member("OLD", "2022-01-01T00:00:00", "C9", "13855556666"),
        ],
        [],
    )
    _resolve(store)
    with store.engine.connect() as conn:
        rows = dict(
            conn.execute(
                text("SELECT source_ref, member_id FROM members WHERE group_id = :g"),
                {"g": store.group_id},
            ).all()
        )
        merge = conn.execute(
            text(
                "SELECT merge_id, survivor_id, merged_id, evidence FROM merges WHERE group_id = :g"
            ),
            {"g": store.group_id},
        ).one()
    # then the older member survives and holds both cards
    assert (merge.survivor_id, merge.merged_id) == (rows["OLD"], rows["YOUNG"])
    assert _member_of(store, encoder, "card", "D9") == rows["OLD"]
    assert json.loads(merge.evidence)["identities"]
    # when the merge is undone
    result = unmerge(store.engine, store.group_id, merge.merge_id, "two different people")
    # then the younger member is active again with its card, and stays apart after resolve
    assert result.restored_member_id == rows["YOUNG"]
    assert _member_of(store, encoder, "card", "D9") == rows["YOUNG"]
    _resolve(store)
    assert _member_of(store, encoder, "card", "D9") == rows["YOUNG"]
    assert _member_of(store, encoder, "card", "C9") == rows["OLD"]
    with pytest.raises(MergeError, match="already undone"):
        unmerge(store.engine, store.group_id, merge.merge_id, "again")


def test_incremental_attach_merges_when_bridging_and_refuses_a_clash(
    store: Store, vault: Vault, encoder: IdentifierEncoder, tmp_path: Path
) -> None:
    at = datetime(2024, 5, 1)
    strong = DEFAULT_STRONG_TYPES
    # given a Tmall buyer and a mini-program user, separately known
    e = encoder.encode
    tm = attach(
        store.engine,
        encoder,
        store.group_id,
        e("tmall_ouid", "t-7"),
        "tmall",
        at,
        strong,
        linked=e("phone_hash", "a" * 64),
    )
    mp = attach(
        store.engine,
        encoder,
        store.group_id,
        e("openid", "o-7"),
        "miniprogram",
        at,
        strong,
        True,
        linked=e("unionid", "u-7"),
    )
    assert tm.member_id != mp.member_id
    # when the mini-program user verifies a phone whose hash the Tmall buyer carries
    from siyu.identity.types import phone_hash_of

    phone = "13877778888"
    attach(
        store.engine,
        encoder,
        store.group_id,
        e("tmall_ouid", "t-8"),
        "tmall",
        at,
        strong,
        linked=e("phone_hash", phone_hash_of("+86" + phone)),
    )
    tmall_8 = _member_of(store, encoder, "tmall_ouid", "t-8")
    res = attach(
        store.engine,
        encoder,
        store.group_id,
        e("phone", phone),
        "miniprogram",
        at,
        strong,
        True,
        linked=e("unionid", "u-7"),
    )
    # then they merge into one member (the older: the mini-program one, created earlier)
    assert res.merges and not res.conflicts
    assert _member_of(store, encoder, "tmall_ouid", "t-8") == _member_of(
        store, encoder, "unionid", "u-7"
    )
    assert min(tmall_8, mp.member_id) == _member_of(store, encoder, "unionid", "u-7")
    # when another unionid claims the same verified phone at the same time
    clash = attach(
        store.engine,
        encoder,
        store.group_id,
        e("phone", phone),
        "miniprogram",
        at,
        strong,
        True,
        linked=e("unionid", "u-other"),
    )
    # then nothing merges and the conflict is recorded
    assert clash.conflicts and not clash.merges
    assert _member_of(store, encoder, "unionid", "u-other") != _member_of(
        store, encoder, "unionid", "u-7"
    )


def test_refused_links_can_be_listed_masked(
    store: Store, vault: Vault, encoder: IdentifierEncoder, tmp_path: Path
) -> None:
    from siyu.identity.conflicts import list_conflicts

    _load(
        store,
        vault,
        tmp_path,
        [_member("W", "2024-01-01T00:00:00", "C-W", "13800000001")],
        [
            _ident("phone", "13800000001", "2024-02-01T00:00:00", ("unionid", "u-h"), True),
            _ident("card", "C-W", "2024-02-02T00:00:00", ("unionid", "u-w"), True, brand="B1"),
        ],
    )
    _resolve(store)
    [conflict] = list_conflicts(store.engine, store.group_id, "exclusive_clash")
    assert {conflict.identity_x.split()[0], conflict.identity_y.split()[0]} == {"unionid"}
    assert "13800000001" not in str(conflict)
