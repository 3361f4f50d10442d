"""`siyu analyze`: machine-readable results from files alone, clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pytest
from tests.analytics.data import generated_orders, shared_file
from typer.testing import CliRunner

from siyu.cli import app
from siyu.demo.config import GeneratorConfig

runner = CliRunner()


@pytest.fixture(scope="module")
def brand_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated brand (knee 4) as the orders CSV people would hand to the command."""
    out = tmp_path_factory.mktemp("cli-brand")
    orders, _ = generated_orders(out, GeneratorConfig(members=4_000, knee=4))
    path = out / "orders.csv"
    pacsv.write_csv(orders, path)
    return path


def analyze(*args: str) -> Any:
    result = runner.invoke(app, ["analyze", *args], env={"COLUMNS": "120"})
    return result


def payload(*args: str) -> dict[str, Any]:
    result = analyze(*args, "--json")
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, "--json prints one line and nothing else"
    parsed: dict[str, Any] = json.loads(lines[0])
    return parsed


def test_retention_json_has_the_curve_and_the_knee(brand_csv: Path) -> None:
    # when retention is asked for with the generator's recommended window
    got = payload("retention", "--orders", str(brand_csv), "--window-days", "120", "--max-k", "8")
    # then the contract's keys are there for k = 1..8, and the knee is the generator's
    assert got["window_days"] == 120 and got["knee"] == 4
    assert [r["k"] for r in got["rows"]] == list(range(1, 9))
    for row in got["rows"]:
        assert {"k", "eligible", "retained", "rate", "ci_low", "ci_high"} <= row.keys()
        assert row["rate"] == pytest.approx(row["retained"] / row["eligible"], abs=1e-6)
    assert got["knee_evidence"]["method"] == "jump"


def test_retention_breakdowns_and_as_of(brand_csv: Path) -> None:
    # when broken down by first-order brand, as of the end of 2025-06
    args = ("--orders", str(brand_csv), "--window-days", "120", "--as-of", "2025-06-30")
    got = payload("retention", *args, "--by", "brand_id", "--max-k", "4")
    # then each brand has its rows and knee, adding up to the whole
    assert got["as_of"] == "2025-06-30T23:59:59.999999"
    assert {g["brand_id"] for g in got["groups"]} == {"B01", "B02", "B03"}
    assert {g["brand_id"] for g in got["group_knees"]} == {"B01", "B02", "B03"}
    for k in range(1, 5):
        parts = [g["eligible"] for g in got["groups"] if g["k"] == k]
        assert sum(parts) == got["rows"][k - 1]["eligible"]


def test_retention_for_people_is_a_table_and_a_curve(brand_csv: Path) -> None:
    result = analyze("retention", "--orders", str(brand_csv), "--window-days", "120")
    assert result.exit_code == 0, result.output
    assert "Retention by order count" in result.stdout
    assert "knee at k = 4" in result.stdout
    assert any(block in result.stdout for block in "▁▂▃▄▅▆▇█")


def test_rfm_json_accounts_for_every_member(brand_csv: Path, tmp_path: Path) -> None:
    # when RFM runs and writes every member's scores
    out = tmp_path / "rfm.csv"
    got = payload("rfm", "--orders", str(brand_csv), "--out", str(out))
    # then the segments account for every member, money in integer fen
    assert sum(s["members"] for s in got["segments"]) == got["members"] > 3_000
    assert {s["segment"] for s in got["segments"]} <= {
        "vip",
        "regular",
        "develop",
        "win_back",
        "dormant",
    }
    assert got["layering"] == "auto"
    assert all(isinstance(s["monetary_fen"], int) for s in got["segments"])
    assert [row["score"] for row in got["layers"]["recency_days"]] == [1, 2, 3, 4, 5]
    members = pacsv.read_csv(out)
    assert members.num_rows == got["members"]
    assert {"member_id", "r", "f", "m", "segment", "monetary_fen"} <= set(members.column_names)
    # and the table for people shows yuan from integer fen
    result = analyze("rfm", "--orders", str(brand_csv), "--layering", "threshold")
    assert result.exit_code == 0, result.output
    assert "RFM segments (threshold layers" in result.stdout


def test_clv_json_from_the_cdnow_summary(tmp_path: Path) -> None:
    # given the published CDNOW summaries, without and with average spend
    plain = shared_file("cdnow", "cdnow_customers_summary.csv")
    spend = shared_file("cdnow", "cdnow_customers_summary_with_transactions.csv")
    # when CLV is fitted from each
    got = payload("clv", "--summary", str(plain))
    both = payload("clv", "--summary", str(spend))
    # then BG/NBD is the published fit, and Gamma-Gamma appears only with spend
    assert got["bgnbd"]["r"] == pytest.approx(0.243, rel=0.005)
    assert got["bgnbd"]["b"] == pytest.approx(2.426, rel=0.005)
    assert got["bgnbd"]["log_likelihood"] == pytest.approx(-9582.4, abs=0.1)
    assert "gamma_gamma" not in got
    assert both["bgnbd"]["r"] == pytest.approx(got["bgnbd"]["r"], rel=1e-6)
    assert both["gamma_gamma"]["p"] == pytest.approx(6.25, rel=0.01)


def test_clv_from_orders_writes_members(brand_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "clv.csv"
    got = payload("clv", "--orders", str(brand_csv), "--horizon", "26", "--out", str(out))
    assert got["period_days"] == 7 and got["horizon_periods"] == 26
    assert isinstance(got["clv_fen"], int) and got["clv_fen"] > 0
    assert pacsv.read_csv(out).num_rows == got["members"]
    result = analyze("clv", "--orders", str(brand_csv))
    assert result.exit_code == 0 and "CLV over that horizon" in result.stdout


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("order_id,ordered_at,amount_fen\no1,2025-01-01,1\n", (), "member_id: column is missing"),
        (
            "order_id,member_id,ordered_at,amount_fen\no1,m1,01/02/2025,1\n",
            (),
            "ordered_at: must be an ISO-8601 timestamp; row 1 has '01/02/2025'",
        ),
        (
            "order_id,member_id,ordered_at,amount_fen\no1,m1,2025-01-01,1\no2,m1,2025-01-02,-5\n",
            (),
            "amount_fen: must be >= 0; row 2 has -5",
        ),
        ("order_id,member_id,ordered_at,amount_fen\n", (), "orders: has no rows to analyse"),
        (
            "order_id,member_id,ordered_at,amount_fen\no1,m1,2025-01-01,1\n",
            ("--as-of", "soon"),
            "as_of: must be an ISO-8601 date or timestamp",
        ),
        (
            "order_id,member_id,ordered_at,amount_fen\no1,m1,2025-01-01,1\n",
            ("--engine", "oracle"),
            "engine: must be duckdb or spark",
        ),
    ],
)
@pytest.mark.parametrize("command", ["retention", "rfm"])
def test_bad_input_is_a_clear_error_not_a_traceback(
    tmp_path: Path, content: str, args: tuple[str, ...], message: str, command: str
) -> None:
    # given an orders file with one mistake
    path = tmp_path / "orders.csv"
    path.write_text(content, encoding="utf-8")
    extra = ("--window-days", "30") if command == "retention" else ()
    # when analysed
    result = analyze(command, "--orders", str(path), *extra, *args, "--json")
    # then the exit code is 2, stderr names the column and the rule, and stdout is empty
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split()), result.stderr
    assert result.stdout == "" and isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--window-days", "0"), "window_days: must be >= 1 day"),
        (("--window-days", "30", "--by", "shoe_size"), "by: column 'shoe_size' is not in"),
        (("--window-days", "30", "--knee-method", "elbow"), "knee-method: must be jump or"),
    ],
)
def test_bad_retention_options_name_the_option(
    brand_csv: Path, args: tuple[str, ...], message: str
) -> None:
    result = analyze("retention", "--orders", str(brand_csv), *args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())


def test_clv_needs_exactly_one_input(tmp_path: Path) -> None:
    result = analyze("clv", "--json")
    assert result.exit_code == 2 and "give exactly one of --summary and --orders" in result.stderr
    bad = tmp_path / "s.csv"
    bad.write_text("ID,freq,T\n1,2,3\n", encoding="utf-8")
    result = analyze("clv", "--summary", str(bad))
    assert result.exit_code == 2 and "frequency: column is missing" in result.stderr


@pytest.mark.spark
def test_spark_engine_gives_the_same_json(spark: object, brand_csv: Path) -> None:
    # given the test session's Spark running in this process
    args = ("retention", "--orders", str(brand_csv), "--window-days", "120", "--max-k", "6")
    # when the same command runs on DuckDB and on Spark
    duck = payload(*args)
    on_spark = payload(*args, "--engine", "spark")
    # then only the engine's name differs, and Spark's session is left running for others
    assert on_spark.pop("engine") == "spark" and duck.pop("engine") == "duckdb"
    assert on_spark == duck
    assert spark.getActiveSession() is not None  # type: ignore[attr-defined]
