"""Monthly commission statements, per guide and per store, read from the ledger's entries
by business time (an order's payment, a refund's time, a freeze's end, a payment's time):
a refund in March of an order of February is a negative line of March's statement.

Set-based: one GROUP BY over the entries of the guides' accounts gives every guide's
totals of a month at once (a store's statement is that query with the store's filter);
the lines are the same entries, one per posting. Both read the same rows, so a statement's
totals are always the sums of its lines (tests/guides/test_commission_ledger.py checks it
against the lines and against the orders).

    commission_fen  earned in the month: accruals less clawbacks (minus the cm_accrued
                    entries)
    released_fen    moved out of the freeze into payable
    paid_fen        paid out
    closing         each account's balance at the end of the month

A release is one posting per guide (and store) and run (session 19): its line's
`orders` counts the orders behind it, `release_rows` reads them (`commission_releases`).
An accrual is one posting per guide, store and month a run too (session 20), but a
statement shows it as its orders, a line each from `commission_accruals` (the order, its
payment time, its fen), as it showed the per-order postings before: a guide is paid by the
order, and every reader of a line (the order's rule, freeze, buyer) is by order.
`unbalanced_releases` and `unbalanced_accruals` check that every summary posting moved
exactly the sum of its rows, so the lines still sum to the totals (the bench and the
tests call them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, String, bindparam, text

from siyu.errors import ValidationError
from siyu.guides.commission_postings import month_of
from siyu.guides.models import (
    CM_ACCRUE,
    CM_ACCRUED,
    CM_CLAWBACK,
    CM_FROZEN,
    CM_PAID,
    CM_PAY,
    CM_PAYABLE,
    CM_RELEASE,
    COMMISSION_ASSETS,
)
from siyu.store.times import stored_time


def month_range(month: str) -> tuple[datetime, datetime]:
    """'2025-02' -> [2025-02-01, 2025-03-01)."""
    try:
        start = datetime.strptime(month, "%Y-%m")
    except ValueError:
        raise ValidationError("month", "a month as YYYY-MM") from None
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else (start.replace(month=start.month + 1))
    )
    return start, end


@dataclass
class Totals:
    accrued_fen: int = 0
    clawed_back_fen: int = 0
    commission_fen: int = 0  # accrued - clawed back
    released_fen: int = 0
    paid_fen: int = 0
    # asset -> balance at the month's end
    closing: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COMMISSION_ASSETS, 0))

    def add(self, kind: str, asset: str, amount: int) -> None:
        if asset == CM_ACCRUED:
            self.commission_fen -= amount
            if kind == CM_ACCRUE:
                self.accrued_fen -= amount
            elif kind == CM_CLAWBACK:
                self.clawed_back_fen += amount
        elif asset == CM_PAYABLE and kind == CM_RELEASE:
            self.released_fen += amount
        elif asset == CM_PAID and kind == CM_PAY:
            self.paid_fen += amount


@dataclass(frozen=True)
class Line:
    posting_id: int
    kind: str
    reference: str | None  # the order (a payment: 'pay:<month>'; a release run: NULL)
    store_id: str | None
    business_at: datetime
    commission_fen: int  # + accrued, - clawed back
    frozen_fen: int
    payable_fen: int
    paid_fen: int
    orders: int = 0  # a release: the orders it released (its commission_releases rows)


@dataclass
class Statement:
    month: str
    guide_id: str | None  # a guide's statement
    store_id: str | None  # a store's (its guides')
    totals: Totals
    by_guide: dict[str, Totals]
    lines: list[Line]


_FROM = """FROM ledger_entries e
           JOIN ledger_postings p ON p.posting_id = e.posting_id
           JOIN guide_accounts ga ON ga.group_id = e.group_id AND ga.account_no = -e.member_id
           WHERE e.group_id = :g AND e.member_id < 0 {filters}"""
_TOTALS = """SELECT ga.guide_id, p.kind, e.asset, SUM(e.amount) AS amount
             {from_} AND e.business_at >= :s AND e.business_at < :e
             GROUP BY ga.guide_id, p.kind, e.asset"""
_CLOSING = """SELECT ga.guide_id, e.asset, SUM(e.amount) AS amount
              {from_} AND e.business_at < :e GROUP BY ga.guide_id, e.asset"""
_LINES = """SELECT p.posting_id, p.kind, p.reference, p.store_id, p.business_at, e.asset,
              e.amount, ga.guide_id
            {from_} AND e.business_at >= :s AND e.business_at < :e
            ORDER BY p.business_at, p.posting_id, e.asset"""


def statement(
    conn: Connection,
    group_id: str,
    month: str,
    guide_id: str | None = None,
    store_id: str | None = None,
    with_lines: bool = True,
) -> Statement:
    """The month's statement of one guide, of one store's guides (postings made while the
    guide was at that store), or of the whole group."""
    start, end = month_range(month)
    filters, params = "", {"g": group_id, "s": start, "e": end}
    if guide_id is not None:
        filters += " AND ga.guide_id = :guide"
        params["guide"] = guide_id
    if store_id is not None:
        filters += " AND p.store_id = :store"
        params["store"] = store_id
    from_ = _FROM.format(filters=filters)
    by_guide: dict[str, Totals] = {}
    for r in conn.execute(text(_TOTALS.format(from_=from_)), params):
        by_guide.setdefault(r.guide_id, Totals()).add(r.kind, r.asset, int(r.amount))
    for r in conn.execute(text(_CLOSING.format(from_=from_)), params):
        by_guide.setdefault(r.guide_id, Totals()).closing[r.asset] = int(r.amount)
    total = Totals()
    for one in by_guide.values():
        for name in (
            "accrued_fen",
            "clawed_back_fen",
            "commission_fen",
            "released_fen",
            "paid_fen",
        ):
            setattr(total, name, getattr(total, name) + getattr(one, name))
        for asset, amount in one.closing.items():
            total.closing[asset] = total.closing.get(asset, 0) + amount
    lines = _lines(conn, text(_LINES.format(from_=from_)), params) if with_lines else []
    return Statement(month, guide_id, store_id, total, by_guide, lines)


_RELEASED_ORDERS = text(
    "SELECT posting_id, COUNT(*) AS n FROM commission_releases WHERE group_id = :g "
    "AND posting_id IN :ids GROUP BY posting_id"
).bindparams(bindparam("ids", expanding=True))


_ACCRUED_ORDERS = text(
    "SELECT posting_id, order_id, accrued_at, commission_fen FROM commission_accruals "
    "WHERE group_id = :g AND posting_id IN :ids"
).bindparams(bindparam("ids", expanding=True))


def _chunks(ids: list[int]) -> list[list[int]]:
    """A bound list per statement, not per line, at most 1,000 ids a statement."""
    return [ids[start : start + 1000] for start in range(0, len(ids), 1000)]


def _lines(conn: Connection, query: object, params: dict[str, object]) -> list[Line]:
    moved: dict[int, dict[str, int]] = {}
    heads: dict[int, tuple[str, str | None, str | None, datetime]] = {}
    for r in conn.execute(query, params):  # type: ignore[call-overload]
        moved.setdefault(r.posting_id, {})[r.asset] = int(r.amount)
        heads[r.posting_id] = (r.kind, r.reference, r.store_id, stored_time(r.business_at))
    releases = sorted(p for p, head in heads.items() if head[0] == CM_RELEASE)
    counts: dict[int, int] = {}
    for ids in _chunks(releases):
        rows = conn.execute(_RELEASED_ORDERS, {"g": params["g"], "ids": ids})
        counts.update({int(r.posting_id): int(r.n) for r in rows})
    lines = [
        Line(
            posting_id,
            *heads[posting_id],
            commission_fen=-amounts.get(CM_ACCRUED, 0),
            frozen_fen=amounts.get(CM_FROZEN, 0),
            payable_fen=amounts.get(CM_PAYABLE, 0),
            paid_fen=amounts.get(CM_PAID, 0),
            orders=counts.get(posting_id, 0),
        )
        for posting_id, amounts in moved.items()
        if heads[posting_id][0] != CM_ACCRUE
    ]
    accruals = sorted(p for p, head in heads.items() if head[0] == CM_ACCRUE)
    for ids in _chunks(accruals):
        for r in conn.execute(_ACCRUED_ORDERS, {"g": params["g"], "ids": ids}):
            fen = int(r.commission_fen)
            store_id = heads[int(r.posting_id)][2]
            lines.append(
                Line(
                    int(r.posting_id),
                    CM_ACCRUE,
                    str(r.order_id),
                    store_id,
                    stored_time(r.accrued_at),
                    commission_fen=fen,
                    frozen_fen=fen,
                    payable_fen=0,
                    paid_fen=0,
                )
            )
    lines.sort(key=lambda x: (x.business_at, x.posting_id, x.reference or ""))
    return lines


@dataclass(frozen=True)
class Released:
    """One order of a release posting: what was still frozen of its accrual then."""

    order_id: str
    guide_id: str
    released_fen: int
    freeze_until: datetime


_RELEASE_ROWS = text(
    "SELECT order_id, guide_id, released_fen, freeze_until FROM commission_releases "
    "WHERE group_id = :g AND posting_id = :p AND (:guide IS NULL OR guide_id = :guide) "
    "ORDER BY freeze_until, order_id"
).bindparams(bindparam("guide", type_=String()))


def release_rows(
    conn: Connection, group_id: str, posting_id: int, guide_id: str | None = None
) -> list[Released]:
    """The orders behind a release posting (its sub-ledger rows), by freeze end; with
    `guide_id`, only if the posting is that guide's (a page opened under another guide)."""
    params = {"g": group_id, "p": posting_id, "guide": guide_id}
    return [
        Released(str(r.order_id), str(r.guide_id), int(r.released_fen), stored_time(r.freeze_until))
        for r in conn.execute(_RELEASE_ROWS, params)
    ]


# Release postings whose cm_payable move is not the sum of their commission_releases rows
# (or that have none), and rows that point at no release posting.
_UNBALANCED = text(f"""
SELECT p.posting_id FROM ledger_postings p
LEFT JOIN (SELECT e.posting_id, SUM(e.amount) AS moved FROM ledger_entries e
           WHERE e.group_id = :g AND e.member_id < 0 AND e.asset = '{CM_PAYABLE}'
           GROUP BY e.posting_id) m ON m.posting_id = p.posting_id
LEFT JOIN (SELECT r.posting_id, SUM(r.released_fen) AS fen FROM commission_releases r
           WHERE r.group_id = :g AND r.posting_id IS NOT NULL
           GROUP BY r.posting_id) s ON s.posting_id = p.posting_id
WHERE p.group_id = :g AND p.member_id < 0 AND p.kind = '{CM_RELEASE}'
  AND (s.posting_id IS NULL OR COALESCE(m.moved, 0) <> s.fen)
UNION
SELECT r.posting_id FROM commission_releases r
LEFT JOIN ledger_postings p ON p.posting_id = r.posting_id AND p.kind = '{CM_RELEASE}'
WHERE r.group_id = :g AND r.posting_id IS NOT NULL AND p.posting_id IS NULL""")


def unbalanced_releases(conn: Connection, group_id: str) -> list[int]:
    """The release postings that do not equal the sum of their sub-ledger rows (and rows
    pointing at no release posting): empty when the summary postings hold."""
    return sorted(int(r[0]) for r in conn.execute(_UNBALANCED, {"g": group_id}))


# Accrual postings whose cm_frozen move is not the sum of their commission_accruals rows
# (or that have none, or whose cm_accrued move is not its opposite), and rows that point
# at no accrual posting, or sit in another month than their posting (a statement would
# count them in one month and list them in another).
_UNBALANCED_ACCRUALS = text(f"""
SELECT p.posting_id FROM ledger_postings p
LEFT JOIN (SELECT e.posting_id,
             SUM(CASE WHEN e.asset = '{CM_FROZEN}' THEN e.amount ELSE 0 END) AS frozen,
             SUM(CASE WHEN e.asset = '{CM_ACCRUED}' THEN e.amount ELSE 0 END) AS accrued
           FROM ledger_entries e
           WHERE e.group_id = :g AND e.member_id < 0 GROUP BY e.posting_id) m
  ON m.posting_id = p.posting_id
LEFT JOIN (SELECT a.posting_id, SUM(a.commission_fen) AS fen FROM commission_accruals a
           WHERE a.group_id = :g GROUP BY a.posting_id) s ON s.posting_id = p.posting_id
WHERE p.group_id = :g AND p.member_id < 0 AND p.kind = '{CM_ACCRUE}'
  AND (s.posting_id IS NULL OR COALESCE(m.frozen, 0) <> s.fen
       OR COALESCE(m.accrued, 0) <> -s.fen)
UNION
SELECT a.posting_id FROM commission_accruals a
LEFT JOIN ledger_postings p ON p.posting_id = a.posting_id AND p.kind = '{CM_ACCRUE}'
WHERE a.group_id = :g AND (p.posting_id IS NULL
  OR {month_of("a.accrued_at")} <> {month_of("p.business_at")})""")


def unbalanced_accruals(conn: Connection, group_id: str) -> list[int]:
    """The accrual postings that do not equal the sum of their sub-ledger rows, and rows
    pointing at no accrual posting or dated in another month: empty when they hold."""
    return sorted(int(r[0]) for r in conn.execute(_UNBALANCED_ACCRUALS, {"g": group_id}))


_STORE_TOTALS = """SELECT p.store_id, p.kind, e.asset, SUM(e.amount) AS amount
                   {from_} AND e.business_at >= :s AND e.business_at < :e
                   GROUP BY p.store_id, p.kind, e.asset"""


def store_totals(conn: Connection, group_id: str, month: str) -> dict[str | None, Totals]:
    """Every store's statement totals of the month in one GROUP BY (the postings' store:
    where the guide was when it was made; None: a guide of no store). The totals of
    `statement(store_id=...)` for every store at once, without the closing balances
    (a balance is the guide's, not a store's)."""
    start, end = month_range(month)
    found: dict[str | None, Totals] = {}
    rows = conn.execute(
        text(_STORE_TOTALS.format(from_=_FROM.format(filters=""))),
        {"g": group_id, "s": start, "e": end},
    )
    for r in rows:
        found.setdefault(r.store_id, Totals()).add(r.kind, r.asset, int(r.amount))
    return found
