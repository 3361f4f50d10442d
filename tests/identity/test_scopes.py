"""Identifier scopes, both dialects: a card number is unique within its brand, an openid
within its app, so the same value issued twice is two people, never one merged member."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text
from tests.brandfiles import write, write_reference
from tests.conftest import Store

from siyu.config import DEFAULT_STRONG_TYPES
from siyu.errors import ValidationError
from siyu.identity.attach import attach
from siyu.identity.ingest import IdentifierEncoder
from siyu.identity.quality import evaluate_against_truth
from siyu.identity.resolve import resolve_all
from siyu.identity.types import IDENTITY_TYPES, scope_of
from siyu.importer.service import import_directory, import_rows
from siyu.privacy import Vault


def _member(ref: str, brand: str, card: str, phone: str, at: str) -> dict[str, str]:
    return {
        "member_ref": ref,
        "brand_id": brand,
        "registered_at": at,
        "channel": "pos",
        "card": card,
        "phone": phone,
    }


def _order(order_id: str, brand: str, card: str) -> dict[str, str]:
    return {
        "order_id": order_id,
        "brand_id": brand,
        "channel": "pos",
        "buyer_type": "card",
        "buyer_value": card,
        "ordered_at": "2024-03-01T10:00:00",
        "total_fen": "1000",
        "paid_fen": "1000",
    }


def _import(store: Store, vault: Vault, tmp: Path, **files: list[dict[str, str]]) -> None:
    write_reference(tmp)
    for kind, rows in files.items():
        write(tmp / f"{kind}.csv", rows)
    import_directory(store.engine, vault, store.group_id, tmp, tmp / "rejects")


def _holders(store: Store, encoder: IdentifierEncoder, type_: str, value: str) -> dict[str, int]:
    """scope -> member of every identity with this value."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT scope, member_id FROM identities WHERE group_id = :g AND type = :t "
                "AND value_key = :k"
            ),
            {"g": store.group_id, "t": type_, "k": encoder.encode(type_, value).key},
        ).all()
    return {r.scope: r.member_id for r in rows}


def _legacy(store: Store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return dict(
            conn.execute(  # type: ignore[arg-type]
                text("SELECT source_ref, member_id FROM members WHERE group_id = :g"),
                {"g": store.group_id},
            ).all()
        )


def _scalar(store: Store, sql: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text(sql), {"g": store.group_id}).scalar_one())


def test_one_card_number_issued_by_two_brands_is_two_members(
    store: Store, vault: Vault, encoder: IdentifierEncoder, tmp_path: Path
) -> None:
    # given two brands of the group that each issued card 100 to a different person
    _import(
        store,
        vault,
        tmp_path,
        members=[
            _member("FRUIT", "B1", "100", "13800000001", "2023-01-01T00:00:00"),
            _member("BAKERY", "B2", "100", "13900000002", "2023-06-01T00:00:00"),
        ],
    )
    # when OneID resolves
    report = resolve_all(store.engine, store.group_id, DEFAULT_STRONG_TYPES)
    # then they stay two members, and nothing was refused
    assert (report.merges, report.conflicts, report.members) == (0, 0, 2)
    # and the two cards are two identities, each its own member's
    legacy = _legacy(store)
    assert _holders(store, encoder, "card", "100") == {
        "B1": legacy["FRUIT"],
        "B2": legacy["BAKERY"],
    }
    assert _scalar(store, "SELECT COUNT(*) FROM identity_conflicts WHERE group_id = :g") == 0
    active = "SELECT COUNT(*) FROM members WHERE group_id = :g AND status = 'active'"
    assert _scalar(store, active) == 2


def test_quality_against_a_truth_knows_a_card_by_its_brand(
    store: Store, vault: Vault, encoder: IdentifierEncoder, tmp_path: Path
) -> None:
    # given two brands' card 100 held by two people, resolved into two members, and the
    # generator's form of truth: a card's brand beside it, no scope column
    _import(
        store,
        vault,
        tmp_path,
        members=[
            _member("FRUIT", "B1", "100", "13800000001", "2023-01-01T00:00:00"),
            _member("BAKERY", "B2", "100", "13900000002", "2023-06-01T00:00:00"),
        ],
    )
    resolve_all(store.engine, store.group_id, DEFAULT_STRONG_TYPES)
    truth = tmp_path / "identity_truth.parquet"
    pq.write_table(
        pa.table(
            {
                "type": ["card", "phone", "card", "phone"],
                "value": ["100", "+8613800000001", "100", "+8613900000002"],
                "person_id": [1, 1, 2, 2],
                "brand_id": ["B1", None, "B2", None],
            }
        ),
        truth,
    )
    # when OneID is scored against it
    quality = evaluate_against_truth(store.engine, store.group_id, truth, encoder)
    # then each card is found in its own brand: two right members, nothing merged wrongly
    # (folding the brands together counted the two people as one)
    assert (quality.precision, quality.recall, quality.missing) == (1.0, 1.0, 0)
    assert quality.members == 2


def test_a_card_in_one_brand_is_one_member_and_an_order_finds_it_by_its_brand(
    store: Store, vault: Vault, encoder: IdentifierEncoder, tmp_path: Path
) -> None:
    # given a B1 member with card 7, a mini-program binding of that card (brand B1), and
    # orders paid with card 7 in B1 and, by someone else, with B2's card 7
    _import(
        store,
        vault,
        tmp_path,
        members=[_member("M1", "B1", "7", "13800000007", "2023-01-01T00:00:00")],
        identities=[
            {
                "type": "card",
                "value": "7",
                "brand_id": "B1",
                "channel": "miniprogram",
                "observed_at": "2024-01-01T00:00:00",
                "verified": "true",
                "linked_type": "unionid",
                "linked_value": "u-7",
            }
        ],
        orders=[_order("O-B1", "B1", "7"), _order("O-B2", "B2", "7")],
    )
    resolve_all(store.engine, store.group_id, DEFAULT_STRONG_TYPES)
    # then the B1 card, its unionid and the B1 order are the legacy member's
    m1 = _legacy(store)["M1"]
    holders = _holders(store, encoder, "card", "7")
    assert holders["B1"] == m1
    assert _holders(store, encoder, "unionid", "u-7") == {"": m1}
    with store.engine.connect() as conn:
        buyers = dict(
            conn.execute(
                text("SELECT order_id, member_id FROM orders WHERE group_id = :g"),
                {"g": store.group_id},
            ).all()
        )
    assert buyers["O-B1"] == m1
    # and the B2 order belongs to the holder of B2's card 7, another member
    assert buyers["O-B2"] == holders["B2"] != m1


def test_one_openid_under_two_apps_is_two_members(
    store: Store, vault: Vault, encoder: IdentifierEncoder, tmp_path: Path
) -> None:
    # given openid o-1 seen by two apps of the group, each time verified with another phone
    rows = [
        {
            "type": "openid",
            "value": "o-1",
            "scope": app,
            "channel": "miniprogram",
            "observed_at": "2024-01-01T00:00:00",
            "verified": "true",
            "linked_type": "phone",
            "linked_value": phone,
        }
        for app, phone in (("wx-fruit", "13800000011"), ("wx-bakery", "13900000022"))
    ]
    _import(store, vault, tmp_path, identities=rows)
    # when OneID resolves
    resolve_all(store.engine, store.group_id, DEFAULT_STRONG_TYPES)
    # then each app's openid is the member of its own phone, and they are two members
    openids = _holders(store, encoder, "openid", "o-1")
    assert set(openids) == {"wx-fruit", "wx-bakery"}
    assert openids["wx-fruit"] == _holders(store, encoder, "phone", "13800000011")[""]
    assert openids["wx-bakery"] == _holders(store, encoder, "phone", "13900000022")[""]
    assert openids["wx-fruit"] != openids["wx-bakery"]


def test_an_attached_openid_of_another_app_does_not_join_the_member(
    store: Store, encoder: IdentifierEncoder
) -> None:
    # given openid o-9 of app A bound to a verified phone
    at, strong = datetime(2024, 5, 1), DEFAULT_STRONG_TYPES
    o9 = encoder.encode("openid", "o-9")
    first = attach(
        store.engine,
        encoder,
        store.group_id,
        o9.in_scope("wx-a"),
        "miniprogram",
        at,
        strong,
        True,
        linked=encoder.encode("phone", "13800000099"),
    )
    # when the same openid value arrives from app B with another phone
    second = attach(
        store.engine,
        encoder,
        store.group_id,
        o9.in_scope("wx-b"),
        "miniprogram",
        at,
        strong,
        True,
        linked=encoder.encode("phone", "13900000099"),
    )
    # then it is another identity of another member, merged with nobody
    assert second.identity_id != first.identity_id
    assert second.member_id != first.member_id
    assert not second.merges and not second.conflicts


def test_the_policy_holds_one_card_per_brand_and_one_unionid_per_account(
    store: Store, vault: Vault, encoder: IdentifierEncoder, tmp_path: Path
) -> None:
    # given one verified phone bound to the unionids of two open-platform accounts, and
    # another verified phone bound to two unionids of one account
    def bound(unionid: str, account: str, phone: str) -> dict[str, str]:
        return {
            "type": "unionid",
            "value": unionid,
            "scope": account,
            "channel": "miniprogram",
            "observed_at": "2024-01-01T00:00:00",
            "verified": "true",
            "linked_type": "phone",
            "linked_value": phone,
        }

    _import(
        store,
        vault,
        tmp_path,
        identities=[
            bound("u-1", "open-a", "13800000031"),
            bound("u-2", "open-b", "13800000031"),
            bound("u-3", "open-a", "13900000032"),
            bound("u-4", "open-a", "13900000032"),
        ],
    )
    report = resolve_all(store.engine, store.group_id, DEFAULT_STRONG_TYPES)
    # then the two accounts' unionids are one person, the same account's two are refused
    member = _holders(store, encoder, "unionid", "u-1")["open-a"]
    assert _holders(store, encoder, "unionid", "u-2") == {"open-b": member}
    assert _holders(store, encoder, "unionid", "u-3") != _holders(store, encoder, "unionid", "u-4")
    assert report.conflicts == 1


def test_scopes_are_declared_per_type_and_checked() -> None:
    # the scoped types and what their scope means
    scoped = {name: t.scope for name, t in IDENTITY_TYPES.items() if t.scope}
    assert scoped == {
        "unionid": "platform",
        "openid": "app",
        "external_userid": "corp",
        "tmall_ouid": "shop",
        "douyin_open_id": "app",
        "youzan_id": "shop",
        "card": "brand",
    }
    # a card's scope is its brand; other scoped types default to the group's default ''
    assert scope_of("card", None, "B1") == scope_of("card", "B1", "B1") == "B1"
    assert scope_of("openid", None) == "" and scope_of("openid", " wx-a ") == "wx-a"
    assert scope_of("phone") == ""
    # bad scopes name the field and the rule
    cases = [
        (("card", None, None), "brand_id", "a card is issued per brand"),
        (("card", "B2", "B1"), "scope", "a card's scope is its brand"),
        (("phone", "wx-a", None), "scope", "phone is global: it takes no scope"),
        (("openid", "wx a", None), "scope", "must be 1-64 characters without spaces"),
        (("openid", "x" * 65, None), "scope", "must be 1-64 characters without spaces"),
    ]
    for args, field, rule in cases:
        with pytest.raises(ValidationError, match=rule) as err:
            scope_of(*args)
        assert err.value.field == field, args


def test_bad_scopes_in_an_import_are_rejected_naming_the_field(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    write_reference(tmp_path)
    import_directory(store.engine, vault, store.group_id, tmp_path, tmp_path / "rejects")

    def ident(type_: str, value: str, **extra: str) -> dict[str, str]:
        row = {"type": type_, "value": value, "channel": "pos"}
        return {**row, "observed_at": "2024-01-01T00:00:00", **extra}

    # when identities with a bad scope arrive
    result = import_rows(
        store.engine,
        vault,
        store.group_id,
        "identities",
        [
            ident("card", "1"),
            ident("card", "2", scope="B9"),
            ident("card", "3", scope="B2", brand_id="B1"),
            ident("phone", "13800000041", scope="B1"),
            ident("openid", "o-4", scope="wx a"),
            ident("openid", "o-5", linked_type="card", linked_value="5"),
            ident("card", "6", scope="B2"),
        ],
    )
    # then each is refused naming the field and the rule, and the good one is stored
    assert result.errors == [
        "brand_id: a card is issued per brand: name its brand_id",
        "scope: no brand 'B9' in this brand group",
        "scope: a card's scope is its brand: 'B2' is not brand_id 'B1'",
        "scope: phone is global: it takes no scope",
        "scope: a scope (the app of the openid) must be 1-64 characters without spaces",
        "brand_id: a card is issued per brand: name its brand_id",
        None,
    ]
    assert store.count("identities") == 1
    # and an event's card names its brand in identity_scope
    event = {
        "event_id": "E1",
        "type": "view",
        "channel": "pos",
        "identity_type": "card",
        "identity_value": "6",
        "occurred_at": "2024-01-02T00:00:00",
    }
    events = import_rows(
        store.engine,
        vault,
        store.group_id,
        "events",
        [event, {**event, "event_id": "E2", "identity_scope": "B2"}],
    )
    assert events.errors == [
        "identity_scope: a card is issued per brand: name it in identity_scope",
        None,
    ]
