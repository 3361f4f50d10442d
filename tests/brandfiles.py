"""Small hand-made import files with known answers, shared by several test modules."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REFERENCE = {
    "brands": [{"brand_id": "B1", "name": "山海鲜果"}, {"brand_id": "B2", "name": "山海烘焙"}],
    "stores": [
        {"store_id": "S1", "brand_id": "B1", "name": "南京路店", "city": "上海", "region": "华东"},
        {"store_id": "S2", "brand_id": "B2", "name": "天河店", "city": "广州", "region": "华南"},
    ],
    "products": [
        {
            "sku": "K1",
            "brand_id": "B1",
            "name": "榴莲",
            "category": "水果",
            "list_price_fen": "9900",
        },
        {
            "sku": "K2",
            "brand_id": "B2",
            "name": "吐司",
            "category": "面包",
            "list_price_fen": "1200",
        },
    ],
    "guides": [{"guide_id": "G1", "store_id": "S1", "alias": "小王"}],
}


def write(path: Path, rows: Sequence[dict[str, str | None]]) -> Path:
    """Write rows as CSV, JSONL or Parquet (all text columns), by the file's extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    if path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    else:
        table = pa.table({c: pa.array([r.get(c) for r in rows], pa.string()) for c in columns})
        pq.write_table(table, path)
    return path


def write_reference(directory: Path, suffix: str = ".csv") -> None:
    for kind, rows in REFERENCE.items():
        write(directory / f"{kind}{suffix}", rows)
