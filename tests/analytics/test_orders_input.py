"""Orders files are checked before any engine runs: each error names the column, the rule
and the row; good spellings of time are all read as UTC."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest

from siyu.analytics.orders import parse_as_of, read_orders
from siyu.errors import ValidationError

HEADER = "order_id,member_id,ordered_at,amount_fen"


def csv(tmp_path: Path, *lines: str, header: str = HEADER) -> Path:
    path = tmp_path / "orders.csv"
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def test_times_with_offsets_dates_and_spaces_are_read_as_utc(tmp_path: Path) -> None:
    # given one order per spelling of a time
    path = csv(
        tmp_path,
        "o1,m1,2025-03-01T10:15:00,100",
        "o2,m1,2025-03-01T10:15:00Z,100",
        "o3,m1,2025-03-01T18:15:00+08:00,100",
        "o4,m1,2025-03-01 10:15:00,100",
        "o5,m1,2025-03-01,100",
    )
    # when read
    orders = read_orders(path)
    # then all are naive UTC, the offset converted, a bare date at midnight
    assert orders["ordered_at"].type == pa.timestamp("us")
    assert orders["ordered_at"].to_pylist() == [datetime(2025, 3, 1, 10, 15)] * 4 + [
        datetime(2025, 3, 1)
    ]
    assert orders["amount_fen"].type == pa.int64()


def test_cancelled_orders_are_not_purchases(tmp_path: Path) -> None:
    path = csv(
        tmp_path,
        "o1,m1,2025-03-01,100,paid",
        "o2,m1,2025-03-02,100,cancelled",
        "o3,m1,2025-03-03,100,refunded",
        header=HEADER + ",status",
    )
    assert read_orders(path)["order_id"].to_pylist() == ["o1", "o3"]


@pytest.mark.parametrize(
    ("header", "line", "message"),
    [
        ("order_id,ordered_at,amount_fen", "o1,2025-03-01,100", "member_id: column is missing"),
        (HEADER, "o1,m1,yesterday,100", "ordered_at: must be an ISO-8601 timestamp; row 2"),
        (HEADER, "o1,m1,2025-03-01,-5", "amount_fen: must be >= 0; row 2 has -5"),
        (HEADER, "o1,m1,2025-03-01,12.50", "amount_fen: must be integer fen (1/100 CNY); row 2"),
        (HEADER, "o1,,2025-03-01,100", "member_id: must not be empty; row 2"),
    ],
)
def test_bad_rows_are_named_by_column_rule_and_row(
    tmp_path: Path, header: str, line: str, message: str
) -> None:
    # given a good first row and a bad second one
    path = csv(
        tmp_path,
        "o0,m0,2025-03-01,100" if "member_id" in header else "o0,2025-03-01,1",
        line,
        header=header,
    )
    # when read, then the error says which column, which rule, which row
    with pytest.raises(ValidationError) as err:
        read_orders(path)
    assert str(err.value).startswith(message), str(err.value)


def test_money_as_floats_is_refused_even_when_whole() -> None:
    table = pa.table(
        {
            "order_id": ["o1"],
            "member_id": ["m1"],
            "ordered_at": [datetime(2025, 3, 1)],
            "amount_fen": [100.0],
        }
    )
    with pytest.raises(ValidationError, match=r"^amount_fen: must be integer fen"):
        read_orders(table)


def test_files_must_exist_and_be_csv_or_parquet(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"^orders: no such file"):
        read_orders(tmp_path / "nope.csv")
    (tmp_path / "orders.xlsx").write_bytes(b"")
    with pytest.raises(ValidationError, match=r"^orders: must be a \.csv or \.parquet file"):
        read_orders(tmp_path / "orders.xlsx")


def test_as_of_dates_mean_the_end_of_that_day() -> None:
    assert parse_as_of("2024-06-30") == datetime(2024, 6, 30, 23, 59, 59, 999_999)
    assert parse_as_of("2024-06-30T08:00:00+08:00") == datetime(2024, 6, 30, 0, 0)
    with pytest.raises(ValidationError, match=r"^as_of: must be an ISO-8601"):
        parse_as_of("last week")


def test_analytics_import_and_run_without_pyspark(tmp_path: Path) -> None:
    # given a Python where `import pyspark` fails, as without the spark extra
    script = textwrap.dedent(f"""
        import sys

        class NoSpark:
            def find_spec(self, name, path=None, target=None):
                if name == "pyspark" or name.startswith("pyspark."):
                    raise ImportError("no pyspark here")
                return None

        sys.meta_path.insert(0, NoSpark())
        import siyu, siyu.analytics, siyu.cli
        from siyu.analytics.service import retention_report
        from siyu.analytics.engines import connect
        from siyu.errors import ConfigError
        from pathlib import Path
        from datetime import datetime

        path = Path({str(tmp_path / "o.csv")!r})
        path.write_text("{HEADER}\\no1,m1,2025-01-01,1\\no2,m1,2025-01-05,1\\n")
        report = retention_report(path, window_days=7, max_k=2, as_of=datetime(2025, 2, 1))
        assert report.payload["rows"][0]["retained"] == 1, report.payload
        try:
            connect("spark")
        except ConfigError as exc:
            assert "pip install 'siyu[spark]'" in str(exc), exc
        else:
            raise AssertionError("spark connected without pyspark")
        assert "pyspark" not in sys.modules
        print("ok")
    """)
    # when siyu's analytics are imported and run on DuckDB
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    # then they work, and asking for Spark says how to get it
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
