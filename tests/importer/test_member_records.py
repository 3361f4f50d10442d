"""Member records that OneID must settle at import: a record whose identifiers someone else
already holds (a duplicate record) and a known member re-imported with another card (a
move). Neither may leave an active member without identities, an anonymous member, or a
merge that is not one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from tests.brandfiles import write, write_reference
from tests.conftest import Store

from siyu.config import DEFAULT_STRONG_TYPES
from siyu.identity.ingest import IdentifierEncoder
from siyu.identity.service import resolve_all, unmerge
from siyu.importer.service import ImportReport, import_directory, import_file
from siyu.ledger import points
from siyu.ledger.posting import Request
from siyu.privacy import Vault


def _reference(store: Store, vault: Vault, tmp: Path) -> None:
    write_reference(tmp / "ref")
    import_directory(store.engine, vault, store.group_id, tmp / "ref", tmp / "rejects")


def _import(
    store: Store, vault: Vault, tmp: Path, name: str, rows: list[dict[str, str]]
) -> ImportReport:
    path = write(tmp / f"{name}.csv", rows)
    return import_file(store.engine, vault, store.group_id, "members", path, tmp / "rejects")


def _row(
    ref: str,
    at: str,
    card: str | None = None,
    phone: str | None = None,
    brand: str = "B1",
    **extra: str,
) -> dict[str, str]:
    row = {"member_ref": ref, "brand_id": brand, "registered_at": at, "channel": "pos"}
    if card:
        row["card"] = card
    if phone:
        row["phone"] = phone
    return {**row, **extra}


def _resolve(store: Store):
    return resolve_all(store.engine, store.group_id, DEFAULT_STRONG_TYPES)


def _scalar(store: Store, sql: str, **params: object) -> object:
    with store.engine.connect() as conn:
        return conn.execute(text(sql), {"g": store.group_id, **params}).scalar_one()


def _all(store: Store, sql: str, **params: object) -> list[tuple[object, ...]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), {"g": store.group_id, **params})]


def _empty_active(store: Store) -> int:
    """Active members holding no identity: no channel can ever reach them."""
    return int(
        _scalar(
            store,
            "SELECT COUNT(*) FROM members m WHERE m.group_id = :g AND m.status = 'active' "
            "AND NOT EXISTS (SELECT 1 FROM identities i WHERE i.member_id = m.member_id)",
        )
    )


def _member(store: Store, ref: str) -> tuple[int, str, int | None]:
    row = _all(
        store,
        "SELECT member_id, status, merged_into FROM members WHERE group_id = :g "
        "AND source_ref = :r",
        r=ref,
    )[0]
    return int(row[0]), str(row[1]), None if row[2] is None else int(row[2])


def _holder(store: Store, encoder: IdentifierEncoder, type_: str, value: str) -> int:
    return int(
        _scalar(
            store,
            "SELECT member_id FROM identities WHERE group_id = :g AND type = :t AND value_key = :k",
            t=type_,
            k=encoder.encode(type_, value).key,
        )
    )


def _merges(store: Store) -> list[tuple[object, ...]]:
    return _all(
        store,
        "SELECT survivor_id, merged_id, mode, undone_at FROM merges WHERE group_id = :g "
        "ORDER BY merge_id",
    )


# --- duplicate records --------------------------------------------------------------------


def test_a_record_repeating_a_stored_members_card_and_phone_is_merged_into_that_member(
    store: Store, vault: Vault, encoder: IdentifierEncoder, tmp_path: Path
) -> None:
    # given a member imported with a card and a phone
    _reference(store, vault, tmp_path)
    _import(store, vault, tmp_path, "first", [_row("M1", "2023-01-01", "C1", "13800000001")])
    # when another file brings the same card and phone under another member number
    report = _import(
        store, vault, tmp_path, "second", [_row("M2", "2024-01-01", "C1", "13800000001")]
    )
    # then the record is merged into the member holding them, recorded as an import merge
    m1, _, _ = _member(store, "M1")
    m2, status, into = _member(store, "M2")
    assert (status, into) == ("merged", m1)
    assert _merges(store) == [(m1, m2, "import", None)]
    assert report.inserted == 1
    assert report.outcomes["merged"] == 1
    assert _empty_active(store) == 0
    assert _holder(store, encoder, "card", "C1") == m1
    # and OneID afterwards finds nothing to change
    resolved = _resolve(store)
    assert (resolved.new_members, resolved.merges, resolved.moved_identities) == (0, 0, 0)
    # and the merge is undone like any other, and re-importing does not redo it
    merge_id = int(_scalar(store, "SELECT merge_id FROM merges WHERE group_id = :g"))
    unmerge(store.engine, store.group_id, merge_id, "two people after all")
    assert _member(store, "M2")[1:] == ("active", None)
    again = _import(
        store, vault, tmp_path, "second", [_row("M2", "2024-01-01", "C1", "13800000001")]
    )
    assert again.outcomes["merged"] == 0
    assert _member(store, "M2")[1] == "active"


def test_duplicate_records_in_one_file_become_one_member(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    # given one file holding the same person twice (two member numbers) and someone else
    _reference(store, vault, tmp_path)
    report = _import(
        store,
        vault,
        tmp_path,
        "members",
        [
            _row("M1", "2023-01-01", "C1", "13800000001"),
            _row("M2", "2023-06-01", "c1", "+86 138 0000 0001"),
            _row("M3", "2023-02-01", "C3", "13800000003"),
        ],
    )
    # then the later record is merged into the earlier, and every active member holds
    # an identity
    assert _empty_active(store) == 0
    assert _member(store, "M2")[1:] == ("merged", _member(store, "M1")[0])
    assert report.outcomes["merged"] == 1
    assert (
        int(
            _scalar(store, "SELECT COUNT(*) FROM members WHERE group_id = :g AND status = 'active'")
        )
        == 2
    )


def test_an_older_duplicate_record_survives_and_takes_the_balances(
    store: Store, vault: Vault, encoder: IdentifierEncoder, tmp_path: Path
) -> None:
    # given a member who earned points
    _reference(store, vault, tmp_path)
    _import(store, vault, tmp_path, "first", [_row("M1", "2024-01-01", "C1", "13800000001")])
    m1 = _member(store, "M1")[0]
    expires = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=365)
    points.earn(store.engine, Request(store.group_id, m1, "earn", "e1", {}), 120, expires)
    # when a legacy record of the same person, registered years before, is imported
    report = _import(
        store, vault, tmp_path, "legacy", [_row("M0", "2019-05-01", "C1", "13800000001")]
    )
    # then the older record survives (OneID's rule) with the identities and the points
    m0 = _member(store, "M0")[0]
    assert _member(store, "M1")[1:] == ("merged", m0)
    assert report.outcomes["merged"] == 1
    assert _holder(store, encoder, "card", "C1") == m0
    balances = _all(
        store,
        "SELECT member_id, balance FROM ledger_accounts WHERE group_id = :g "
        "AND owner = 'member' AND asset = 'points' ORDER BY member_id",
    )
    assert dict(balances) == {m0: 120, m1: 0}
    assert _empty_active(store) == 0


def test_a_record_whose_card_is_one_members_and_phone_anothers_goes_with_the_card(
    store: Store, vault: Vault, encoder: IdentifierEncoder, tmp_path: Path
) -> None:
    # given two members of one brand, each with a card and a phone
    _reference(store, vault, tmp_path)
    _import(
        store,
        vault,
        tmp_path,
        "first",
        [
            _row("A", "2023-01-01", "CA", "13800000001"),
            _row("B", "2023-02-01", "CB", "13800000002"),
        ],
    )
    a, b = _member(store, "A")[0], _member(store, "B")[0]
    # when a record brings A's card with B's phone (a family phone typed at the till)
    report = _import(
        store, vault, tmp_path, "second", [_row("X", "2024-01-01", "CA", "13800000002")]
    )
    # then the record is A's (a card is issued to one member; a phone may be a family's)
    assert _member(store, "X")[1:] == ("merged", a)
    assert report.outcomes["merged"] == 1
    # and OneID refuses to join A and B through it, recording the conflict
    resolved = _resolve(store)
    assert resolved.conflicts == 1
    assert _holder(store, encoder, "card", "CA") == a
    assert _holder(store, encoder, "phone", "13800000002") == b
    assert {_member(store, "A")[1], _member(store, "B")[1]} == {"active"}
    kinds = _all(store, "SELECT kind FROM identity_conflicts WHERE group_id = :g")
    assert kinds == [("exclusive_clash",)]
    assert _empty_active(store) == 0


def test_a_record_bridging_two_members_who_may_merge_joins_them_through_oneid(
    store: Store, vault: Vault, encoder: IdentifierEncoder, tmp_path: Path
) -> None:
    # given a member of brand B1 and another of brand B2
    _reference(store, vault, tmp_path)
    _import(
        store,
        vault,
        tmp_path,
        "first",
        [
            _row("A", "2023-01-01", "CA", "13800000001"),
            _row("B", "2023-02-01", "CB", "13800000002", brand="B2"),
        ],
    )
    # when a record brings A's card with B's phone
    report = _import(
        store, vault, tmp_path, "second", [_row("X", "2024-01-01", "CA", "13800000002")]
    )
    resolved = _resolve(store)
    # then the record went with the card, and OneID merged the two members it bridges
    a = _member(store, "A")[0]
    assert _member(store, "X")[1:] == ("merged", a)
    assert report.outcomes["merged"] == 1
    assert resolved.merges == 1
    assert _holder(store, encoder, "phone", "13800000002") == a
    assert _member(store, "B")[1:] == ("merged", a)
    assert _empty_active(store) == 0


def test_a_record_with_an_identifier_of_its_own_is_left_to_oneid(
    store: Store, vault: Vault, encoder: IdentifierEncoder, tmp_path: Path
) -> None:
    # given a member; when a record brings its card with a phone nobody holds
    _reference(store, vault, tmp_path)
    _import(store, vault, tmp_path, "first", [_row("M1", "2023-01-01", "C1", "13800000001")])
    report = _import(
        store, vault, tmp_path, "second", [_row("M2", "2024-01-01", "C1", "13800000009")]
    )
    # then the import leaves it holding the new phone (OneID sees it), and OneID merges it
    assert report.outcomes["merged"] == 0
    assert _member(store, "M2")[1] == "active"
    resolved = _resolve(store)
    m1 = _member(store, "M1")[0]
    assert resolved.merges == 1
    assert _member(store, "M2")[1:] == ("merged", m1)
    assert _holder(store, encoder, "phone", "13800000009") == m1
    assert _empty_active(store) == 0


def test_a_merged_records_new_identifiers_go_to_the_member_it_was_merged_into(
    store: Store, vault: Vault, encoder: IdentifierEncoder, tmp_path: Path
) -> None:
    # given a duplicate record merged into the member holding its card
    _reference(store, vault, tmp_path)
    _import(store, vault, tmp_path, "first", [_row("M1", "2023-01-01", "C1", "13800000001")])
    _import(store, vault, tmp_path, "second", [_row("M2", "2024-01-01", "C1", "13800000001")])
    # when the duplicate record comes again with a phone nobody held
    report = _import(
        store, vault, tmp_path, "third", [_row("M2", "2024-01-01", "C1", "13800000002")]
    )
    # then the phone is the surviving member's, not the merged one's
    m1 = _member(store, "M1")[0]
    assert _holder(store, encoder, "phone", "13800000002") == m1
    assert report.outcomes["identities"] == 2  # the phone and its marketplace hash
    assert _resolve(store).new_members == 0
    assert _empty_active(store) == 0


# --- a known member re-imported with another card -----------------------------------------


def test_reimporting_a_member_with_a_changed_card_moves_it_to_the_new_card(
    store: Store, vault: Vault, encoder: IdentifierEncoder, tmp_path: Path
) -> None:
    # given a member imported and resolved
    _reference(store, vault, tmp_path)
    _import(store, vault, tmp_path, "v1", [_row("M1", "2023-01-01", "C1", "13800000001")])
    _resolve(store)
    m1 = _member(store, "M1")[0]
    # when the member file is imported again with a new card for that member
    report = _import(store, vault, tmp_path, "v2", [_row("M1", "2023-01-01", "C2", "13800000001")])
    resolved = _resolve(store)
    # then nobody new is created and nothing is merged: the member holds the new card
    # and keeps the old one
    assert int(_scalar(store, "SELECT COUNT(*) FROM members WHERE group_id = :g")) == 1
    assert _merges(store) == []
    assert (resolved.new_members, resolved.merges, resolved.moved_identities) == (0, 0, 0)
    assert _holder(store, encoder, "card", "C2") == m1
    assert _holder(store, encoder, "card", "C1") == m1
    # and the report counts what was written: a new identity, its links, one move
    assert report.inserted == 0
    assert report.outcomes == {"identities": 1, "links": 2, "merged": 0, "moved": 1}
    kinds = _all(store, "SELECT kind FROM identity_conflicts WHERE group_id = :g")
    assert kinds == [("card_change",)]
    # and importing either file again changes nothing (no move back to the old card)
    for name, card in (("v2", "C2"), ("v1", "C1")):
        again = _import(
            store, vault, tmp_path, name, [_row("M1", "2023-01-01", card, "13800000001")]
        )
        assert again.outcomes == {"identities": 0, "links": 0, "merged": 0, "moved": 0}
    assert _resolve(store).moved_identities == 0
    assert _holder(store, encoder, "card", "C2") == m1


def test_a_member_with_only_a_card_moves_to_its_new_card(
    store: Store, vault: Vault, encoder: IdentifierEncoder, tmp_path: Path
) -> None:
    # given a member with a card and nothing else, resolved
    _reference(store, vault, tmp_path)
    _import(store, vault, tmp_path, "v1", [_row("M1", "2023-01-01", "C1")])
    _resolve(store)
    # when it is re-imported with another card, twice over (C1 -> C2 -> C3)
    moves = [
        _import(store, vault, tmp_path, f"v{n}", [_row("M1", "2023-01-01", card)])
        for n, card in ((2, "C2"), (3, "C3"))
    ]
    resolved = _resolve(store)
    # then every card stays the member's, and OneID creates and merges nobody
    m1 = _member(store, "M1")[0]
    assert int(_scalar(store, "SELECT COUNT(*) FROM members WHERE group_id = :g")) == 1
    assert (resolved.new_members, resolved.merges) == (0, 0)
    assert {_holder(store, encoder, "card", c) for c in ("C1", "C2", "C3")} == {m1}
    assert [r.outcomes["moved"] for r in moves] == [1, 1]


def test_reimporting_an_unchanged_member_file_writes_nothing(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    # given a member file imported and resolved
    _reference(store, vault, tmp_path)
    rows = [
        _row("M1", "2023-01-01", "C1", "13800000001", email="a@example.com"),
        _row("M2", "2023-01-02", "C2", "13800000002"),
        _row("M3", "2023-01-03", "C2", "13800000002"),
    ]
    first = _import(store, vault, tmp_path, "members", rows)
    _resolve(store)
    # when the same file is imported again
    again = _import(store, vault, tmp_path, "members", rows)
    resolved = _resolve(store)
    # then nothing is written and OneID has nothing to do
    assert first.outcomes == {"identities": 7, "links": 5, "merged": 1, "moved": 0}
    assert again.inserted == 0
    assert again.outcomes == {"identities": 0, "links": 0, "merged": 0, "moved": 0}
    assert (resolved.new_members, resolved.merges, resolved.moved_identities) == (0, 0, 0)


# --- a labelled data set -------------------------------------------------------------------


def test_febrl_records_imported_as_members_leave_no_member_without_identities(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    # given FEBRL dataset3 (5,000 records of 2,000 people, duplicates with typos) as a
    # member master: the social security number as the card, the rest as the profile
    import csv

    from tests.analytics.data import shared_file

    source = shared_file("febrl", "dataset3.csv")
    with source.open(encoding="utf-8") as fh:
        records = list(csv.DictReader(fh, skipinitialspace=True))
    rows = []
    for r in records:
        dob = r["date_of_birth"]
        row = _row(r["rec_id"], "2024-01-01", r["soc_sec_id"])
        row.update(
            given_name=r["given_name"],
            family_name=r["surname"],
            address=" ".join(
                p for p in (r["street_number"], r["address_1"], r["address_2"], r["suburb"]) if p
            ),
            postcode=r["postcode"],
        )
        if len(dob) == 8 and dob.isdigit() and dob[:4] >= "1900" and "01" <= dob[4:6] <= "12":
            row["birth_date"] = f"{dob[:4]}-{dob[4:6]}-{dob[6:]}"
        rows.append(row)
    _reference(store, vault, tmp_path)
    # when it is imported
    report = _import(store, vault, tmp_path, "febrl", rows)
    # then every record is accounted for, and each card is one active member holding it
    accepted_cards = {
        row["card"] for row in rows if row["member_ref"] not in _rejected(tmp_path, "febrl")
    }
    assert report.accepted + report.rejected == 5_000
    assert _empty_active(store) == 0
    assert report.outcomes["merged"] == report.accepted - len(accepted_cards)
    assert report.outcomes["merged"] > 2_000
    active = _scalar(
        store, "SELECT COUNT(*) FROM members WHERE group_id = :g AND status = 'active'"
    )
    assert active == len(accepted_cards)
    # and no member holds records of two different people (a card number is one person's)
    people = _all(
        store,
        "SELECT COALESCE(m.merged_into, m.member_id), m.source_ref FROM members m "
        "WHERE m.group_id = :g",
    )
    persons: dict[object, set[str]] = {}
    for member, ref in people:
        persons.setdefault(member, set()).add(str(ref).split("-")[1])
    assert all(len(p) == 1 for p in persons.values())


def _rejected(tmp: Path, name: str) -> set[str]:
    import csv

    path = tmp / "rejects" / f"{name}.members.rejects.csv"
    if not path.is_file():
        return set()
    with path.open(encoding="utf-8-sig") as fh:
        return {r["member_ref"] for r in csv.DictReader(fh)}
