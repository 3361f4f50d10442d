"""What a guide's own pages and a store manager's guide pages read (issue #19, "Faces"):
a month's commission statement with each line's status (frozen until its release date,
released, clawed back, paid), a guide's current class with its metrics, playbook and the
training meant for it, and a store's guides with the month's figures.

Every function takes the guide or the stores the caller may see; the pages decide who
that is (a guide key: itself; a store key: its stores' guides). Reads are set-based: one
statement query per store, one metrics query, one bindings count."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, DateTime, bindparam, text

from siyu.errors import ValidationError
from siyu.guides.classes import GuideClass, classes
from siyu.guides.commission_statements import Totals, month_range, statement
from siyu.guides.metrics import guide_metrics
from siyu.guides.models import (
    CM_ACCRUE,
    CM_CLAWBACK,
    CM_FROZEN,
    CM_PAID,
    CM_PAY,
    CM_PAYABLE,
    CM_RELEASE,
)
from siyu.guides.tasks import to_second
from siyu.guides.training import ItemProgress, training_progress
from siyu.store.times import stored_now

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def parse_month(value: str | None) -> str:
    """A month asked for in a URL (YYYY-MM, years 2000..2999), else this month (UTC)."""
    if not value:
        return f"{stored_now():%Y-%m}"
    found = _MONTH.match(value)
    if found is None or not 2000 <= int(found.group(1)) <= 2999:
        raise ValidationError("month", "a month as YYYY-MM, years 2000 to 2999")
    month_range(value)  # the month itself (01..12)
    return value


def shift_month(month: str, by: int) -> str:
    year, number = int(month[:4]), int(month[5:7]) - 1 + by
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


# --- a statement as a guide or its store manager reads it --------------------------------

# A line's status: an accrual frozen until its release date or released since, the
# release itself (now payable), a clawback, a payment.
FROZEN, RELEASED, PAYABLE, CLAWED_BACK, PAID = "frozen", "released", "payable", "clawed", "paid"
LINE_STATUSES = (FROZEN, RELEASED, PAYABLE, CLAWED_BACK, PAID)


@dataclass(frozen=True)
class ShownLine:
    posting_id: int
    order_id: str | None  # None: a payment (its reference names the month, not an order)
    at: datetime
    amount_fen: int  # what the line moved: accrued (+), clawed back (-), released, paid
    status: str  # LINE_STATUSES
    freeze_until: datetime | None  # an accrual's release date
    store_id: str | None
    released_at: datetime | None = None  # an accrual's release, once posted
    orders: int = 0  # a release: the orders it released (one posting per guide and run)


@dataclass
class StatementView:
    month: str
    totals: Totals
    lines: list[ShownLine]
    # the frozen balance at the month's end comes out of its freeze between these dates
    release_from: datetime | None = None
    release_until: datetime | None = None
    closing: dict[str, int] = field(default_factory=dict)

    @property
    def frozen_fen(self) -> int:
        return self.closing.get(CM_FROZEN, 0)

    @property
    def payable_fen(self) -> int:
        return self.closing.get(CM_PAYABLE, 0)

    @property
    def paid_total_fen(self) -> int:
        return self.closing.get(CM_PAID, 0)


# An accrual's release: its commission_releases row (an order is released once), dated
# by the release posting it belongs to (one per guide and run), else, for a zero release
# that has no posting, at its freeze's end.
_FREEZES = text("""SELECT a.order_id, a.freeze_until,
    COALESCE(p.business_at, r.freeze_until) AS released_at
  FROM commission_accruals a
  LEFT JOIN commission_releases r ON r.group_id = a.group_id AND r.order_id = a.order_id
  LEFT JOIN ledger_postings p ON p.posting_id = r.posting_id
  WHERE a.group_id = :g AND a.guide_id = :gd AND a.order_id IN :ids""").bindparams(
    bindparam("ids", expanding=True)
)
# The accruals frozen at the month's end: accrued before it, and not released by then
# (their release posting, dated at its run's latest freeze end, is after it, or none yet).
# Found through the guide's accrual postings (the ledger's index by holder), then their
# rows by posting: the accruals table keeps no index by guide (migration 0035).
_STILL_FROZEN = f"""SELECT MIN(a.freeze_until) AS first, MAX(a.freeze_until) AS last
  FROM guide_accounts ga
  JOIN ledger_postings p ON p.group_id = ga.group_id AND p.member_id = -ga.account_no
    AND p.kind = '{CM_ACCRUE}'
  JOIN commission_accruals a ON a.posting_id = p.posting_id AND a.group_id = ga.group_id
  WHERE ga.group_id = :g AND ga.guide_id = :gd AND a.accrued_at < :e {{store}}
    AND NOT EXISTS (SELECT 1 FROM commission_releases r
      LEFT JOIN ledger_postings rp ON rp.posting_id = r.posting_id
      WHERE r.group_id = a.group_id AND r.order_id = a.order_id
        AND COALESCE(rp.business_at, r.freeze_until) < :e)"""


def statement_view(
    conn: Connection, group_id: str, guide_id: str, month: str, store_id: str | None = None
) -> StatementView:
    """The guide's statement of `month` (with `store_id`: its postings made at that store,
    as the store's statement counts them), each line with its status."""
    found = statement(conn, group_id, month, guide_id=guide_id, store_id=store_id)
    orders = sorted({x.reference for x in found.lines if x.kind == CM_ACCRUE and x.reference})
    freezes: dict[str, tuple[datetime, datetime | None]] = {}
    if orders:
        for r in conn.execute(_FREEZES, {"g": group_id, "gd": guide_id, "ids": orders}):
            released = None if r.released_at is None else to_second(r.released_at)
            freezes[str(r.order_id)] = (to_second(r.freeze_until), released)
    lines = [_shown(x, freezes) for x in found.lines]
    _, end = month_range(month)
    query = text(_STILL_FROZEN.format(store="AND a.store_id = :s" if store_id else ""))
    window = conn.execute(
        query.bindparams(bindparam("e", type_=DateTime)),
        {"g": group_id, "gd": guide_id, "e": end, "s": store_id},
    ).one()
    view = StatementView(month, found.totals, lines, closing=dict(found.totals.closing))
    if view.frozen_fen > 0 and window.first is not None:
        view.release_from, view.release_until = to_second(window.first), to_second(window.last)
    return view


def _shown(line: Any, freezes: dict[str, tuple[datetime, datetime | None]]) -> ShownLine:
    freeze_until = released = None
    if line.kind == CM_ACCRUE:
        freeze_until, released = freezes.get(line.reference, (None, None))
        status = RELEASED if released is not None else FROZEN
        amount = line.commission_fen
    elif line.kind == CM_RELEASE:
        status, amount = PAYABLE, line.payable_fen
    elif line.kind == CM_CLAWBACK:
        status, amount = CLAWED_BACK, line.commission_fen
    elif line.kind == CM_PAY:
        status, amount = PAID, line.paid_fen
    else:  # no other kind is posted to a guide's accounts
        raise ValueError(f"unknown commission posting kind {line.kind!r}")
    order = None if line.kind == CM_PAY else line.reference
    return ShownLine(
        line.posting_id,
        order,
        line.business_at,
        amount,
        status,
        freeze_until,
        line.store_id,
        released,
        line.orders if line.kind == CM_RELEASE else 0,
    )


# --- a guide's class and training --------------------------------------------------------


@dataclass
class ClassView:
    current: GuideClass | None  # None: never classed yet
    training: list[ItemProgress]


_TASK_CODES = text(
    "SELECT DISTINCT campaign_code FROM guide_tasks WHERE group_id = :g AND guide_id = :gd "
    "AND campaign_code IS NOT NULL"
)


def class_view(conn: Connection, group_id: str, guide_id: str) -> ClassView:
    """The guide's current class (its latest period) with the metrics and playbook it was
    decided on, and the training items for it: an item's class (if it names one) is the
    guide's, and its task code (if it names one) one the guide was given."""
    found = classes(conn, group_id, guide_id=guide_id)
    current = found[0] if found else None
    tasks = {str(r[0]) for r in conn.execute(_TASK_CODES, {"g": group_id, "gd": guide_id})}
    mine = current.guide_class if current is not None else None

    def for_me(item: ItemProgress) -> bool:  # the audience `guides.training` counts it over
        return (item.for_class is None or item.for_class == mine) and (
            item.for_task is None or item.for_task in tasks
        )

    items = [i for i in training_progress(conn, group_id, guide_id) if for_me(i)]
    return ClassView(current, items)


# --- a store's guides --------------------------------------------------------------------


@dataclass(frozen=True)
class GuideRow:
    guide_id: str
    alias: str
    store_id: str
    guide_class: str | None
    orders: int
    sales_fen: int
    task_completion_bp: int | None
    commission_fen: int
    payable_fen: int
    members_bound: int


_STORE_GUIDES = text(
    "SELECT guide_id, store_id, alias FROM guides WHERE group_id = :g AND store_id IN :stores "
    "ORDER BY store_id, guide_id"
).bindparams(bindparam("stores", expanding=True))
# Live bindings of the store's guides whose member the store key sees (its home store is
# one of the key's): the count the member list behind it shows.
_BOUND = """SELECT b.guide_id, b.member_id FROM guide_bindings b
  JOIN members m ON m.group_id = b.group_id AND m.member_id = b.member_id
  WHERE b.group_id = :g AND b.ended_at IS NULL AND m.home_store_id IN :stores {guide}"""


def store_guides(
    conn: Connection, group_id: str, stores: tuple[str, ...], month: str
) -> list[GuideRow]:
    """The guides of `stores` with the month's sales and task completion (guides.metrics),
    current class, commission earned and payable at its end at these stores, and members
    bound to them now."""
    if not stores:
        return []
    found = conn.execute(_STORE_GUIDES, {"g": group_id, "stores": list(stores)}).all()
    if not found:
        return []
    start, end = month_range(month)
    at = min(end, stored_now())
    metrics = {m.guide_id: m for m in guide_metrics(conn, group_id, start, end, at, stores=stores)}
    current = {c.guide_id: c.guide_class for c in classes(conn, group_id, stores=stores)}
    money: dict[str, Totals] = {}
    for store in stores:  # one statement per store: its guides' postings made there
        money.update(statement(conn, group_id, month, store_id=store, with_lines=False).by_guide)
    bound: dict[str, int] = {}
    for guide, _ in bound_members(conn, group_id, stores):
        bound[guide] = bound.get(guide, 0) + 1
    rows = []
    for r in found:
        gid = str(r.guide_id)
        m, t = metrics.get(gid), money.get(gid, Totals())
        rows.append(
            GuideRow(
                gid,
                str(r.alias),
                str(r.store_id),
                current.get(gid),
                m.orders if m else 0,
                m.sales_fen if m else 0,
                m.task_completion_bp if m else None,
                t.commission_fen,
                t.closing.get(CM_PAYABLE, 0),
                bound.get(gid, 0),
            )
        )
    return rows


def bound_members(
    conn: Connection, group_id: str, stores: tuple[str, ...], guide_id: str | None = None
) -> list[tuple[str, int]]:
    """(guide, member) of the live bindings whose member is one of `stores`' (of one
    guide, or of every guide)."""
    query = text(_BOUND.format(guide="AND b.guide_id = :gd" if guide_id else "")).bindparams(
        bindparam("stores", expanding=True)
    )
    params = {"g": group_id, "stores": list(stores), "gd": guide_id}
    return [(str(r.guide_id), int(r.member_id)) for r in conn.execute(query, params)]


def guide_home(conn: Connection, group_id: str, guide_id: str) -> str | None:
    """The guide's store, or None for no such guide."""
    found = conn.execute(
        text("SELECT store_id FROM guides WHERE group_id = :g AND guide_id = :gd"),
        {"g": group_id, "gd": guide_id},
    ).scalar()
    return None if found is None else str(found)
