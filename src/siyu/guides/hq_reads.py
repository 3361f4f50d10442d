"""HQ's reads around commission, classes and attribution (the console's guide pages):
a month's statement per store in one GROUP BY, the members behind a statement's orders,
what a statement line was decided on (rule, basis, buyer), the members behind a class's
figures, and who opened the share that took an order (masked).

Everything here reads the rows the services wrote (ledger entries, `commission_accruals`,
`order_attributions`, `guide_bindings`); nothing is computed beside them, so a figure
here always agrees with the statement or class it stands next to.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, text

from siyu.guides.commission_statements import Totals, month_range
from siyu.guides.models import CM_ACCRUE, CM_CLAWBACK

# The guides' ledger entries of a month (the statement's own FROM: commission_statements).
_FROM = """FROM ledger_entries e
           JOIN ledger_postings p ON p.posting_id = e.posting_id
           JOIN guide_accounts ga ON ga.group_id = e.group_id AND ga.account_no = -e.member_id
           WHERE e.group_id = :g AND e.member_id < 0"""
_STORE_TOTALS = text(f"""SELECT p.store_id, p.kind, e.asset, SUM(e.amount) AS amount {_FROM}
                         AND e.business_at >= :s AND e.business_at < :e
                         GROUP BY p.store_id, p.kind, e.asset""")
_STORE_CLOSING = text(f"""SELECT p.store_id, e.asset, SUM(e.amount) AS amount {_FROM}
                          AND e.business_at < :e GROUP BY p.store_id, e.asset""")


def store_totals(conn: Connection, group_id: str, month: str) -> dict[str | None, Totals]:
    """Every store's statement totals of `month` (its guides' postings made at that store),
    read by one GROUP BY over the month's entries; None: postings that named no store. The
    month's totals are the sum over stores, as they are the sum over guides."""
    start, end = month_range(month)
    params = {"g": group_id, "s": start, "e": end}
    found: dict[str | None, Totals] = {}
    for r in conn.execute(_STORE_TOTALS, params):
        found.setdefault(r.store_id, Totals()).add(r.kind, r.asset, int(r.amount))
    for r in conn.execute(_STORE_CLOSING, params):
        if r.store_id in found:  # a store with nothing this month is not on the statement
            found[r.store_id].closing[r.asset] = int(r.amount)
    return found


# The orders of a month's accruals (the rows of its accrual postings: a posting is a
# guide's summary, its rows in the posting's month) and clawbacks (a posting per refund,
# its order the reference), with their buyer (after merges). Both found from the month's
# entries of the guides' accounts, as the statement finds them.
_MONTH_POSTINGS = f"""SELECT DISTINCT p.posting_id, p.kind, p.reference, p.store_id,
                        ga.guide_id
                      FROM ledger_entries e
                      JOIN ledger_postings p ON p.posting_id = e.posting_id
                      JOIN guide_accounts ga ON ga.group_id = e.group_id
                        AND ga.account_no = -e.member_id
                      WHERE e.group_id = :g AND e.member_id < 0
                        AND e.business_at >= :s AND e.business_at < :e
                        AND p.kind IN ('{CM_ACCRUE}', '{CM_CLAWBACK}')"""
_BUYERS = text(f"""SELECT DISTINCT x.guide_id, x.store_id,
                     COALESCE(CASE WHEN m.status = 'merged' THEN m.merged_into END,
                              o.member_id) AS member_id
                   FROM (SELECT mp.guide_id, mp.store_id, a.order_id
                         FROM ({_MONTH_POSTINGS}) mp
                         JOIN commission_accruals a ON a.posting_id = mp.posting_id
                           AND a.group_id = :g
                         WHERE mp.kind = '{CM_ACCRUE}'
                         UNION
                         SELECT mp.guide_id, mp.store_id, mp.reference
                         FROM ({_MONTH_POSTINGS}) mp WHERE mp.kind = '{CM_CLAWBACK}') x
                   JOIN orders o ON o.group_id = :g AND o.order_id = x.order_id
                   LEFT JOIN members m ON m.member_id = o.member_id
                   WHERE o.member_id IS NOT NULL""")


@dataclass(frozen=True)
class Buyers:
    """The members whose orders made (or took back) commission in a month."""

    by_guide: dict[str, set[int]]
    by_store: dict[str | None, set[int]]

    @property
    def all(self) -> set[int]:
        return set().union(*self.by_guide.values()) if self.by_guide else set()


def buyers(conn: Connection, group_id: str, month: str) -> Buyers:
    """The month's buyers behind the commission, per guide and per store."""
    start, end = month_range(month)
    by_guide: dict[str, set[int]] = {}
    by_store: dict[str | None, set[int]] = {}
    for r in conn.execute(_BUYERS, {"g": group_id, "s": start, "e": end}):
        by_guide.setdefault(str(r.guide_id), set()).add(int(r.member_id))
        by_store.setdefault(r.store_id, set()).add(int(r.member_id))
    return Buyers(by_guide, by_store)


@dataclass(frozen=True)
class OrderTerms:
    """What a statement line's order was decided on: the rule (None: the default rate),
    the rules version, the attribution basis, the buyer."""

    rule: str | None
    rules_version: int
    basis: str
    member_id: int | None


_TERMS = text(
    "SELECT a.order_id, a.rule, a.rules_version, a.attribution, o.member_id "
    "FROM commission_accruals a LEFT JOIN orders o ON o.group_id = a.group_id "
    "AND o.order_id = a.order_id WHERE a.group_id = :g AND a.guide_id = :guide "
    "AND a.order_id IN :orders"
).bindparams(bindparam("orders", expanding=True))


def order_terms(
    conn: Connection, group_id: str, guide_id: str, order_ids: list[str]
) -> dict[str, OrderTerms]:
    """The accrual terms of the guide's orders among `order_ids` (a statement's lines)."""
    if not order_ids:
        return {}
    rows = conn.execute(_TERMS, {"g": group_id, "guide": guide_id, "orders": sorted(order_ids)})
    return {
        str(r.order_id): OrderTerms(
            r.rule,
            int(r.rules_version),
            str(r.attribution),
            None if r.member_id is None else int(r.member_id),
        )
        for r in rows
    }


# --- the members behind a class's figures ----------------------------------------------------

CLASS_FIGURES = ("buyers", "members_bound", "members_served")
_BOUND = text(
    "SELECT DISTINCT member_id FROM guide_bindings WHERE group_id = :g AND guide_id = :guide "
    "AND bound_at < :until AND (ended_at IS NULL OR ended_at > :since)"
)
_SOLD = text(
    "SELECT DISTINCT member_id FROM order_attributions WHERE group_id = :g AND guide_id = :guide "
    "AND ordered_at >= :since AND ordered_at < :until AND member_id IS NOT NULL"
)


def class_figure_members(
    conn: Connection, group_id: str, guide_id: str, since: datetime, until: datetime, figure: str
) -> set[int]:
    """The members a class metric counted for the guide over [since, until), as
    `guides.metrics` counts them: buyers (attributed orders), members_bound, or
    members_served (either)."""
    params = {"g": group_id, "guide": guide_id, "since": since, "until": until}
    found: set[int] = set()
    if figure in ("members_bound", "members_served"):
        found |= {int(r[0]) for r in conn.execute(_BOUND, params)}
    if figure in ("buyers", "members_served"):
        found |= {int(r[0]) for r in conn.execute(_SOLD, params)}
    return found


# --- an attributed order's people, masked -----------------------------------------------------


@dataclass(frozen=True)
class Masked:
    member_id: int | None
    name_masked: str | None
    identity_type: str | None
    identity_masked: str | None


_ORDER_BUYER = text(
    "SELECT o.member_id, m.name_masked, i.type, i.value_masked FROM orders o "
    "LEFT JOIN members m ON m.member_id = o.member_id "
    "LEFT JOIN identities i ON i.identity_id = o.buyer_identity_id "
    "WHERE o.group_id = :g AND o.order_id = :o"
)
_TOUCHER = text(
    "SELECT t.member_id, m.name_masked, i.type, i.value_masked FROM share_touches t "
    "LEFT JOIN members m ON m.member_id = t.member_id "
    "LEFT JOIN identities i ON i.identity_id = t.identity_id "
    "WHERE t.group_id = :g AND t.touch_id = :t"
)


def _masked(row: Any) -> Masked | None:
    if row is None:
        return None
    member_id, name, kind, value = tuple(row)
    return Masked(None if member_id is None else int(member_id), name, kind, value)


def order_buyer(conn: Connection, group_id: str, order_id: str) -> Masked | None:
    """The order's buyer: its member and the identity it paid as, masked."""
    return _masked(conn.execute(_ORDER_BUYER, {"g": group_id, "o": order_id}).first())


def touch_opener(conn: Connection, group_id: str, touch_id: int) -> Masked | None:
    """Who opened the share in that touch: a member or a visitor's identity, masked."""
    return _masked(conn.execute(_TOUCHER, {"g": group_id, "t": touch_id}).first())
