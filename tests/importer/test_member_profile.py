"""The member profile fields probabilistic matching compares: name parts, e-mail, address,
postcode. Composed or split, validated with the field named, never stored in the clear."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import text
from tests.brandfiles import write, write_reference
from tests.conftest import Store

from siyu.identity.ingest import IdentifierEncoder
from siyu.importer.service import import_directory, import_file
from siyu.privacy import Vault


def _import(store: Store, vault: Vault, tmp: Path, rows: list[dict[str, str]]):
    write_reference(tmp / "ref")
    import_directory(store.engine, vault, store.group_id, tmp / "ref", tmp / "rejects")
    path = write(tmp / "members.csv", rows)
    return import_file(store.engine, vault, store.group_id, "members", path, tmp / "rejects")


def _row(ref: str, card: str, **fields: str) -> dict[str, str]:
    return {
        "member_ref": ref,
        "brand_id": "B1",
        "registered_at": "2024-01-01",
        "channel": "pos",
        "card": card,
        **fields,
    }


def _profiles(store: Store, vault: Vault) -> dict[str, dict[str, str | None]]:
    def clear(blob: object, context: str) -> str | None:
        return None if blob is None else vault.decrypt(bytes(blob), context)

    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT source_ref, name_enc, name_masked, given_name_enc, family_name_enc, "
                "address_enc, postcode FROM members WHERE group_id = :g"
            ),
            {"g": store.group_id},
        ).all()
    return {
        r.source_ref: {
            "name": clear(r.name_enc, "name"),
            "masked": r.name_masked,
            "given": clear(r.given_name_enc, "given_name"),
            "family": clear(r.family_name_enc, "family_name"),
            "address": clear(r.address_enc, "address"),
            "postcode": r.postcode,
        }
        for r in rows
    }


def test_names_are_composed_from_their_parts_or_split_into_them(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    # given members named by parts only, by a whole name only, or both
    report = _import(
        store,
        vault,
        tmp_path,
        [
            _row("P1", "C1", given_name="娜娜", family_name="欧阳"),
            _row("P2", "C2", given_name="Mitchell", family_name="Green"),
            _row("P3", "C3", name="诸葛亮"),
            _row("P4", "C4", name="张三"),
            _row("P5", "C5", name="Mary Anne  Smith"),
            _row("P6", "C6", name="王小明", given_name="晓明", family_name="王"),
        ],
    )
    # then each has a whole name and its parts, as given or derived
    assert report.rejected == 0
    got = {
        ref: (p["name"], p["family"], p["given"], p["masked"])
        for ref, p in _profiles(store, vault).items()
    }
    assert got == {
        "P1": ("欧阳娜娜", "欧阳", "娜娜", "欧***"),
        "P2": ("Mitchell Green", "Green", "Mitchell", "M" + "*" * 13),
        "P3": ("诸葛亮", "诸葛", "亮", "诸**"),
        "P4": ("张三", "张", "三", "张*"),
        "P5": ("Mary Anne  Smith", "Smith", "Mary Anne", "M" + "*" * 15),
        "P6": ("王小明", "王", "晓明", "王**"),
    }


def test_email_address_and_postcode_are_stored_and_protected(
    store: Store, vault: Vault, encoder: IdentifierEncoder, tmp_path: Path
) -> None:
    # given a member with an e-mail in upper case, an address and a postcode
    report = _import(
        store,
        vault,
        tmp_path,
        [
            _row(
                "P1",
                "C1",
                phone="13800000001",
                email=" Li.Si@Example.COM ",
                given_name="四",
                family_name="李",
                address="上海市黄浦区南京东路 100 号",
                postcode="200001",
            ),
            _row("P2", "C2", email="li.si@example.com"),
        ],
    )
    assert report.rejected == 0
    key = encoder.encode("email", "li.si@example.com").key
    with store.engine.connect() as conn:
        email = conn.execute(
            text(
                "SELECT i.identity_id, i.value, i.value_enc, i.value_masked, m.source_ref "
                "FROM identities i JOIN members m ON m.member_id = i.member_id "
                "WHERE i.group_id = :g AND i.type = 'email' AND i.value_key = :k"
            ),
            {"g": store.group_id, "k": key},
        ).one()
        linked = conn.execute(
            text(
                "SELECT o.type, l.verified, l.kind FROM identity_links l "
                "JOIN identities o ON o.identity_id = "
                "  CASE WHEN l.identity_a = :e THEN l.identity_b ELSE l.identity_a END "
                "WHERE l.group_id = :g AND :e IN (l.identity_a, l.identity_b) ORDER BY o.type"
            ),
            {"g": store.group_id, "e": email.identity_id},
        ).all()
    # then the e-mail is one identity whatever its case, encrypted, linked to the card
    # typed with it as an unverified account link; the second record's is the same one
    assert email.value is None
    assert vault.decrypt(bytes(email.value_enc), "email") == "li.si@example.com"
    assert email.source_ref == "P1"
    assert [tuple(r) for r in linked] == [("card", False, "account"), ("card", False, "account")]
    profile = _profiles(store, vault)["P1"]
    assert profile["address"] == "上海市黄浦区南京东路 100 号"
    assert profile["postcode"] == "200001"
    # and nothing personal is in the database file in the clear (postcode aside)
    if store.dialect == "sqlite":
        db = Path(store.engine.url.database or "")
        raw = db.read_bytes() + b"".join(w.read_bytes() for w in db.parent.glob("*.db-wal"))
        for secret in ("li.si@example.com", "Li.Si", "南京东路", "李四"):
            assert secret.encode() not in raw, secret


def test_bad_profile_fields_are_rejected_naming_the_field_and_the_rule(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    # given rows with a typo'd e-mail, a postcode with a stray character, an over-long
    # name part and a postcode too long
    report = _import(
        store,
        vault,
        tmp_path,
        [
            _row("P1", "C1", email="li.si@example"),
            _row("P2", "C2", postcode="2119#"),
            _row("P3", "C3", given_name="x" * 65),
            _row("P4", "C4", postcode="12345678901234567"),
            _row("P5", "C5", email="ok@example.com", postcode="SW1A 1AA"),
        ],
    )
    # then each bad row is rejected with its field and rule, and the good one is stored
    assert (report.accepted, report.rejected) == (1, 4)
    with Path(report.rejects_path or "").open(encoding="utf-8-sig") as fh:
        reasons = {r["member_ref"]: r["reject_reason"] for r in csv.DictReader(fh)}
    assert reasons == {
        "P1": "email: email must be local@domain.tld, at most 254 characters",
        "P2": "postcode: must be 1-16 letters, digits, spaces or '-'",
        "P3": "given_name: must be at most 64 characters",
        "P4": "postcode: must be 1-16 letters, digits, spaces or '-'",
    }
    assert _profiles(store, vault)["P5"]["postcode"] == "SW1A 1AA"
