"""The generator's second phase (`demo/effect.py`): the treatment's answers as orders in
the file contract, on a generated brand's real files."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from siyu.demo.config import GeneratorConfig
from siyu.demo.effect import SUFFIX, respond
from siyu.demo.generate import generate

SINCE, UNTIL = datetime(2025, 11, 1), datetime(2025, 12, 1)


@pytest.fixture(scope="module")
def brand(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("effect") / "brand"
    generate(out, GeneratorConfig(members=600, seed=7))
    return out


def _templates(brand: Path, n: int) -> list[str]:
    orders = pq.read_table(brand / "orders.parquet")
    paid = orders.filter(pc.equal(orders["status"], "paid"))
    return sorted(paid["order_id"].to_pylist())[:n]


def test_each_answer_buys_its_template_again_in_the_window(brand: Path, tmp_path: Path) -> None:
    templates = _templates(brand, 300)
    got = respond(brand, tmp_path / "a", templates, SINCE, UNTIL, 0.3, seed=1)
    orders = pq.read_table(tmp_path / "a" / "orders.parquet")
    lines = pq.read_table(tmp_path / "a" / "order_lines.parquet")
    # the files are written as the first phase's are, so the importer reads them alike
    for name, table in (("orders", orders), ("order_lines", lines)):
        assert table.schema.equals(pq.read_schema(brand / f"{name}.parquet")), name
    # about the uplift's share answered (300 draws at 0.3: within 5 standard deviations)
    assert got.eligible == 300 and abs(got.orders - 90) < 40 and orders.num_rows == got.orders
    base = {r["order_id"]: r for r in pq.read_table(brand / "orders.parquet").to_pylist()}
    for row in orders.to_pylist():
        template = base[row["order_id"].removesuffix(SUFFIX)]
        # the same buyer account, brand, channel, store and basket price, paid in full
        for column in ("brand_id", "channel", "buyer_type", "buyer_value", "store_id"):
            assert row[column] == template[column], column
        assert row["paid_fen"] == row["total_fen"] == template["total_fen"]
        assert row["status"] == "paid" and row["coupon_code"] is None
        assert SINCE <= row["ordered_at"] < UNTIL and row["paid_at"] == row["ordered_at"]
    assert got.paid_fen == sum(r["paid_fen"] for r in orders.to_pylist())
    # and each answered order carries its template's lines, amounts adding up to its total
    totals: dict[str, int] = {}
    for line in lines.to_pylist():
        totals[line["order_id"]] = totals.get(line["order_id"], 0) + line["amount_fen"]
    base_lines = pq.read_table(brand / "order_lines.parquet")
    for row in orders.to_pylist():
        template_id = row["order_id"].removesuffix(SUFFIX)
        kept = base_lines.filter(pc.equal(base_lines["order_id"], template_id))
        assert totals.get(row["order_id"], 0) == pc.sum(kept["amount_fen"]).as_py()


def test_the_same_inputs_give_the_same_answers(brand: Path, tmp_path: Path) -> None:
    templates = _templates(brand, 200)
    first = respond(brand, tmp_path / "a", templates, SINCE, UNTIL, 0.5, seed=3)
    again = respond(brand, tmp_path / "b", list(reversed(templates)), SINCE, UNTIL, 0.5, seed=3)
    other = respond(brand, tmp_path / "c", templates, SINCE, UNTIL, 0.5, seed=4)
    assert first.answered == again.answered
    assert pq.read_table(tmp_path / "a" / "orders.parquet").equals(
        pq.read_table(tmp_path / "b" / "orders.parquet")
    )
    assert first.answered != other.answered


def test_no_uplift_adds_nothing_and_a_certain_one_brings_everyone_back(
    brand: Path, tmp_path: Path
) -> None:
    templates = _templates(brand, 50)
    assert respond(brand, tmp_path / "none", templates, SINCE, UNTIL, 0.0, seed=1).orders == 0
    assert respond(brand, tmp_path / "all", templates, SINCE, UNTIL, 1.0, seed=1).orders == 50


@pytest.mark.parametrize(
    ("uplift", "since", "until", "field"),
    [
        (1.5, SINCE, UNTIL, "uplift"),
        (-0.1, SINCE, UNTIL, "uplift"),
        (0.1, UNTIL, SINCE, "until"),
        (0.1, SINCE, SINCE, "until"),
    ],
)
def test_bad_arguments_name_their_field_and_write_nothing(
    brand: Path, tmp_path: Path, uplift: float, since: datetime, until: datetime, field: str
) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        respond(brand, tmp_path / "x", _templates(brand, 5), since, until, uplift, seed=1)
    assert not (tmp_path / "x").exists()


def test_an_order_id_not_on_file_is_refused(brand: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^templates: 1 order ids"):
        respond(brand, tmp_path / "x", [*_templates(brand, 3), "PS0"], SINCE, UNTIL, 0.5, seed=1)
    assert not (tmp_path / "x" / "orders.parquet").exists()
