"""The coupon events: written by every change of a coupon, and looked up by key.

An event's `idempotency_key` is unique in its brand group: looking it up answers a retry,
and inserting it a second time fails, so a request whose key another took meanwhile is
rolled back whole.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, DateTime, bindparam, text

from siyu.coupons.models import coupon_events
from siyu.store.dialect import dialect_of

_BY_KEY = text("""SELECT e.idempotency_key, e.request_sha256, e.coupon_id, e.member_id,
                         e.order_id, e.off_fen, e.at, e.kind, c.code, c.template_code
                  FROM coupon_events e JOIN coupons c ON c.coupon_id = e.coupon_id
                  WHERE e.group_id = :g AND e.idempotency_key IN :ks""").bindparams(
    bindparam("ks", expanding=True)
)


def by_key(conn: Connection, group_id: str, keys: Sequence[str]) -> dict[str, Any]:
    """The events holding any of `keys`, by key."""
    if not keys:
        return {}
    rows = conn.execute(_BY_KEY, {"g": group_id, "ks": sorted(set(keys))}).all()
    return {r.idempotency_key: r for r in rows}


def event(
    coupon: Any,
    kind: str,
    key: str,
    digest: str,
    at: Any,
    face_value_fen: int,
    cost_fen: int,
    **fields: Any,
) -> dict[str, Any]:
    """The row of one event of `coupon` (a coupons row); `fields`: order_id, store_id,
    channel, off_fen, reference, key_id."""
    return {
        "group_id": coupon.group_id,
        "idempotency_key": key,
        "request_sha256": digest,
        "coupon_id": coupon.coupon_id,
        "member_id": coupon.member_id,
        "template_code": coupon.template_code,
        "campaign": coupon.campaign,
        "kind": kind,
        "order_id": fields.get("order_id"),
        "store_id": fields.get("store_id"),
        "channel": fields.get("channel"),
        "off_fen": fields.get("off_fen", 0),
        "face_value_fen": face_value_fen,
        "cost_fen": cost_fen,
        "reference": fields.get("reference"),
        "key_id": fields.get("key_id"),
        "at": at,
    }


_COLUMNS = {
    "group_id": "VARCHAR",
    "idempotency_key": "VARCHAR",
    "request_sha256": "VARCHAR",
    "coupon_id": "BIGINT",
    "member_id": "BIGINT",
    "template_code": "VARCHAR",
    "campaign": "VARCHAR",
    "kind": "VARCHAR",
    "order_id": "VARCHAR",
    "store_id": "VARCHAR",
    "channel": "VARCHAR",
    "off_fen": "BIGINT",
    "face_value_fen": "BIGINT",
    "cost_fen": "BIGINT",
    "reference": "VARCHAR",
    "key_id": "BIGINT",
}


def write(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Append `rows` (from `event`): on PostgreSQL one INSERT over a JSON recordset (one
    round trip for a batch of redemptions), else one executemany."""
    if not rows:
        return
    if not dialect_of(conn).one_statement_per_batch or len({r["at"] for r in rows}) != 1:
        conn.execute(coupon_events.insert(), list(rows))
        return
    names = ", ".join(_COLUMNS)
    spec = ", ".join(f"{name} {kind}" for name, kind in _COLUMNS.items())
    conn.execute(
        text(f"""INSERT INTO coupon_events ({names}, at)
                 SELECT {names}, :at
                 FROM json_to_recordset(CAST(:rows AS json)) AS r({spec})""").bindparams(
            bindparam("at", type_=DateTime())
        ),
        {
            "at": rows[0]["at"],
            "rows": json.dumps([{k: r[k] for k in _COLUMNS} for r in rows]),
        },
    )
