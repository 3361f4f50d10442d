"""The review queue as HQ and the stores read it: receipts by status and store, pending
first (oldest first: the member who waited longest is served first), then the decided,
newest first; counted for paging, and the day's figures (pending now, accepted and
rejected today).

"Today" is the brand's day, China's by default (the rules' `utc_offset_hours` default):
HQ in Shanghai reads "accepted today" from its midnight, not from midnight UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from siyu.receipts import records
from siyu.receipts.records import Receipt
from siyu.store.times import as_stored

DAY_OFFSET_HOURS = 8
_COLUMNS = ", ".join(f"r.{c.strip()}" for c in records.COLUMNS.split(","))
_ORDER = """ORDER BY CASE WHEN r.status = 'pending' THEN 0 ELSE 1 END,
            CASE WHEN r.status = 'pending' THEN r.receipt_id ELSE -r.receipt_id END"""


@dataclass(frozen=True)
class Filter:
    """Which receipts: `status` (None: every status), in `stores` (None: any store; a
    store key's scope, or the one store asked), decided at or after `decided_since`."""

    status: str | None = None
    stores: tuple[str, ...] | None = None
    decided_since: datetime | None = None


@dataclass(frozen=True)
class Row:
    receipt: Receipt
    name_masked: str | None  # the member's name as every list shows it


@dataclass(frozen=True)
class Summary:
    pending: int
    accepted_today: int
    rejected_today: int


def day_start(now: datetime, offset_hours: int = DAY_OFFSET_HOURS) -> datetime:
    """The stored (UTC) time the brand's day holding `now` began."""
    local = as_stored(now) + timedelta(hours=offset_hours)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - timedelta(hours=offset_hours)


def _where(group_id: str, f: Filter) -> tuple[str, dict[str, Any]] | None:
    where = ["r.group_id = :g"]
    params: dict[str, Any] = {"g": group_id}
    if f.status is not None:
        where.append("r.status = :st")
        params["st"] = f.status
    if f.stores is not None:
        if not f.stores:
            return None
        names = [f":s{i}" for i in range(len(f.stores))]
        where.append(f"r.store_id IN ({', '.join(names)})")
        params.update({f"s{i}": s for i, s in enumerate(f.stores)})
    if f.decided_since is not None:
        where.append("r.reviewed_at >= :since")
        params["since"] = as_stored(f.decided_since)
    return " AND ".join(where), params


def count(conn: Connection, group_id: str, f: Filter) -> int:
    found = _where(group_id, f)
    if found is None:
        return 0
    where, params = found
    return int(
        conn.execute(text(f"SELECT COUNT(*) FROM receipts r WHERE {where}"), params).scalar_one()
    )


def page(conn: Connection, group_id: str, f: Filter, limit: int, offset: int = 0) -> list[Row]:
    """Receipts matching `f` in the queue's order, with the member's masked name."""
    found = _where(group_id, f)
    if found is None:
        return []
    where, params = found
    rows = conn.execute(
        text(f"""SELECT {_COLUMNS}, m.name_masked FROM receipts r
                 LEFT JOIN members m ON m.group_id = r.group_id AND m.member_id = r.member_id
                 WHERE {where} {_ORDER} LIMIT :n OFFSET :o"""),
        {**params, "n": limit, "o": offset},
    ).all()
    return [Row(records.from_row(r), r.name_masked) for r in rows]


def summary(
    conn: Connection, group_id: str, stores: tuple[str, ...] | None, since: datetime
) -> Summary:
    """Pending now, and accepted and rejected (by a reviewer or the rule) since `since`."""
    return Summary(
        count(conn, group_id, Filter("pending", stores)),
        count(conn, group_id, Filter("accepted", stores, since)),
        count(conn, group_id, Filter("rejected", stores, since)),
    )
