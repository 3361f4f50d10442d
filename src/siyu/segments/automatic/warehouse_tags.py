"""Automatic tags the warehouse computes: one Ibis expression per tag, so the same rule runs
on DuckDB and on Spark with identical results. The expressions read per-member aggregates
of the landed facts (`Facts`: three grouped passes, over the orders, the recent lines and a
year of events, materialised once per refresh), not the facts themselves.

Every expression returns (member_id int64, value string) for the active members it
applies to; a member it does not apply to (no order in the window, no such event) is left
out and so leaves the tag. Time is the as-of time T in whole epoch seconds
(`analytics.orders.epoch_seconds`, which both engines compute alike); "within n days" is
(T - n days, T]. Cancelled orders never count; refunded ones do (they were bought, as in
`Warehouse.purchases`). Ties are broken by rules that need no engine-specific order: the
larger count or spend, then the more recent order, then the smaller code.

Bands compare integers (3 × rank < n), never floats, so a member on a band's edge lands
in the same band on every engine and in the pandas reference of the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import ibis
import ibis.expr.types as ir

from siyu.analytics.engines import materialised
from siyu.analytics.orders import epoch_seconds
from siyu.analytics.warehouse import Warehouse

DAY = 86_400
PREFERENCE_DAYS = 365
# The windows an event tag may read: the facts count each event type in each of them.
EVENT_WINDOWS = (30, 90, 365)
EVENT_WINDOW_DAYS = max(EVENT_WINDOWS)


@dataclass(frozen=True)
class Facts:
    """Per-member aggregates the warehouse tags read, cut at T and limited to active
    members: each large table is read once for every tag (three grouped passes), and each
    tag re-aggregates a table of a few rows per member instead of scanning the orders, their
    lines or the events again. Materialised once per refresh (`materialise`).

    combos: member_id, channel, store_id, brand_id: the member's non-cancelled orders at or
        before T with that channel, store and brand; over all time: n_all (orders), first
        and last_all (epoch s); within PREFERENCE_DAYS: n (orders), last, paid (paid_fen
        summed), d (orders with a discount). n = 0 and last, paid null when none is recent.
    summary: one row per member of `combos`, summed over them: first, last_all, brands (how
        many), on and off (orders on an online channel, at a till; a null channel is
        neither), and n, d within PREFERENCE_DAYS
    categories: member_id, category (null: a SKU outside the catalogue): the lines of the
        orders within PREFERENCE_DAYS: n (amount_fen summed), last (latest order), and over
        the lines with qty > 0 only: q (qty summed), s (amount_fen summed), null when none
    events: member_id, type, and for each w of EVENT_WINDOWS a count c{w} of the member's
        events of that type within w days
    orders: order_id, member_id, at, store_id: the orders themselves, not materialised;
        only a tie for the first store order (same_city) reads them
    stores: store_id, city (the store's; not landed, it is reference data)
    """

    combos: ir.Table
    summary: ir.Table
    categories: ir.Table
    events: ir.Table
    orders: ir.Table
    stores: ir.Table
    t: int
    online_channels: tuple[str, ...]


def epoch(at: datetime) -> int:
    """Whole seconds since 1970 of a naive UTC time (the warehouse's times are naive UTC)."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return int(aware.timestamp() // 1)


def facts(
    wh: Warehouse,
    products: ir.Table,
    stores: ir.Table,
    as_of: datetime,
    online_channels: Sequence[str],
) -> Facts:
    """The facts of `wh` at `as_of`, each row with its current member (OneID merges after
    landing are followed by `Warehouse.orders` / `.events`); merged members drop out."""
    return facts_of(
        wh.members(),
        wh.orders(),
        wh.lines(),
        wh.events(),
        products,
        stores,
        as_of,
        online_channels,
    )


def facts_of(
    members: ir.Table,
    orders: ir.Table,
    lines: ir.Table,
    events: ir.Table,
    products: ir.Table,
    stores: ir.Table,
    as_of: datetime,
    online_channels: Sequence[str],
) -> Facts:
    """The facts from the tables themselves: `members` (member_id, the active ones),
    `orders` (order_id member_id status ordered_at channel store_id brand_id discount_fen
    paid_fen), `lines` (member_id status ordered_at sku qty amount_fen: each line with its
    order's member, status and time, as `Warehouse.lines` gives them), `events` (member_id type
    occurred_at)."""
    t = epoch(as_of)
    recent = t - PREFERENCE_DAYS * DAY
    active = members.select("member_id")
    raw = orders
    raw = raw.filter((raw.status != "cancelled") & raw.member_id.notnull())
    o = _orders(raw, as_of).semi_join(active, "member_id")
    in_year = o.at > recent
    combos = o.group_by(["member_id", "channel", "store_id", "brand_id"]).aggregate(
        n_all=o.count(),
        first=o.at.min(),
        last_all=o.at.max(),
        n=o.count(where=in_year),
        last=o.at.max(where=in_year),
        paid=o.paid_fen.sum(where=in_year),
        d=o.count(where=in_year & (o.discount_fen > 0)),
    )
    # the recent lines, each with its order's member, time and status (no join back to
    # the orders): a plain cut of the stored time first, as for the events
    lines = lines.filter((lines.status != "cancelled") & lines.member_id.notnull())
    lines = _timed(lines, as_of, PREFERENCE_DAYS)
    lines = lines.filter(lines.at > recent).semi_join(active, "member_id")
    lines = lines.select("member_id", "sku", "qty", "amount_fen", "at")
    lines = lines.left_join(products.select("sku", "category"), "sku")
    bought = lines.qty > 0
    categories = lines.group_by(["member_id", "category"]).aggregate(
        n=lines.amount_fen.sum(),
        last=lines.at.max(),
        q=lines.qty.sum(where=bought),
        s=lines.amount_fen.sum(where=bought),
    )
    e = recent_events(events, as_of).semi_join(active, "member_id")
    per_type = e.group_by(["member_id", "type"]).aggregate(
        **{f"c{w}": e.count(where=e.at > t - w * DAY) for w in EVENT_WINDOWS}
    )
    channels = tuple(sorted(online_channels))
    return Facts(
        combos,
        summarise(combos, channels),
        categories,
        per_type,
        o.select("order_id", "member_id", "at", "store_id"),
        stores,
        t,
        channels,
    )


def _orders(raw: ir.Table, as_of: datetime, days: int | None = None) -> ir.Table:
    """The orders at or before `as_of` (within `days` of it, to a day's margin, when
    given), with their time in whole epoch seconds as `at`."""
    o = _timed(raw, as_of, days)
    return o.select(
        "order_id",
        "member_id",
        "channel",
        "store_id",
        "brand_id",
        "discount_fen",
        "paid_fen",
        "at",
    )


def _timed(raw: ir.Table, as_of: datetime, days: int | None = None) -> ir.Table:
    """Rows of orders or lines (by their `ordered_at`) at or before `as_of`, within `days`
    of it to a day's margin when given, with `at` in whole epoch seconds. A plain
    comparison of the stored time (a day wide, so never narrower) cuts rows before the
    epoch of each."""
    naive = as_of.replace(tzinfo=None) if as_of.tzinfo is None else None
    if naive is not None:
        cut = raw.ordered_at < ibis.timestamp(naive + timedelta(days=1))
        if days is not None:
            cut &= raw.ordered_at > ibis.timestamp(naive - timedelta(days=days + 1))
        raw = raw.filter(cut)
    o = raw.mutate(at=epoch_seconds(raw.ordered_at))
    return o.filter(o.at <= epoch(as_of))


def summarise(combos: ir.Table, online_channels: tuple[str, ...]) -> ir.Table:
    """`Facts.summary` from `Facts.combos`."""
    online = combos.channel.isin(online_channels)
    # a null channel is neither (CASE on a null condition takes the else)
    return combos.group_by("member_id").aggregate(
        first=combos["first"].min(),
        last_all=combos.last_all.max(),
        brands=combos.brand_id.nunique(),
        on=online.ifelse(combos.n_all, 0).sum(),
        off=(~online).ifelse(combos.n_all, 0).sum(),
        n=combos.n.sum(),
        d=combos.d.sum(),
    )


@contextmanager
def materialise(f: Facts) -> Iterator[Facts]:
    """`f` with its aggregates computed once for the block (every tag reads them; the
    summary is read from the materialised combinations)."""
    with (
        materialised(f.combos) as combos,
        materialised(summarise(combos, f.online_channels)) as summary,
        materialised(f.categories) as categories,
        materialised(f.events) as events,
    ):
        yield replace(f, combos=combos, summary=summary, categories=categories, events=events)


def recent_events(events: ir.Table, as_of: datetime) -> ir.Table:
    """member_id, type, at of the events in the EVENT_WINDOW_DAYS up to `as_of`. A plain
    comparison of the stored time (a day wider, so never narrower) cuts most rows before
    the exact whole-second cut, which costs an epoch per row."""
    t = epoch(as_of)
    naive = as_of.replace(tzinfo=None) if as_of.tzinfo is None else None
    if naive is not None:
        earliest = naive - timedelta(days=EVENT_WINDOW_DAYS + 1)
        events = events.filter(
            (events.occurred_at > ibis.timestamp(earliest))
            & (events.occurred_at < ibis.timestamp(naive + timedelta(days=1)))
        )
    e = events.select("member_id", "type", at=epoch_seconds(events.occurred_at))
    return e.filter(e.member_id.notnull() & (e.at <= t) & (e.at > t - EVENT_WINDOW_DAYS * DAY))


# --- helpers --------------------------------------------------------------------------------


def _recent(f: Facts) -> ir.Table:
    """The combinations with an order within PREFERENCE_DAYS."""
    return f.combos.filter(f.combos.n > 0)


def _preference(rows: ir.Table, key: str, weight: str = "n") -> ir.Table:
    """Per member, the `key` with the largest summed `weight` (above 0), then the latest
    `last`, then the smallest key."""
    per = rows.group_by(["member_id", key]).aggregate(n=rows[weight].sum(), last=rows["last"].max())
    return _top(per.filter(per.n > 0), key, "n")


def _top(rows: ir.Table, key: str, weight: str) -> ir.Table:
    """Per member, the `key` with the largest `weight`, then the latest `last`, then the
    smallest key: exactly one row per member."""
    rank = ibis.row_number().over(
        group_by=rows.member_id,
        order_by=[ibis.desc(rows[weight]), ibis.desc(rows["last"]), rows[key]],
    )
    ranked = rows.mutate(_rank=rank)
    top = ranked.filter(ranked._rank == 0)
    return top.select("member_id", value=top[key].cast("string"))


def _bands(value: ir.IntegerValue, bands: Sequence[tuple[int, str]], last: str) -> ir.StringValue:
    """The label of the first band whose upper bound (inclusive) holds `value`."""
    case = ibis.cases(*((value <= upper, label) for upper, label in bands), else_=last)
    return case.cast("string")


# --- the tags -------------------------------------------------------------------------------

Compute = Callable[[Facts], ir.Table]


def preferred_channel(f: Facts) -> ir.Table:
    return _preference(_recent(f), "channel")


def preferred_store(f: Facts) -> ir.Table:
    c = _recent(f)
    return _preference(c.filter(c.store_id.notnull()), "store_id")


def preferred_city(f: Facts) -> ir.Table:
    return _preference(_recent(f).join(f.stores, "store_id"), "city")


def same_city(f: Facts) -> ir.Table:
    """`home_city` when every store order of the window was in the member's city,
    `elsewhere` when one was not. The warehouse holds no address, so a member's city is
    that of the store of their first store order up to T (earliest, then the smallest
    order id), as in the same-city KPI (`analytics.kpis.same_city`). Members without a
    store order in the window are left out.

    Read from the member's cities (their combinations' first orders and recent orders per
    city): the home is the city of the earliest first order. Only a member whose first
    instant has stores of two cities needs the order ids, and only those few members'
    orders are read (a semi join on a table that is nearly always empty)."""
    served = f.combos.join(f.stores, "store_id")
    cities = served.group_by(["member_id", "city"]).aggregate(
        first=served["first"].min(), n=served.n.sum()
    )
    start = cities.group_by("member_id").aggregate(home_at=cities["first"].min())
    at_first = cities.join(start, "member_id")
    at_first = at_first.filter(at_first["first"] == at_first.home_at)
    candidates = at_first.group_by(["member_id", "home_at"]).aggregate(
        cities=at_first.count(), city=at_first.city.min()
    )
    settled = candidates.filter(candidates.cities == 1).select("member_id", home="city")
    tied = candidates.filter(candidates.cities > 1).select("member_id", "home_at")
    o = f.orders.join(f.stores, "store_id").join(tied, "member_id")
    o = o.filter(o.at == o.home_at)
    broken = o.group_by("member_id").aggregate(home=o.city.argmin(o.order_id))
    home = settled.union(broken)
    window = cities.filter(cities.n > 0).join(home, "member_id")
    # a null city (a store without one) is neither home nor away, as a null comparison
    away = (window.city != window.home).ifelse(window.n, 0)
    per = window.group_by("member_id").aggregate(away=away.sum())
    value = ibis.ifelse(per.away > 0, "elsewhere", "home_city")
    return per.select("member_id", value=value.cast("string"))


def preferred_brand(f: Facts) -> ir.Table:
    return _preference(_recent(f), "brand_id", "paid")


def preferred_category(f: Facts) -> ir.Table:
    c = f.categories  # already one row per member and category
    return _top(c.filter(c.category.notnull() & (c.n > 0)), "category", "n")


def discount_sensitivity(f: Facts) -> ir.Table:
    per = f.summary.filter(f.summary.n > 0)
    value = ibis.cases(
        (per.d == 0, "none"),
        (per.d * 3 < per.n, "low"),
        (per.d * 3 < per.n * 2, "mid"),
        else_="high",
    )
    return per.select("member_id", value=value.cast("string"))


def price_band(f: Facts) -> ir.Table:
    c = f.categories
    per = c.group_by("member_id").aggregate(q=c.q.sum(), s=c.s.sum())
    per = per.filter(per.q.notnull())  # a member with no line of qty > 0 has no band
    per = per.mutate(avg=per.s.cast("float64") / per.q.cast("float64"))
    # rank: 0-based, equal prices share the lowest; n: the buyers ranked
    per = per.mutate(r=ibis.rank().over(order_by=per.avg), n=per.member_id.count().over())
    value = ibis.cases((per.r * 3 < per.n, "low"), (per.r * 3 < per.n * 2, "mid"), else_="high")
    return per.select("member_id", value=value.cast("string"))


def multi_brand(f: Facts) -> ir.Table:
    per = f.summary.filter(f.summary.brands >= 2)
    return per.select("member_id", value=per.brands.cast("string"))


def online_offline(f: Facts) -> ir.Table:
    per = f.summary.filter((f.summary.on > 0) & (f.summary.off > 0))
    return per.select("member_id", value=ibis.null("string"))


NEW_DAYS = 90


def customer_age(f: Facts) -> ir.Table:
    per = f.summary
    value = ibis.ifelse(per["first"] > f.t - NEW_DAYS * DAY, "new", "existing")
    return per.select("member_id", value=value.cast("string"))


FREQUENCY_BANDS = ((1, "1"), (3, "2-3"), (9, "4-9"))


def frequency(f: Facts) -> ir.Table:
    per = f.summary.filter(f.summary.n > 0)
    return per.select("member_id", value=_bands(per.n, FREQUENCY_BANDS, "10+"))


RECENCY_BANDS = ((30, "0-30"), (90, "31-90"), (180, "91-180"), (365, "181-365"))


def recency(f: Facts) -> ir.Table:
    per = f.summary
    # floor of a float division: integer division rounds differently by engine
    days = ((f.t - per.last_all) / DAY).floor().cast("int64")
    return per.select("member_id", value=_bands(days, RECENCY_BANDS, "366+"))


EVENT_BANDS = ((2, "1-2"), (9, "3-9"))


def event_count(event_type: str, days: int) -> Compute:
    """Members with `event_type` events within `days`, banded by how many."""
    if days not in EVENT_WINDOWS:  # the facts count events in these windows only
        raise ValueError(f"an event tag reads a window of {EVENT_WINDOWS} days, not {days}")

    def compute(f: Facts) -> ir.Table:
        column = f"c{days}"
        e = f.events.filter((f.events.type == event_type) & (f.events[column] > 0))
        return e.select("member_id", value=_bands(e[column], EVENT_BANDS, "10+"))

    compute.__name__ = f"event_count_{event_type}"
    return compute
