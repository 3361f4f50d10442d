"""Automatic tags the warehouse computes: one Ibis expression per tag over the landed facts,
so the same rule runs on DuckDB and on Spark with identical results.

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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import ibis
import ibis.expr.types as ir

from siyu.analytics.orders import epoch_seconds
from siyu.analytics.warehouse import Warehouse

DAY = 86_400
EVENT_WINDOW_DAYS = 365


@dataclass(frozen=True)
class Facts:
    """What the warehouse tags read, cut at T and limited to active members.

    orders: order_id, member_id, at (epoch s), channel, store_id, brand_id, discount_fen,
        paid_fen: non-cancelled orders at or before T
    lines: order_id, member_id, at, sku, qty, amount_fen: the lines of those orders
    events: member_id, type, at: events at or before T, and no older than
        EVENT_WINDOW_DAYS (the longest window an event tag reads: the rest, most of a
        brand's events, is never materialised)
    products: sku, category (the store's catalogue; not landed, it is reference data)
    stores: store_id, city (likewise)
    """

    orders: ir.Table
    lines: ir.Table
    events: ir.Table
    products: ir.Table
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
    t = epoch(as_of)
    active = wh.members().select("member_id")
    o = wh.orders()
    o = o.filter((o.status != "cancelled") & o.member_id.notnull())
    o = o.select(
        "order_id",
        "member_id",
        "channel",
        "store_id",
        "brand_id",
        "discount_fen",
        "paid_fen",
        at=epoch_seconds(o.ordered_at),
    )
    o = o.filter(o.at <= t).semi_join(active, "member_id")
    lines = wh.table("order_lines")
    lines = lines.select("order_id", "sku", "qty", "amount_fen")
    lines = lines.join(o.select("order_id", "member_id", "at"), "order_id")
    e = recent_events(wh.events(), as_of).semi_join(active, "member_id")
    return Facts(o, lines, e, products, stores, t, tuple(sorted(online_channels)))


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


def _within(table: ir.Table, f: Facts, days: int | None) -> ir.Table:
    return table if days is None else table.filter(table.at > f.t - days * DAY)


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


def _counted(table: ir.Table, bands: Sequence[tuple[int, str]], last: str) -> ir.Table:
    per = table.group_by("member_id").aggregate(n=table.count())
    return per.select("member_id", value=_bands(per.n, bands, last))


# --- the tags -------------------------------------------------------------------------------

Compute = Callable[[Facts], ir.Table]
PREFERENCE_DAYS = 365


def preferred_channel(f: Facts) -> ir.Table:
    o = _within(f.orders, f, PREFERENCE_DAYS)
    per = o.group_by(["member_id", "channel"]).aggregate(n=o.count(), last=o.at.max())
    return _top(per, "channel", "n")


def preferred_store(f: Facts) -> ir.Table:
    o = _within(f.orders, f, PREFERENCE_DAYS)
    o = o.filter(o.store_id.notnull())
    per = o.group_by(["member_id", "store_id"]).aggregate(n=o.count(), last=o.at.max())
    return _top(per, "store_id", "n")


def preferred_city(f: Facts) -> ir.Table:
    o = _within(f.orders, f, PREFERENCE_DAYS)
    o = o.join(f.stores, "store_id")
    per = o.group_by(["member_id", "city"]).aggregate(n=o.count(), last=o.at.max())
    return _top(per, "city", "n")


def same_city(f: Facts) -> ir.Table:
    """`home_city` when every store order of the window was in the member's city,
    `elsewhere` when one was not. The warehouse holds no address, so a member's city is
    that of the store of their first store order up to T (earliest, then the smallest
    order id), as in the same-city KPI (`analytics.kpis.same_city`). Members without a
    store order in the window are left out."""
    served = f.orders.join(f.stores, "store_id")
    first = served.group_by("member_id").aggregate(first_at=served.at.min())
    at_first = served.join(first, "member_id")
    at_first = at_first.filter(at_first.at == at_first.first_at)
    home = at_first.group_by("member_id").aggregate(home=at_first.city.argmin(at_first.order_id))
    window = _within(served, f, PREFERENCE_DAYS).join(home, "member_id")
    away = (window.city != window.home).cast("int64")
    per = window.group_by("member_id").aggregate(away=away.sum())
    value = ibis.ifelse(per.away > 0, "elsewhere", "home_city")
    return per.select("member_id", value=value.cast("string"))


def preferred_brand(f: Facts) -> ir.Table:
    o = _within(f.orders, f, PREFERENCE_DAYS)
    per = o.group_by(["member_id", "brand_id"]).aggregate(n=o.paid_fen.sum(), last=o.at.max())
    return _top(per.filter(per.n > 0), "brand_id", "n")


def preferred_category(f: Facts) -> ir.Table:
    lines = _within(f.lines, f, PREFERENCE_DAYS)
    lines = lines.join(f.products.select("sku", "category"), "sku")
    per = lines.group_by(["member_id", "category"]).aggregate(
        n=lines.amount_fen.sum(), last=lines.at.max()
    )
    return _top(per.filter(per.n > 0), "category", "n")


def discount_sensitivity(f: Facts) -> ir.Table:
    o = _within(f.orders, f, PREFERENCE_DAYS)
    per = o.group_by("member_id").aggregate(n=o.count(), d=(o.discount_fen > 0).cast("int64").sum())
    value = ibis.cases(
        (per.d == 0, "none"),
        (per.d * 3 < per.n, "low"),
        (per.d * 3 < per.n * 2, "mid"),
        else_="high",
    )
    return per.select("member_id", value=value.cast("string"))


def price_band(f: Facts) -> ir.Table:
    lines = _within(f.lines, f, PREFERENCE_DAYS)
    lines = lines.filter(lines.qty > 0)
    per = lines.group_by("member_id").aggregate(q=lines.qty.sum(), s=lines.amount_fen.sum())
    per = per.mutate(avg=per.s.cast("float64") / per.q.cast("float64"))
    # rank: 0-based, equal prices share the lowest; n: the buyers ranked
    per = per.mutate(r=ibis.rank().over(order_by=per.avg), n=per.member_id.count().over())
    value = ibis.cases((per.r * 3 < per.n, "low"), (per.r * 3 < per.n * 2, "mid"), else_="high")
    return per.select("member_id", value=value.cast("string"))


def multi_brand(f: Facts) -> ir.Table:
    per = f.orders.group_by("member_id").aggregate(n=f.orders.brand_id.nunique())
    per = per.filter(per.n >= 2)
    return per.select("member_id", value=per.n.cast("string"))


def online_offline(f: Facts) -> ir.Table:
    o = f.orders
    online = o.channel.isin(f.online_channels)
    per = o.group_by("member_id").aggregate(
        on=online.cast("int64").sum(), off=(~online).cast("int64").sum()
    )
    per = per.filter((per.on > 0) & (per.off > 0))
    return per.select("member_id", value=ibis.null("string"))


NEW_DAYS = 90


def customer_age(f: Facts) -> ir.Table:
    per = f.orders.group_by("member_id").aggregate(first=f.orders.at.min())
    value = ibis.ifelse(per["first"] > f.t - NEW_DAYS * DAY, "new", "existing")
    return per.select("member_id", value=value.cast("string"))


FREQUENCY_BANDS = ((1, "1"), (3, "2-3"), (9, "4-9"))


def frequency(f: Facts) -> ir.Table:
    return _counted(_within(f.orders, f, PREFERENCE_DAYS), FREQUENCY_BANDS, "10+")


RECENCY_BANDS = ((30, "0-30"), (90, "31-90"), (180, "91-180"), (365, "181-365"))


def recency(f: Facts) -> ir.Table:
    per = f.orders.group_by("member_id").aggregate(last=f.orders.at.max())
    # floor of a float division: integer division rounds differently by engine
    days = ((f.t - per["last"]) / DAY).floor().cast("int64")
    return per.select("member_id", value=_bands(days, RECENCY_BANDS, "366+"))


EVENT_BANDS = ((2, "1-2"), (9, "3-9"))


def event_count(event_type: str, days: int) -> Compute:
    """Members with `event_type` events within `days`, banded by how many."""
    if not 0 < days <= EVENT_WINDOW_DAYS:  # the facts hold no older events
        raise ValueError(f"an event tag reads at most {EVENT_WINDOW_DAYS} days, not {days}")

    def compute(f: Facts) -> ir.Table:
        e = _within(f.events, f, days)
        return _counted(e.filter(e.type == event_type), EVENT_BANDS, "10+")

    compute.__name__ = f"event_count_{event_type}"
    return compute
