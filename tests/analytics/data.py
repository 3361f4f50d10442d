"""Data for the analytics tests: shared datasets, generated brands, small hand-made tables."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from tests.conftest import IN_CI, SHARED_DATA

from siyu.demo.config import GeneratorConfig
from siyu.demo.generate import generate


def shared_file(*parts: str) -> Path:
    """A file of ../shared/data; missing fails under CI=true and skips elsewhere."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.is_file():
        message = f"shared dataset {path} is missing (see shared/data/README.md)"
        if IN_CI:
            pytest.fail(f"CI=true requires it: {message}")
        pytest.skip(message)
    return path


def generated_orders(out: Path, config: GeneratorConfig) -> tuple[pa.Table, dict[str, Any]]:
    """Generate a brand and return its orders with the true person as member_id (what a
    perfect OneID would give), plus truth.json."""
    generate(out, config)
    truth = json.loads((out / "truth" / "truth.json").read_text(encoding="utf-8"))
    orders = (
        duckdb.connect()
        .sql(f"""
            select o.order_id, t.person_id::varchar as member_id, o.ordered_at,
                   o.paid_fen as amount_fen, o.status, o.brand_id, o.channel
            from read_parquet('{out}/orders.parquet') o
            join read_parquet('{out}/truth/identity_truth.parquet') t
              on t.type = o.buyer_type and t.value = o.buyer_value
             and (t.type <> 'card' or t.brand_id = o.brand_id)  -- card numbers repeat by brand
            order by o.order_id""")
        .to_arrow_table()
    )
    return orders, truth


def orders_table(rows: list[tuple[str, str, str, int]], **extra: list[Any]) -> pa.Table:
    """A small orders table from (order_id, member_id, ordered_at ISO, amount_fen) rows."""
    return pa.table(
        {
            "order_id": [r[0] for r in rows],
            "member_id": [r[1] for r in rows],
            "ordered_at": pa.array(
                [datetime.fromisoformat(r[2]) for r in rows], pa.timestamp("us")
            ),
            "amount_fen": pa.array([r[3] for r in rows], pa.int64()),
            **extra,
        }
    )
