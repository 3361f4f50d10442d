"""Bulk import: idempotent, every row accounted for, bad rows reported with field and rule,
personal data never stored in the clear."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import text
from tests.brandfiles import write, write_reference
from tests.conftest import Store

from siyu.importer.service import import_directory, import_file
from siyu.privacy import Vault

TABLES = (
    "brands",
    "stores",
    "products",
    "guides",
    "members",
    "identities",
    "identity_links",
    "orders",
    "order_lines",
    "refunds",
    "events",
)


def _brand_dir(tmp_path: Path, suffix: str = ".csv") -> Path:
    d = tmp_path / f"brand{suffix.replace('.', '_')}"
    write_reference(d, suffix)
    write(
        d / f"members{suffix}",
        [
            {
                "member_ref": "M1",
                "brand_id": "B1",
                "registered_at": "2024-01-01T10:00:00",
                "channel": "pos",
                "card": "c001",
                "phone": "138 1234 5678",
                "name": "张三",
                "gender": "m",
                "birth_date": "1990-04-01",
                "home_store_id": "S1",
            },
            {
                "member_ref": "M2",
                "brand_id": "B2",
                "registered_at": "2024-02-01T10:00:00+08:00",
                "channel": "pos",
                "card": "D002",
                "phone": "+8613900001111",
                "name": "李四",
            },
            {
                "member_ref": "M3",
                "brand_id": "B1",
                "registered_at": "2024-03-01",
                "channel": "pos",
                "phone": "12345",
            },  # bad phone
            {
                "member_ref": "M4",
                "brand_id": "B9",
                "registered_at": "2024-03-01",
                "channel": "pos",
                "card": "C004",
            },  # unknown brand
        ],
    )
    write(
        d / f"identities{suffix}",
        [
            {
                "type": "openid",
                "value": "o-1",
                "channel": "miniprogram",
                "observed_at": "2024-01-05T10:00:00",
                "verified": "true",
                "linked_type": "unionid",
                "linked_value": "u-1",
            },
            {
                "type": "phone",
                "value": "13812345678",
                "channel": "miniprogram",
                "observed_at": "2024-01-05T10:00:00",
                "verified": "true",
                "linked_type": "unionid",
                "linked_value": "u-1",
            },
            {"type": "fax", "value": "1", "channel": "pos", "observed_at": "2024-01-05T10:00:00"},
            {
                "type": "openid",
                "value": "o-2",
                "channel": "miniprogram",
                "observed_at": "2024-01-05T10:00:00",
                "linked_type": "unionid",
            },  # half a link
        ],
    )
    write(
        d / f"orders{suffix}",
        [
            {
                "order_id": "O1",
                "brand_id": "B1",
                "channel": "pos",
                "buyer_type": "card",
                "buyer_value": "C001",
                "ordered_at": "2024-01-02T10:00:00",
                "total_fen": "9900",
                "paid_fen": "9900",
                "store_id": "S1",
                "guide_id": "G1",
            },
            {
                "order_id": "O2",
                "brand_id": "B1",
                "channel": "tmall",
                "buyer_type": "tmall_ouid",
                "buyer_value": "T-1",
                "ordered_at": "2024-01-07T10:00:00",
                "total_fen": "9900",
                "paid_fen": "9000",
                "discount_fen": "900",
            },
            {
                "order_id": "O3",
                "brand_id": "B1",
                "channel": "pos",
                "buyer_type": "card",
                "buyer_value": "C001",
                "ordered_at": "2024-01-08T10:00:00",
                "total_fen": "100",
                "paid_fen": "200",
            },  # paid more than total
            {
                "order_id": "O4",
                "brand_id": "B1",
                "channel": "pos",
                "buyer_type": "card",
                "buyer_value": "C001",
                "ordered_at": "2024-01-08T10:00:00",
                "total_fen": "12.5",
                "paid_fen": "100",
            },  # yuan, not fen
            {
                "order_id": "O5",
                "brand_id": "B1",
                "channel": "fax",
                "buyer_type": "card",
                "buyer_value": "C001",
                "ordered_at": "yesterday",
                "total_fen": "1",
                "paid_fen": "1",
            },
        ],
    )
    write(
        d / f"order_lines{suffix}",
        [
            {
                "order_id": "O1",
                "line_no": "1",
                "sku": "K1",
                "qty": "1",
                "unit_price_fen": "9900",
                "amount_fen": "9900",
            },
            {
                "order_id": "O2",
                "line_no": "1",
                "sku": "K1",
                "qty": "1",
                "unit_price_fen": "9900",
                "amount_fen": "9900",
            },
            {
                "order_id": "O9",
                "line_no": "1",
                "sku": "K1",
                "qty": "1",
                "unit_price_fen": "1",
                "amount_fen": "1",
            },  # no such order
            {
                "order_id": "O1",
                "line_no": "2",
                "sku": "K1",
                "qty": "0",
                "unit_price_fen": "1",
                "amount_fen": "1",
            },  # qty 0
        ],
    )
    write(
        d / f"refunds{suffix}",
        [
            {
                "refund_id": "R1",
                "order_id": "O2",
                "refunded_at": "2024-01-09T10:00:00",
                "amount_fen": "9000",
                "line_no": "1",
                "qty": "1",
                "reason": "坏果",
            },
        ],
    )
    write(
        d / f"events{suffix}",
        [
            {
                "event_id": "E1",
                "type": "scan",
                "channel": "miniprogram",
                "identity_type": "openid",
                "identity_value": "o-1",
                "occurred_at": "2024-01-05T09:59:00",
                "scene": "store_qr:S1",
            },
            {
                "event_id": "E2",
                "type": "teleport",
                "channel": "miniprogram",
                "identity_type": "openid",
                "identity_value": "o-1",
                "occurred_at": "2024-01-05T09:59:00",
            },
        ],
    )
    return d


def _counts(store: Store) -> dict[str, int]:
    return {t: store.count(t) for t in TABLES}


def _rejects(path: str | None) -> list[dict[str, str]]:
    assert path is not None
    with open(path, encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def test_every_row_is_accounted_for_and_bad_rows_name_field_and_rule(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    # given a brand directory with good and bad rows of every kind
    d = _brand_dir(tmp_path)
    # when it is imported
    reports = {
        r.kind: r
        for r in import_directory(store.engine, vault, store.group_id, d, tmp_path / "rejects")
    }
    # then read = accepted + rejected for every file
    for r in reports.values():
        assert r.read == r.accepted + r.rejected, r
    assert (reports["members"].accepted, reports["members"].rejected) == (2, 2)
    assert (reports["orders"].accepted, reports["orders"].rejected) == (2, 3)
    assert (reports["order_lines"].accepted, reports["order_lines"].rejected) == (2, 2)
    # and each rejected row says which field broke which rule
    members = _rejects(reports["members"].rejects_path)
    reasons = {r["member_ref"]: r["reject_reason"] for r in members}
    assert reasons["M3"].startswith("phone: must be a mainland mobile")
    assert reasons["M4"] == "brand_id: no brand 'B9' in this brand group"
    reasons = {r["order_id"]: r["reject_reason"] for r in _rejects(reports["orders"].rejects_path)}
    assert reasons == {
        "O3": "paid_fen: must not exceed total_fen",
        "O4": "total_fen: must be an integer (integer fen, 1/100 CNY; no decimal point)",
        "O5": "channel: must be one of: douyin, jd, miniprogram, official_account, pos, "
        "tmall, wecom, youzan",
    }
    lines = _rejects(reports["order_lines"].rejects_path)
    assert sorted(r["reject_reason"] for r in lines) == [
        "order_id: no such order in this brand group",
        "qty: must be >= 1",
    ]
    ids = {r["reject_reason"] for r in _rejects(reports["identities"].rejects_path)}
    assert "linked_value: linked_type and linked_value come together" in ids
    assert any(r.startswith("type: must be one of") for r in ids)
    events = _rejects(reports["events"].rejects_path)
    assert events[0]["reject_reason"].startswith("type: must be one")
    # and the good rows are in
    assert store.count("orders") == 2 and store.count("refunds") == 1


def test_importing_the_same_files_twice_changes_nothing(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    d = _brand_dir(tmp_path)
    first = import_directory(store.engine, vault, store.group_id, d, tmp_path / "r")
    before = _counts(store)
    second = import_directory(store.engine, vault, store.group_id, d, tmp_path / "r")
    assert _counts(store) == before
    assert all(r.inserted == 0 for r in second)
    assert [r.accepted for r in first] == [r.accepted for r in second]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_jsonl_and_parquet_import_like_csv(
    store: Store, vault: Vault, tmp_path: Path, suffix: str
) -> None:
    csv_dir, other_dir = _brand_dir(tmp_path, ".csv"), _brand_dir(tmp_path, suffix)
    other = import_directory(store.engine, vault, store.group_id, other_dir, tmp_path / "r")
    counts = _counts(store)
    # the same content as CSV adds nothing more: the formats mean the same rows
    again = import_directory(store.engine, vault, store.group_id, csv_dir, tmp_path / "r")
    assert _counts(store) == counts
    assert [(r.accepted, r.rejected) for r in other] == [(r.accepted, r.rejected) for r in again]


def test_malformed_lines_are_rejected_not_fatal(store: Store, vault: Vault, tmp_path: Path) -> None:
    write_reference(tmp_path)
    import_directory(store.engine, vault, store.group_id, tmp_path, tmp_path / "r")
    bad_csv = tmp_path / "x" / "orders.csv"
    bad_csv.parent.mkdir()
    bad_csv.write_text(
        "order_id,brand_id,channel,buyer_type,buyer_value,ordered_at,total_fen,paid_fen\n"
        "O1,B1,pos,card,C1,2024-01-01T00:00:00,100,100\n"
        "O2,B1,pos,card,C1,2024-01-01T00:00:00,100\n"
        "O3,B1,pos,card,C1,2024-01-01T00:00:00,100,100\n"
    )
    report = import_file(store.engine, vault, store.group_id, "orders", bad_csv, tmp_path / "r")
    assert (report.read, report.accepted, report.rejected) == (3, 2, 1)
    assert "fields, the header has 8" in _rejects(report.rejects_path)[0]["reject_reason"]
    bad_jsonl = tmp_path / "x" / "events.jsonl"
    bad_jsonl.write_text(
        '{"event_id": "E1", "type": "view", "channel": "jd", "identity_type": "jd_pin", '
        '"identity_value": "p1", "occurred_at": "2024-01-01T00:00:00"}\n{not json\n[1, 2]\n'
    )
    report = import_file(store.engine, vault, store.group_id, "events", bad_jsonl, tmp_path / "r")
    assert (report.read, report.accepted, report.rejected) == (3, 1, 2)


def test_phones_and_names_are_not_stored_in_the_clear(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    import_directory(store.engine, vault, store.group_id, _brand_dir(tmp_path), tmp_path / "r")
    with store.engine.connect() as conn:
        phones = conn.execute(
            text(
                "SELECT value, value_masked, value_enc FROM identities "
                "WHERE group_id = :g AND type = 'phone' ORDER BY value_masked"
            ),
            {"g": store.group_id},
        ).all()
        names = conn.execute(
            text(
                "SELECT name_masked, name_enc FROM members WHERE group_id = :g ORDER BY source_ref"
            ),
            {"g": store.group_id},
        ).all()
    assert [p.value for p in phones] == [None, None]
    assert [p.value_masked for p in phones] == ["138****5678", "139****1111"]
    assert vault.decrypt(bytes(phones[0].value_enc), "phone") == "+8613812345678"
    assert [n.name_masked for n in names] == ["张*", "李*"]
    assert vault.decrypt(bytes(names[0].name_enc), "name") == "张三"
    if store.dialect == "sqlite":
        raw = Path(store.engine.url.database or "").read_bytes()
        for wal in Path(store.engine.url.database or "").parent.glob("*.db-wal"):
            raw += wal.read_bytes()
        for secret in ("13812345678", "13900001111", "张三", "李四"):
            assert secret.encode() not in raw, secret
