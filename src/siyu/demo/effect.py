"""The generator's second phase: how treated members answer an experiment's treatment.

The first phase (`generate`) writes a brand's whole history knowing nothing of any
experiment, so every order in it is what the members would have done untreated. An
experiment is then assigned at some time T (`demo/experiment.py`), and this phase writes
the treatment's true effect as more orders, in the file contract, for the importer:

- it acts on the treated members who made no order in the window [T, until): the members
  the treatment is meant to bring back (a member who bought anyway is not moved);
- each of them answers with probability `uplift`, drawn from the seed alone, with one
  order at a uniform time in the window;
- the order is the member's latest order before T bought again: the same brand, channel,
  buyer account, store, basket and price, paid and never refunded, so the importer finds
  the buyer's identity and OneID its member, as it would for any repeat purchase.

Because the untreated history is already on file, the true effect on the treated is known
exactly, not in expectation: `Response` counts the answers and the revenue they added.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from siyu.demo.writer import SCHEMAS, file_name

SUFFIX = "-R"  # a response order's id: its template's id and this, unique in the group


@dataclass(frozen=True)
class Response:
    """What the treatment did: the members who answered and what they paid."""

    out_dir: Path
    eligible: int  # treated members without an order in the window
    answered: list[str]  # the template order id of each member who answered
    orders: int
    paid_fen: int


def respond(
    base_dir: Path,
    out_dir: Path,
    templates: list[str],
    since: datetime,
    until: datetime,
    uplift: float,
    seed: int,
) -> Response:
    """Write `orders.parquet` and `order_lines.parquet` into `out_dir`: one order for each
    template (a treated member's latest order before `since`) whose member answers.

    `templates` lists one order id per eligible member; `uplift` is the probability that
    one answers. The same inputs give the same files."""
    if not 0.0 <= uplift <= 1.0:
        raise ValueError(f"uplift: must be a probability in 0..1, got {uplift}")
    if until <= since:
        raise ValueError(f"until: must be after since ({since:%Y-%m-%d}), got {until:%Y-%m-%d}")
    ids = pa.array(sorted(set(templates)), type=pa.string())
    orders = pq.read_table(base_dir / file_name("orders"))
    orders = orders.filter(pc.is_in(orders["order_id"], value_set=ids)).sort_by("order_id")
    if orders.num_rows != len(ids):
        missing = set(ids.to_pylist()) - set(orders["order_id"].to_pylist())
        raise ValueError(f"templates: {len(missing)} order ids are not in {base_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    # one draw per template, in id order, from the seed alone: the same members answer
    # whatever else the run did
    rng = np.random.default_rng([seed, 0x5EED_EFEC])
    draws = rng.random(orders.num_rows)
    span = int((until - since).total_seconds())
    offsets = rng.integers(0, span, size=orders.num_rows)
    chosen = np.flatnonzero(draws < uplift)
    answered = orders.take(pa.array(chosen, type=pa.int64()))
    at = pa.array(
        [since + timedelta(seconds=int(s)) for s in offsets[chosen]], type=pa.timestamp("s")
    )
    new_ids = pc.binary_join_element_wise(answered["order_id"], SUFFIX, "")
    out = {
        "order_id": new_ids,
        "brand_id": answered["brand_id"],
        "channel": answered["channel"],
        "buyer_type": answered["buyer_type"],
        "buyer_value": answered["buyer_value"],
        "buyer_scope": answered["buyer_scope"],
        "ordered_at": at,
        "total_fen": answered["total_fen"],
        "paid_fen": answered["total_fen"],  # bought again at full price, nothing off
        "discount_fen": pa.array(np.zeros(len(chosen), dtype=np.int64)),
        "status": pa.array(["paid"] * len(chosen), type=pa.string()),
        "paid_at": at,
        "store_id": answered["store_id"],
        "guide_id": answered["guide_id"],
        "coupon_code": pa.nulls(len(chosen), pa.string()),
    }
    pq.write_table(
        pa.table(out, schema=SCHEMAS["orders"]), out_dir / file_name("orders"), compression="zstd"
    )
    _write_lines(base_dir, out_dir, answered["order_id"])
    return Response(
        out_dir=out_dir,
        eligible=orders.num_rows,
        answered=answered["order_id"].to_pylist(),
        orders=len(chosen),
        paid_fen=int(pc.sum(answered["total_fen"]).as_py() or 0),
    )


def _write_lines(base_dir: Path, out_dir: Path, templates: pa.Array) -> None:
    """The answered orders' baskets: each template's lines under the new order's id."""
    lines = pq.read_table(base_dir / file_name("order_lines"))
    lines = lines.filter(pc.is_in(lines["order_id"], value_set=templates))
    lines = lines.set_column(
        lines.schema.get_field_index("order_id"),
        "order_id",
        pc.binary_join_element_wise(lines["order_id"], SUFFIX, ""),
    )
    pq.write_table(
        lines.cast(SCHEMAS["order_lines"]), out_dir / file_name("order_lines"), compression="zstd"
    )
