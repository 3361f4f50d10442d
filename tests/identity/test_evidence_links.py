"""Defect 5 of the OneID issue: the policy tells a second card from an evidence link.

Two cards of one brand on one member are refused when a channel's account link would
join them (a family phone typed at the till), but a rule or a probabilistic match saying
two member records are one person (evidence) joins them: a duplicate registration,
reported. A unionid never yields to evidence."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import text
from tests.brandfiles import write, write_reference
from tests.conftest import Store

from siyu.config import DEFAULT_STRONG_TYPES
from siyu.identity.ingest import IdentifierEncoder
from siyu.identity.resolve import resolve_all
from siyu.importer.service import import_directory
from siyu.privacy import Vault


def _import(store: Store, vault: Vault, tmp: Path, name: str, rows: list[dict[str, str]]) -> None:
    write_reference(tmp)
    write(tmp / name, rows)
    import_directory(store.engine, vault, store.group_id, tmp, tmp / "rejects")


def _identity(store: Store, encoder: IdentifierEncoder, type_: str, value: str) -> tuple[int, int]:
    """(identity_id, member_id) of an identifier."""
    key = encoder.encode(type_, value).key
    with store.engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT identity_id, member_id FROM identities WHERE group_id = :g AND type = :t "
                "AND value_key = :k"
            ),
            {"g": store.group_id, "t": type_, "k": key},
        ).one()
    return int(row[0]), int(row[1])


def _evidence(store: Store, a: int, b: int) -> None:
    """What a side key or an accepted match records: an evidence link between two of the
    members' identities."""
    at = datetime(2024, 3, 1)
    with store.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO identity_links (group_id, identity_a, identity_b, channel, "
                "verified, first_seen, last_seen, blocked, kind) "
                "VALUES (:g, :a, :b, 'oneid.match', :f, :t, :t, :f, 'evidence')"
            ),
            {"g": store.group_id, "a": min(a, b), "b": max(a, b), "t": at, "f": False},
        )


def _conflict_kinds(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return list(
            conn.execute(
                text("SELECT kind FROM identity_conflicts WHERE group_id = :g ORDER BY kind"),
                {"g": store.group_id},
            ).scalars()
        )


def _two_registrations(store: Store, vault: Vault, tmp: Path) -> None:
    # one person registered twice at two stores of brand B1: two cards, two phones
    rows = [
        {"member_ref": "R1", "brand_id": "B1", "registered_at": "2024-01-01T10:00:00",
         "channel": "pos", "card": "C-0001", "phone": "13800000001"},
        {"member_ref": "R2", "brand_id": "B1", "registered_at": "2024-02-01T10:00:00",
         "channel": "pos", "card": "C-0002", "phone": "13800000002"},
    ]  # fmt: skip
    _import(store, vault, tmp, "members.csv", rows)
    resolve_all(store.engine, store.group_id, DEFAULT_STRONG_TYPES)


def test_an_evidence_link_joins_two_cards_of_one_brand_as_a_duplicate_registration(
    store: Store, vault: Vault, encoder: IdentifierEncoder, tmp_path: Path
) -> None:
    # given two member records of one person, each with a card of brand B1
    _two_registrations(store, vault, tmp_path)
    card1, m1 = _identity(store, encoder, "card", "C-0001")
    card2, m2 = _identity(store, encoder, "card", "C-0002")
    assert m1 != m2
    # when a side key (exact name and birth date) records evidence they are one person
    _evidence(store, card1, card2)
    report = resolve_all(store.engine, store.group_id, DEFAULT_STRONG_TYPES)
    # then the two records become one member, the older surviving, reported not refused
    assert _identity(store, encoder, "card", "C-0002")[1] == m1
    assert _identity(store, encoder, "phone", "13800000002")[1] == m1
    assert report.conflicts == 0 and report.merges == 1
    assert _conflict_kinds(store) == ["duplicate_registration"]
    # and running it again changes nothing
    again = resolve_all(store.engine, store.group_id, DEFAULT_STRONG_TYPES)
    assert again.merges == 0 and again.moved_identities == 0


def test_an_account_link_giving_a_member_a_second_card_is_still_refused(
    store: Store, vault: Vault, encoder: IdentifierEncoder, tmp_path: Path
) -> None:
    # given the same two cards, and a till typing card C-0002 with the first phone
    _two_registrations(store, vault, tmp_path)
    ident = {"type": "card", "value": "C-0002", "channel": "pos", "brand_id": "B1",
             "observed_at": "2024-03-01T00:00:00", "linked_type": "phone",
             "linked_value": "13800000001"}  # fmt: skip
    _import(store, vault, tmp_path / "more", "identities.csv", [ident])
    # when OneID resolves
    report = resolve_all(store.engine, store.group_id, DEFAULT_STRONG_TYPES)
    # then that account link is refused: a shared phone is not evidence of one person
    assert (
        _identity(store, encoder, "card", "C-0001")[1]
        != _identity(store, encoder, "card", "C-0002")[1]
    )
    assert report.conflicts == 1
    assert _conflict_kinds(store) == ["exclusive_clash"]


def test_evidence_never_joins_two_unionids(
    store: Store, vault: Vault, encoder: IdentifierEncoder, tmp_path: Path
) -> None:
    # given two WeChat accounts (two unionids) on the two records
    _two_registrations(store, vault, tmp_path)
    idents = [
        {"type": "card", "value": card, "channel": "miniprogram", "brand_id": "B1",
         "observed_at": "2024-03-01T00:00:00", "verified": "true",
         "linked_type": "unionid", "linked_value": unionid}
        for card, unionid in (("C-0001", "u-one"), ("C-0002", "u-two"))
    ]  # fmt: skip
    _import(store, vault, tmp_path / "more", "identities.csv", idents)
    resolve_all(store.engine, store.group_id, DEFAULT_STRONG_TYPES)
    # when evidence says the records are one person
    _evidence(
        store,
        _identity(store, encoder, "card", "C-0001")[0],
        _identity(store, encoder, "card", "C-0002")[0],
    )
    resolve_all(store.engine, store.group_id, DEFAULT_STRONG_TYPES)
    # then the strong identifiers win over the match: still two members, the clash recorded
    assert (
        _identity(store, encoder, "unionid", "u-one")[1]
        != _identity(store, encoder, "unionid", "u-two")[1]
    )
    assert "exclusive_clash" in _conflict_kinds(store)
