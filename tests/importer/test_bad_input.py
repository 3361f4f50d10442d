"""Bad input never crashes an import and is never silently dropped: impossible dates and
times are rejected rows, an unreadable file is one clear error with nothing applied,
a changed record is a reject (not a silent no-op), refunds stay within what was paid, and
the rejects file can be fixed and imported again."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.brandfiles import write, write_reference
from tests.conftest import Store

from siyu.errors import ValidationError
from siyu.importer.service import ImportReport, import_directory, import_file
from siyu.privacy import Vault

NOW = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
TOMORROW = (NOW + timedelta(days=1)).isoformat()


def _reference(store: Store, vault: Vault, tmp_path: Path) -> None:
    write_reference(tmp_path / "ref")
    import_directory(store.engine, vault, store.group_id, tmp_path / "ref", tmp_path / "rej")


def _member(ref: str, **extra: str) -> dict[str, str]:
    return {
        "member_ref": ref,
        "brand_id": "B1",
        "registered_at": "2024-01-01T10:00:00",
        "channel": "pos",
        "card": f"C-{ref}",
        **extra,
    }


def _order(order_id: str, **extra: str) -> dict[str, str]:
    return {
        "order_id": order_id,
        "brand_id": "B1",
        "channel": "pos",
        "buyer_type": "card",
        "buyer_value": "C001",
        "ordered_at": "2024-01-02T10:00:00",
        "total_fen": "9900",
        "paid_fen": "9000",
        **extra,
    }


def _refund(refund_id: str, amount: int, order_id: str = "O1") -> dict[str, str]:
    return {
        "refund_id": refund_id,
        "order_id": order_id,
        "refunded_at": "2024-01-09T10:00:00",
        "amount_fen": str(amount),
    }


def _import(
    store: Store, vault: Vault, tmp_path: Path, kind: str, path: Path, batch_rows: int = 100_000
) -> ImportReport:
    report = import_file(
        store.engine, vault, store.group_id, kind, path, tmp_path / "rej", batch_rows
    )
    assert report.read == report.accepted + report.rejected, report
    return report


def _rejects(report: ImportReport) -> list[dict[str, str]]:
    assert report.rejects_path is not None
    with open(report.rejects_path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def _reasons(report: ImportReport, key: str) -> dict[str, str]:
    return {r[key]: r["reject_reason"] for r in _rejects(report)}


# --- 14: dates and times within sane bounds -------------------------------------------


def test_birth_dates_and_registration_times_out_of_range_are_rejected_rows(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    # given members with an impossible, a too-early and a future birth date, and
    # registrations in the future and before the floor
    _reference(store, vault, tmp_path)
    path = write(
        tmp_path / "members.csv",
        [
            _member("M1", birth_date="1990-04-01"),
            _member("M2", birth_date="0000-01-01"),
            _member("M3", birth_date="1899-12-31"),
            _member("M4", birth_date=(NOW.date() + timedelta(days=2)).isoformat()),
            _member("M5", registered_at=TOMORROW),
            _member("M6", registered_at="1999-12-31T23:59:59"),
            _member("M7", registered_at="0000-01-01T00:00:00"),
        ],
    )
    # when they are imported (on PostgreSQL too, where year 0 used to abort the batch)
    report = _import(store, vault, tmp_path, "members", path)
    # then only the good row is in, and each other row says which field broke which rule
    assert (report.read, report.accepted, report.rejected) == (7, 1, 6)
    birth = "birth_date: must be between 1900-01-01 and today"
    reasons = _reasons(report, "member_ref")
    assert reasons == {
        "M2": birth,
        "M3": birth,
        "M4": birth,
        "M5": "registered_at: must not be in the future (more than 10 minutes ahead)",
        "M6": "registered_at: must not be before 2000-01-01",
        "M7": "registered_at: must not be before 2000-01-01",
    }
    assert store.count("members") == 1


def test_order_event_and_refund_times_respect_the_floor_and_the_clock(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    _reference(store, vault, tmp_path)
    path = write(
        tmp_path / "orders.jsonl",
        [_order("O1"), _order("O2", ordered_at=TOMORROW), _order("O3", paid_at="1970-01-01")],
    )
    report = _import(store, vault, tmp_path, "orders", path)
    assert _reasons(report, "order_id") == {
        "O2": "ordered_at: must not be in the future (more than 10 minutes ahead)",
        "O3": "paid_at: must not be before 2000-01-01",
    }
    # a floor of its own for a brand whose history starts earlier
    old = write(tmp_path / "old" / "orders.csv", [_order("O4", ordered_at="1998-05-01")])
    report = import_file(
        store.engine,
        vault,
        store.group_id,
        "orders",
        old,
        tmp_path / "rej",
        earliest=datetime(1995, 1, 1),
    )
    assert report.accepted == 1


def test_parquet_dates_of_year_zero_are_rejected_not_fatal(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    # given a Parquet file whose birth_date column is typed, with a year-0 date in it
    _reference(store, vault, tmp_path)
    days_to_year_0 = -719528  # 0000-01-01 in days since 1970-01-01
    table = pa.table(
        {
            "member_ref": ["M1", "M2"],
            "brand_id": ["B1", "B1"],
            "registered_at": pa.array([datetime(2024, 1, 1)] * 2, pa.timestamp("s")),
            "channel": ["pos", "pos"],
            "card": ["C-1", "C-2"],
            "birth_date": pa.array([7000, days_to_year_0], pa.int32()).cast(pa.date32()),
        }
    )
    pq.write_table(table, tmp_path / "members.parquet")
    report = _import(store, vault, tmp_path, "members", tmp_path / "members.parquet")
    assert (report.accepted, report.rejected) == (1, 1)
    (row,) = _rejects(report)
    assert row["reject_row"] == "2" and row["birth_date"] == "0000-01-01"
    assert row["reject_reason"] == "birth_date: must be between 1900-01-01 and today"


def _good_orders_then(tail: bytes) -> bytes:
    head = "order_id,brand_id,channel,buyer_type,buyer_value,ordered_at,total_fen,paid_fen\n"
    good = "".join(f"O{i},B1,pos,card,C001,2024-01-02T10:00:00,100,100\n" for i in range(1, 4))
    return (head + good).encode() + tail


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        (
            "orders.csv",
            _good_orders_then(
                "O9,B1,pos,card,Andr\xe9,2024-01-02T10:00:00,1,1\n".encode("latin-1")
            ),
            "orders.csv: line 5: not UTF-8 text (byte 0xe9)",
        ),
        ("orders.csv", b"", "orders.csv: the file is empty"),
        ("orders.csv", b"\xef\xbb\xbf\n\n", "orders.csv: the file is empty"),
        (
            "orders.jsonl",
            b'{"order_id": "O1"}\n{"order_id": "Andr\xe9"}\n',
            "orders.jsonl: line 2: not UTF-8 text (byte 0xe9)",
        ),
        ("orders.jsonl", b"", "orders.jsonl: the file is empty"),
        (
            "orders.jsonl",
            json.dumps(_order("O1")).encode() + b'\n{"order_id": "O2", "bra',
            "orders.jsonl: line 2: the file ends in the middle of a JSON object (truncated?)",
        ),
    ],
)
def test_an_unreadable_text_file_is_one_clear_error_with_nothing_applied(
    store: Store, vault: Vault, tmp_path: Path, name: str, content: bytes, problem: str
) -> None:
    # given good rows followed by a problem, read one row per batch
    _reference(store, vault, tmp_path)
    path = tmp_path / "in" / name
    path.parent.mkdir()
    path.write_bytes(content)
    # when it is imported, then the error names the file and what is wrong
    with pytest.raises(ValidationError) as caught:
        _import(store, vault, tmp_path, "orders", path, batch_rows=1)
    assert str(caught.value).startswith(f"file: {problem}")
    # and nothing was applied, not even the good rows before the problem
    assert store.count("orders") == 0 and store.count("import_runs") == 4


@pytest.mark.parametrize("cut", [0.5, 0.98])
def test_a_truncated_parquet_file_is_one_clear_error(
    store: Store, vault: Vault, tmp_path: Path, cut: float
) -> None:
    _reference(store, vault, tmp_path)
    whole = write(tmp_path / "whole" / "orders.parquet", [_order(f"O{i}") for i in range(50)])
    data = whole.read_bytes()
    path = tmp_path / "orders.parquet"
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ValidationError) as caught:
        _import(store, vault, tmp_path, "orders", path)
    assert str(caught.value).startswith("file: orders.parquet: not a readable Parquet file")
    assert store.count("orders") == 0


def test_a_directory_with_one_unreadable_file_applies_nothing(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    write_reference(tmp_path / "d")
    (tmp_path / "d" / "orders.csv").write_bytes(b"")
    with pytest.raises(ValidationError, match=r"orders\.csv: the file is empty"):
        import_directory(store.engine, vault, store.group_id, tmp_path / "d", tmp_path / "r")
    assert store.count("brands") == 0


def test_the_cli_says_what_is_wrong_with_the_file_and_exits_non_zero(tmp_path: Path) -> None:
    (tmp_path / "members.csv").write_bytes("member_ref\nZ\xfcrich\n".encode("latin-1"))
    done = subprocess.run(
        [sys.executable, "-m", "siyu.cli", "import", "members.csv"],
        capture_output=True,
        text=True,
        env={**os.environ, "SIYU_DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}"},
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2
    assert "members.csv: line 2: not UTF-8 text (byte 0xfc)" in done.stderr
    assert "Traceback" not in done.stderr


# --- 15: a changed record is a reject, an identical one is idempotent -----------------


def test_a_conflicting_duplicate_in_one_file_is_rejected_an_identical_one_is_not_new(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    _reference(store, vault, tmp_path)
    path = write(
        tmp_path / "orders.csv",
        [_order("O1"), _order("O1", paid_fen="8000"), _order("O2"), _order("O2")],
    )
    report = _import(store, vault, tmp_path, "orders", path)
    assert (report.read, report.accepted, report.rejected, report.inserted) == (4, 3, 1, 2)
    (row,) = _rejects(report)
    assert row["reject_row"] == "3" and row["paid_fen"] == "8000"
    assert row["reject_reason"] == (
        "order_id: 'O1' is also on line 2 with a different paid_fen; "
        "one record cannot have two versions"
    )


@pytest.mark.parametrize("batch_rows", [1, 100])
def test_a_record_changed_since_it_was_stored_is_rejected(
    store: Store, vault: Vault, tmp_path: Path, batch_rows: int
) -> None:
    # given O1 and a member stored by an earlier import
    _reference(store, vault, tmp_path)
    first = write(tmp_path / "a" / "orders.csv", [_order("O1"), _order("O2")])
    _import(store, vault, tmp_path, "orders", first)
    members = write(tmp_path / "a" / "members.csv", [_member("M1")])
    _import(store, vault, tmp_path, "members", members)
    # when a later file sends O1 unchanged and O2 changed, and the member with a new city
    orders = write(
        tmp_path / "b" / "orders.csv",
        [_order("O1"), _order("O2", buyer_value="C002", total_fen="9901")],
    )
    report = _import(store, vault, tmp_path, "orders", orders, batch_rows)
    members = write(tmp_path / "b" / "members.csv", [_member("M1", city="上海")])
    member_report = _import(store, vault, tmp_path, "members", members)
    # then the unchanged row is accepted and not new; the changed ones say what changed
    assert (report.accepted, report.rejected, report.inserted) == (1, 1, 0)
    assert _rejects(report)[0]["reject_reason"] == (
        "order_id: 'O2' is already stored with a different total_fen, buyer; "
        "a stored order is never changed by an import"
    )
    assert _rejects(member_report)[0]["reject_reason"] == (
        "member_ref: 'M1' is already stored with a different city; "
        "a stored member is never changed by an import"
    )


# --- 16: refunds are bounded by what was paid ------------------------------------------


def test_refunds_never_exceed_what_was_paid_in_one_file_or_across_imports(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    # given O1 paid 9000 fen
    _reference(store, vault, tmp_path)
    _import(store, vault, tmp_path, "orders", write(tmp_path / "a" / "orders.csv", [_order("O1")]))
    # when one file refunds 5000 + 3000 + 2000, once identically twice
    first = write(
        tmp_path / "a" / "refunds.csv",
        [_refund("R1", 5000), _refund("R2", 3000), _refund("R2", 3000), _refund("R3", 2000)],
    )
    report = _import(store, vault, tmp_path, "refunds", first)
    # then the refund that would pass the paid amount is rejected with the sums
    assert (report.accepted, report.rejected, report.inserted) == (3, 1, 2)
    assert _reasons(report, "refund_id") == {
        "R3": "amount_fen: refunds of order 'O1' would total 10000 fen, more than its "
        "paid_fen 9000 (8000 refunded before this one)"
    }
    # and a later file may refund only what is left, while the first file again adds nothing
    later = write(tmp_path / "b" / "refunds.csv", [_refund("R4", 1000), _refund("R5", 1)])
    report = _import(store, vault, tmp_path, "refunds", later, batch_rows=1)
    assert (report.accepted, report.rejected) == (1, 1)
    again = _import(store, vault, tmp_path, "refunds", first)
    assert (again.accepted, again.rejected, again.inserted) == (3, 1, 0)
    assert store.count("refunds") == 3


# --- 17: the rejects file tells the row and can be fixed and imported again -----------


def test_jsonl_rejects_carry_file_lines_and_the_original_object(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    _reference(store, vault, tmp_path)
    lines = [
        json.dumps(_order("O1")),
        "",
        json.dumps(_order("O2", total_fen="12.5")),
        "{not json",
        json.dumps(_order("O3", channel="fax")),
    ]
    path = tmp_path / "orders.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = _import(store, vault, tmp_path, "orders", path)
    assert (report.read, report.accepted, report.rejected) == (4, 1, 3)
    rows = _rejects(report)
    assert [r["reject_row"] for r in rows] == ["3", "4", "5"]
    assert [r["reject_raw"] for r in rows] == [lines[2], lines[3], lines[4]]
    assert rows[0]["total_fen"] == "12.5" and rows[2]["channel"] == "fax"
    assert rows[1]["reject_reason"].startswith("not valid JSON")


def test_csv_rejects_carry_file_lines_counting_the_header_and_multiline_fields(
    store: Store, vault: Vault, tmp_path: Path
) -> None:
    _reference(store, vault, tmp_path)
    path = tmp_path / "refunds.csv"
    path.write_text(
        "refund_id,order_id,refunded_at,amount_fen,reason\n"  # line 1
        'R1,O9,2024-01-09T10:00:00,1,"two\nlines"\n'  # lines 2-3
        "\n"  # line 4
        "R2,O9,2024-01-09T10:00:00\n"  # line 5: too few fields
        "R3,O9,2024-01-09T10:00:00,x,ok\n",  # line 6
        encoding="utf-8",
    )
    report = _import(store, vault, tmp_path, "refunds", path)
    rows = _rejects(report)
    numbered = [(r["reject_row"], r["refund_id"]) for r in rows]
    assert numbered == [("2", "R1"), ("5", "R2"), ("6", "R3")]
    assert rows[0]["reason"] == "two\nlines"  # the refund's own reason column survives
    assert rows[0]["reject_reason"] == "order_id: no such order in this brand group"
    assert rows[1]["reject_reason"] == "row has 3 fields, the header has 5"
    assert rows[1]["reject_raw"] == "R2,O9,2024-01-09T10:00:00"
    assert rows[2]["reject_reason"].startswith("amount_fen: must be an integer")


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_rejected_rows_fixed_in_the_rejects_file_import_again(
    store: Store, vault: Vault, tmp_path: Path, suffix: str
) -> None:
    # given an orders file with three bad rows among good ones
    _reference(store, vault, tmp_path)
    path = write(
        tmp_path / f"orders{suffix}",
        [
            _order("O1"),
            _order("O2", total_fen="99.00"),
            _order("O3", ordered_at="yesterday"),
            _order("O4"),
            _order("O5", channel="fax", reason_code="x"),
        ],
    )
    report = _import(store, vault, tmp_path, "orders", path)
    assert (report.accepted, report.rejected) == (2, 3)
    # when the user fixes the rejected rows in the rejects file and imports that file
    rows = _rejects(report)
    fixes: dict[str, dict[str, Any]] = {
        "O2": {"total_fen": "9900"},
        "O3": {"ordered_at": "2024-01-03T10:00:00"},
        "O5": {"channel": "pos"},
    }
    for row in rows:
        row.update(fixes[row["order_id"]])
    fixed = tmp_path / "fixed" / "orders.csv"
    fixed.parent.mkdir()
    with fixed.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    again = _import(store, vault, tmp_path, "orders", fixed)
    # then every row is in, and the original file now adds nothing
    assert (again.read, again.accepted, again.rejected, again.inserted) == (3, 3, 0, 3)
    assert store.count("orders") == 5
    once_more = _import(store, vault, tmp_path, "orders", path)
    assert once_more.inserted == 0
