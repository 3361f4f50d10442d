"""Member lists: any group of members by criteria (`MemberCriteria`), read live from the
operational store, paged, sorted and exported the same way wherever a count is shown.

One small query builder, written once as SQL that SQLite and PostgreSQL both run. Each
criterion is the definition behind a number on an aggregate page, so a count opens the
members it counted:

    stage            member_stages (the lifecycle run's stage, written back per member)
    rfm, r, f, m     member_rfm (the RFM run's segment and scores, written back per member)
    cohort, active   first order (not cancelled) in the month; ordered `active` months later
    funnel, step     an event of type `step` in channel `funnel`
    store            the home store
    bought_at        an order (not cancelled) at the store
    guide            the guide's members (`guides.queries`: an order or an event carrying it)
    sold_by          an order (not cancelled) carrying the guide
    channel          an order (not cancelled) in the channel
    segment          a member of the stored segment now (segment_members, from its last run)
    tag              a holder of the tag now (member_tags)
    until            facts (orders, events) up to this time: the snapshot's as-of time

Row scope is the principal's (`auth.scope`): a store key only its stores' members, a guide
key only its own members, on the page and in the export alike. Names are shown masked in
lists whatever the role (Member 360 shows more to roles that may see it); phones as the
role may see them (`identity.profile.shown_identity`), the same in the CSV as on the page.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator, Collection, Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from siyu.auth.principal import Principal, Role
from siyu.errors import ValidationError
from siyu.guides.queries import GUIDE_MEMBER_IDS
from siyu.identity.profile import shown_identity
from siyu.privacy import Vault
from siyu.store.reads import Reader, Sql

SORTS = ("last_order", "orders", "spend", "member_id")
PER_PAGE = (25, 50, 100, 200)
DEFAULT_PER = 50
EXPORT_BATCH = 1000
_ID = re.compile(r"^[\w.:@-]{1,64}$")
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
MAX_ACTIVE = 120  # months after the cohort month


@dataclass(frozen=True)
class MemberCriteria:
    """Which members: every field set narrows the list (all must hold)."""

    stage: str | None = None
    rfm: str | None = None
    r: int | None = None
    f: int | None = None
    m: int | None = None
    cohort: str | None = None  # YYYY-MM
    active: int | None = None  # months after the cohort month (0 = that month)
    funnel: str | None = None  # channel
    step: str | None = None  # event type
    store: str | None = None
    bought_at: str | None = None
    guide: str | None = None
    sold_by: str | None = None
    channel: str | None = None
    segment: str | None = None  # a stored segment's slug: its members now
    tag: str | None = None  # a tag's slug: its holders now
    until: datetime | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))

    def query(self) -> dict[str, str]:
        """The criteria as URL query parameters (the inverse of `parse_criteria`)."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            out[f.name] = value.isoformat() if isinstance(value, datetime) else str(value)
        return out


@dataclass(frozen=True)
class ListView:
    """How the list is shown: sort key, direction, page (from 1) and page size."""

    sort: str = "last_order"
    desc: bool = True
    page: int = 1
    per: int = DEFAULT_PER

    def query(self) -> dict[str, str]:
        return {
            "sort": self.sort,
            "dir": "desc" if self.desc else "asc",
            "page": str(self.page),
            "per": str(self.per),
        }


CRITERIA_FIELDS = tuple(f.name for f in fields(MemberCriteria))
_INTS = {"r": (1, 9), "f": (1, 9), "m": (1, 9), "active": (0, MAX_ACTIVE)}


def parse_criteria(params: Mapping[str, str]) -> MemberCriteria:
    """Criteria from query parameters; `ValidationError` names the field and the rule.
    Empty values are no criterion (a filter form submits every field)."""
    found: dict[str, Any] = {}
    for name in CRITERIA_FIELDS:
        raw = (params.get(name) or "").strip()
        if not raw:
            continue
        if name in _INTS:
            low, high = _INTS[name]
            if not raw.isdigit() or not low <= int(raw) <= high:
                raise ValidationError(name, f"must be a whole number from {low} to {high}")
            found[name] = int(raw)
        elif name == "cohort":
            if not _MONTH.match(raw):
                raise ValidationError(name, "must be a month written YYYY-MM")
            found[name] = raw
        elif name == "until":
            try:
                until = datetime.fromisoformat(raw)
            except ValueError:
                raise ValidationError(name, "must be a date or time in ISO 8601") from None
            if until.tzinfo is not None:  # the store keeps naive UTC
                until = until.astimezone(UTC).replace(tzinfo=None)
            found[name] = until
        else:
            if not _ID.match(raw):
                raise ValidationError(
                    name, "must be a code of 1 to 64 letters, digits and . _ : @ -"
                )
            found[name] = raw
    criteria = MemberCriteria(**found)
    if criteria.active is not None and criteria.cohort is None:
        raise ValidationError("active", "needs a cohort (the month the months count from)")
    if (criteria.funnel is None) != (criteria.step is None):
        raise ValidationError("step", "a funnel step needs both its channel (funnel) and step")
    return criteria


def parse_view(params: Mapping[str, str]) -> ListView:
    sort = params.get("sort") or "last_order"
    if sort not in SORTS:
        raise ValidationError("sort", f"must be one of {', '.join(SORTS)}")
    direction = params.get("dir") or ("asc" if sort == "member_id" else "desc")
    if direction not in ("asc", "desc"):
        raise ValidationError("dir", "must be asc or desc")
    page_raw = params.get("page") or "1"
    if not page_raw.isdigit() or not 1 <= int(page_raw) <= 10**7:
        raise ValidationError("page", "must be a whole number from 1")
    per_raw = params.get("per") or str(DEFAULT_PER)
    if not per_raw.isdigit() or int(per_raw) not in PER_PAGE:
        raise ValidationError("per", f"must be one of {', '.join(map(str, PER_PAGE))}")
    return ListView(sort, direction == "desc", int(page_raw), int(per_raw))


# --- the query ----------------------------------------------------------------------------

_FROM = """FROM members m
    LEFT JOIN member_stages s ON s.group_id = m.group_id AND s.member_id = m.member_id"""
# what the list shows of each member's orders, live: orders not cancelled, paid fen
_TOTALS = """LEFT JOIN (SELECT member_id, COUNT(*) AS orders, SUM(paid_fen) AS spend_fen,
        MAX(ordered_at) AS last_order_at FROM orders
        WHERE group_id = :g AND status <> 'cancelled' AND member_id IS NOT NULL
        GROUP BY member_id) t ON t.member_id = m.member_id"""
_SELECT = """SELECT m.member_id, m.name_masked, m.home_store_id, s.stage,
    COALESCE(t.orders, 0) AS orders, COALESCE(t.spend_fen, 0) AS spend_fen, t.last_order_at"""
_SORT_KEYS = {
    "last_order": "t.last_order_at",
    "orders": "COALESCE(t.orders, 0)",
    "spend": "COALESCE(t.spend_fen, 0)",
}
_ORDERED = "o.group_id = :g AND o.member_id = m.member_id AND o.status <> 'cancelled'"
# Stored times are whole seconds: "up to `until`" is "before the next second", which holds
# however the engine writes a time's fractions (SQLite compares them as text).
_UNTIL_ORDER = " AND o.ordered_at < :until"
# criteria met by an order (not cancelled): the criterion and the order's column
_BOUGHT = (("bought_at", "store_id"), ("sold_by", "guide_id"), ("channel", "channel"))
PHONES = Sql(
    "SELECT member_id, type, value, value_enc, value_masked FROM identities "
    "WHERE group_id = :g AND type = 'phone' AND member_id IN :ids "
    "ORDER BY member_id, first_seen, identity_id"
)


def _where(
    c: MemberCriteria, who: Principal, among: Collection[int] | None = None
) -> tuple[str, dict[str, Any]]:
    """The WHERE clause of the criteria, the principal's row scope and `among` (the ids a
    report names, when its figure is not a criterion), and its parameters."""
    conds = ["m.group_id = :g", "m.status = 'active'"]
    params: dict[str, Any] = {"g": who.group_id}
    if among is not None:
        # one parameter on both engines (an array on PostgreSQL, JSON on SQLite: `Sql`)
        conds.append("m.member_id IN :among" if among else "1 = 0")
        if among:
            params["among"] = sorted(among)
    until = "" if c.until is None else _UNTIL_ORDER
    if c.until is not None:
        params["until"] = c.until.replace(microsecond=0) + timedelta(seconds=1)
    if c.stage is not None:
        conds.append("s.stage = :stage")
        params["stage"] = c.stage
    rfm = [(k, getattr(c, k)) for k in ("r", "f", "m") if getattr(c, k) is not None]
    if c.rfm is not None or rfm:
        parts = ["x.group_id = :g", "x.member_id = m.member_id"]
        if c.rfm is not None:
            parts.append("x.segment = :rfm")
            params["rfm"] = c.rfm
        for axis, score in rfm:
            parts.append(f"x.{axis} = :score_{axis}")
            params[f"score_{axis}"] = score
        conds.append(f"EXISTS (SELECT 1 FROM member_rfm x WHERE {' AND '.join(parts)})")
    if c.cohort is not None:
        start, end = _month_bounds(c.cohort, 0)
        conds.append(
            "m.member_id IN (SELECT member_id FROM orders WHERE group_id = :g "
            "AND status <> 'cancelled' AND member_id IS NOT NULL"
            + ("" if c.until is None else " AND ordered_at < :until")
            + " GROUP BY member_id HAVING MIN(ordered_at) >= :cohort_from "
            "AND MIN(ordered_at) < :cohort_to)"
        )
        params.update(cohort_from=start, cohort_to=end)
        if c.active is not None:
            start, end = _month_bounds(c.cohort, c.active)
            conds.append(
                f"EXISTS (SELECT 1 FROM orders o WHERE {_ORDERED}{until} "
                "AND o.ordered_at >= :active_from AND o.ordered_at < :active_to)"
            )
            params.update(active_from=start, active_to=end)
    if c.funnel is not None and c.step is not None:
        conds.append(
            "EXISTS (SELECT 1 FROM events e WHERE e.group_id = :g AND e.member_id = m.member_id "
            "AND e.channel = :funnel AND e.type = :step"
            + ("" if c.until is None else " AND e.occurred_at < :until")
            + ")"
        )
        params.update(funnel=c.funnel, step=c.step)
    if c.store is not None:
        conds.append("m.home_store_id = :store")
        params["store"] = c.store
    for name, column in _BOUGHT:
        value = getattr(c, name)
        if value is not None:
            conds.append(
                f"EXISTS (SELECT 1 FROM orders o WHERE {_ORDERED}{until} AND o.{column} = :{name})"
            )
            params[name] = value
    if c.segment is not None:
        conds.append(
            "EXISTS (SELECT 1 FROM segment_members sm JOIN segments sg "
            "ON sg.segment_id = sm.segment_id WHERE sm.group_id = :g "
            "AND sm.member_id = m.member_id AND sg.group_id = :g AND sg.slug = :segment)"
        )
        params["segment"] = c.segment
    if c.tag is not None:
        conds.append(
            "EXISTS (SELECT 1 FROM member_tags mt JOIN tags tg ON tg.tag_id = mt.tag_id "
            "WHERE mt.group_id = :g AND mt.member_id = m.member_id AND tg.group_id = :g "
            "AND tg.slug = :tag)"
        )
        params["tag"] = c.tag
    if c.guide is not None:
        conds.append(f"m.member_id IN ({GUIDE_MEMBER_IDS})")
        params["gd"] = c.guide
    # the principal's row scope, the rule of auth.scope.member_in_scope
    if who.role == Role.STORE:
        conds.append(
            "(m.home_store_id IN :scope_stores OR EXISTS (SELECT 1 FROM orders so "
            "WHERE so.group_id = :g AND so.member_id = m.member_id "
            "AND so.store_id IN :scope_stores))"
        )
        params["scope_stores"] = list(who.stores)
    elif who.role == Role.GUIDE:
        conds.append(f"m.member_id IN ({GUIDE_MEMBER_IDS.replace(':gd', ':scope_guide')})")
        params["scope_guide"] = who.guide_id
    elif who.role not in (Role.ADMIN, Role.ANALYST):
        conds.append("1 = 0")  # channel and member keys list nobody
    return " AND ".join(conds), params


def _month_bounds(month: str, after: int) -> tuple[datetime, datetime]:
    """The first instant of `after` months after `month` (YYYY-MM), and of the next."""
    year, mon = int(month[:4]), int(month[5:7])
    index = year * 12 + mon - 1 + after
    start = datetime(index // 12, index % 12 + 1, 1)
    index += 1
    return start, datetime(index // 12, index % 12 + 1, 1)


@lru_cache(maxsize=256)
def _sql(text: str) -> Sql:
    return Sql(text)


def _order_by(view: ListView) -> str:
    direction = "DESC" if view.desc else "ASC"
    if view.sort == "member_id":
        return f"ORDER BY m.member_id {direction}"
    key = _SORT_KEYS[view.sort]
    # members with no order last either way (PostgreSQL and SQLite put NULLs apart)
    nulls = "(t.last_order_at IS NULL), " if view.sort == "last_order" else ""
    return f"ORDER BY {nulls}{key} {direction}, m.member_id ASC"


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberRow:
    member_id: int
    name: str | None  # masked whatever the role
    phone: str | None
    phone_masked: bool
    stage: str | None
    orders: int
    spend_fen: int
    last_order_at: Any
    home_store_id: str | None


@dataclass(frozen=True)
class MemberPage:
    total: int
    rows: list[MemberRow]
    view: ListView

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.view.per))

    @property
    def first(self) -> int:
        """The 1-based position of the page's first row (0 when the page is empty)."""
        return (self.view.page - 1) * self.view.per + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1 if self.rows else 0


async def count_members(
    reader: Reader, who: Principal, criteria: MemberCriteria, among: Collection[int] | None = None
) -> int:
    where, params = _where(criteria, who, among)
    row = await reader.first(_sql(f"SELECT COUNT(*) AS n {_FROM} WHERE {where}"), params)
    return int(row.n) if row is not None else 0


async def _rows(
    reader: Reader,
    vault: Vault,
    who: Principal,
    criteria: MemberCriteria,
    view: ListView,
    limit: int,
    offset: int,
    among: Collection[int] | None = None,
) -> list[MemberRow]:
    where, params = _where(criteria, who, among)
    sql = f"{_SELECT} {_FROM} {_TOTALS} WHERE {where} {_order_by(view)} LIMIT :n OFFSET :o"
    found = await reader.all(_sql(sql), {**params, "n": limit, "o": offset})
    if not found:
        return []
    phones: dict[int, tuple[str, bool]] = {}
    ids = [int(r.member_id) for r in found]
    for p in await reader.all(PHONES, {"g": who.group_id, "ids": ids}):
        member = int(p.member_id)
        if member not in phones:  # the member's first phone
            phones[member] = shown_identity(
                vault, who.sees_personal_data, p.type, p.value, p.value_enc, p.value_masked
            )
    return [
        MemberRow(
            member_id=int(r.member_id),
            name=r.name_masked,
            phone=phones.get(int(r.member_id), (None, True))[0],
            phone_masked=phones.get(int(r.member_id), (None, True))[1],
            stage=r.stage,
            orders=int(r.orders),
            spend_fen=int(r.spend_fen),
            last_order_at=r.last_order_at,
            home_store_id=r.home_store_id,
        )
        for r in found
    ]


async def member_page(
    reader: Reader,
    vault: Vault,
    who: Principal,
    criteria: MemberCriteria,
    view: ListView,
    among: Collection[int] | None = None,
) -> MemberPage:
    """One page of the members matching `criteria` (and among `among`, when given) in the
    principal's scope, and how many match in all. A page past the last shows the last."""
    total = await count_members(reader, who, criteria, among)
    pages = max(1, -(-total // view.per))
    if view.page > pages:
        view = replace(view, page=pages)
    offset = (view.page - 1) * view.per
    rows = await _rows(reader, vault, who, criteria, view, view.per, offset, among)
    return MemberPage(total, rows, view)


CSV_COLUMNS = (
    "member_id",
    "name",
    "phone",
    "stage",
    "orders",
    "spend_fen",
    "last_order_at",
    "home_store_id",
)
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^\+?\d+$")


def _cell(value: Any) -> str:
    """A CSV cell that a spreadsheet will not run as a formula (a phone's + stays)."""
    if value is None:
        return ""
    text = value.isoformat(sep=" ") if isinstance(value, datetime) else str(value)
    if text.startswith(_FORMULA) and not _NUMBER.match(text):
        return "'" + text
    return text


async def export_csv(
    reader: Reader,
    vault: Vault,
    who: Principal,
    criteria: MemberCriteria,
    view: ListView,
    among: Collection[int] | None = None,
) -> AsyncIterator[str]:
    """Every member of the list in the page's order, as CSV text in batches: the same
    rows, masks and scope as the page shows. Money is integer fen."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield "\ufeff" + out.getvalue()  # a BOM, so spreadsheets read the Chinese names
    offset = 0
    while True:
        rows = await _rows(reader, vault, who, criteria, view, EXPORT_BATCH, offset, among)
        if not rows:
            return
        out.seek(0)
        out.truncate()
        for r in rows:
            writer.writerow(
                [
                    _cell(r.member_id),
                    _cell(r.name),
                    _cell(r.phone),
                    _cell(r.stage),
                    _cell(r.orders),
                    _cell(r.spend_fen),
                    _cell(r.last_order_at),
                    _cell(r.home_store_id),
                ]
            )
        yield out.getvalue()
        if len(rows) < EXPORT_BATCH:
            return
        offset += EXPORT_BATCH
