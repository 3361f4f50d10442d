"""UCI Online Retail loaded into a real siyu store through the importer, for the report
tests that check siyu against pandas on data nobody here made.

The shape, decided once for every test that uses it:
- a customer (CustomerID) is a member of brand B1 with the card `uci-<CustomerID>`,
  registered at its first invoice; lines with no CustomerID are left out (they name no
  member);
- an invoice (InvoiceNo) is an order at its earliest InvoiceDate (31 invoices straddle a
  minute), bought with that card through the POS of store S1, as UTC;
- a paid invoice's `paid_fen` = `total_fen` = round(sum(Quantity × UnitPrice) × 100) over
  its lines;
- a cancellation ('C' invoice) is an order with status `cancelled` whose amount is the
  absolute value of the same sum: UCI does not say which invoice a cancellation undoes,
  so it cannot be a refund of one (a refund names its order), and every siyu report
  leaves cancelled orders out. No refunds are loaded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import text
from tests.analytics.data import shared_file
from tests.brandfiles import write_reference
from tests.conftest import Store

from siyu.importer.service import import_directory
from siyu.privacy import Vault


@dataclass
class Retail:
    lines: pd.DataFrame  # the parquet's lines with a CustomerID, as read
    invoices: pd.DataFrame  # one row per invoice: customer, ordered_at, cancelled, paid_fen
    customers: pd.DataFrame  # one row per customer: first invoice, its country
    member_of: dict[int, int]  # CustomerID -> siyu member_id
    seconds: float  # the import's wall time


def read_retail() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The lines with a customer, the invoices and the customers, straight from the parquet."""
    raw = pq.read_table(shared_file("online_retail", "online_retail_uci352_full.parquet"))
    lines = raw.to_pandas()
    lines = lines[lines.CustomerID.notna()].copy()
    lines["customer"] = lines.CustomerID.astype("int64")
    lines["amount"] = lines.Quantity * lines.UnitPrice
    invoices = lines.groupby("InvoiceNo").agg(
        customer=("customer", "first"), ordered_at=("InvoiceDate", "min"), amount=("amount", "sum")
    )
    invoices["cancelled"] = invoices.index.str.startswith("C")
    invoices["paid_fen"] = np.round(invoices.amount.abs() * 100).astype("int64")
    first = invoices.sort_values(["ordered_at"], kind="stable").groupby("customer").head(1)
    # the country of the customer's first invoice (8 customers bought from two)
    country = lines.groupby("InvoiceNo").Country.first()
    customers = pd.DataFrame(
        {"first_at": first.ordered_at.to_numpy(), "country": country.loc[first.index].to_numpy()},
        index=pd.Index(first.customer.to_numpy(), name="customer"),
    ).sort_index()
    return lines, invoices, customers


def _text(values: object) -> pa.Array:
    return pa.array([None if v is None else str(v) for v in values], pa.string())  # type: ignore[attr-defined]


def _iso(series: pd.Series) -> list[str]:
    return [t.isoformat() for t in series]


def load_retail(store: Store, vault: Vault, tmp_path: Path) -> Retail:
    """Import every UCI customer and invoice into `store`; the importer's own bulk path."""
    lines, invoices, customers = read_retail()
    directory = tmp_path / "uci"
    write_reference(directory)
    pq.write_table(
        pa.table(
            {
                "member_ref": _text(f"uci-{c}" for c in customers.index),
                "brand_id": _text(["B1"] * len(customers)),
                "registered_at": _text(_iso(customers.first_at)),
                "channel": _text(["pos"] * len(customers)),
                "card": _text(f"uci-{c}" for c in customers.index),
                "home_store_id": _text(["S1"] * len(customers)),
            }
        ),
        directory / "members.parquet",
    )
    pq.write_table(
        pa.table(
            {
                "order_id": _text(invoices.index),
                "brand_id": _text(["B1"] * len(invoices)),
                "channel": _text(["pos"] * len(invoices)),
                "store_id": _text(["S1"] * len(invoices)),
                "buyer_type": _text(["card"] * len(invoices)),
                "buyer_value": _text(f"uci-{c}" for c in invoices.customer),
                "ordered_at": _text(_iso(invoices.ordered_at)),
                "total_fen": _text(invoices.paid_fen),
                "paid_fen": _text(invoices.paid_fen),
                "status": _text(np.where(invoices.cancelled, "cancelled", "paid")),
            }
        ),
        directory / "orders.parquet",
    )
    clock = time.perf_counter()
    reports = import_directory(store.engine, vault, store.group_id, directory, tmp_path / "rej")
    seconds = time.perf_counter() - clock
    for report in reports:
        assert report.rejected == 0, (report.kind, report.rejects_path)
    with store.engine.connect() as conn:
        rows = conn.execute(
            text("""SELECT m.source_ref, m.member_id FROM members m
                    WHERE m.group_id = :g AND m.source_ref LIKE 'uci-%'"""),
            {"g": store.group_id},
        ).all()
    member_of = {int(ref.removeprefix("uci-")): int(m) for ref, m in rows}
    assert len(member_of) == len(customers)
    return Retail(lines, invoices, customers, member_of, seconds)
