"""Orders, order lines and refunds of one chunk of persons, fully vectorised.

A buyer's number of orders follows the churn-by-order-count curve (drawn at once by
inverting its survival function); gaps between orders are gamma distributed in the
calendar's operational time, so seasonality and promotion spikes shape repeat orders
too. Orders that would fall after the window are dropped: the data is censored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from siyu.demo.calendar import DAY, Calendar
from siyu.demo.catalog import Catalog
from siyu.demo.config import MAX_ORDERS_PER_PERSON, GeneratorConfig
from siyu.demo.ids import (
    CARD,
    CHANNELS,
    DOUYIN,
    DOUYIN_OPEN_ID,
    JD,
    JD_PIN,
    MINIPROGRAM,
    OPENID,
    PHONE,
    POS,
    TMALL,
    TMALL_OUID,
)
from siyu.demo.people import CARD_SHARED, CARD_TYPO, N_BRANDS, NO_TIME, Persons, pick_brand
from siyu.demo.rand import F64, I64, Rng, group_starts, rank_in_group

BUY_CHANNELS = np.array([POS, MINIPROGRAM, TMALL, JD, DOUYIN], dtype=np.int64)
def survival(config: GeneratorConfig) -> F64:
    """P(a buyer makes at least k orders) for k = 1..MAX_ORDERS_PER_PERSON."""
    keep = 1.0 - np.array(config.churn_curve(MAX_ORDERS_PER_PERSON - 1))
    return np.concatenate([[1.0], np.cumprod(keep)])


@dataclass(frozen=True)
class Buying:
    """Everything bought by one chunk, plus per-person facts for accounts and truth."""

    orders: Orders
    lines: Lines
    refunds: Refunds
    n_planned: I64  # orders the person would make without censoring
    n_orders: I64  # orders inside the window (not counting cancelled twins)
    first_at: I64  # first order, -1 if none
    last_at: I64
    first_use: I64  # (n, channels): first order on each channel, NO_TIME if none
    first_pos: I64  # (n, brands): first POS order at each brand, NO_TIME if none


def home_store(rng: Rng, catalog: Catalog, persons: Persons, local: I64, brand: I64) -> I64:
    """The person's usual store of a brand in their city."""
    city = persons.city[local]
    pick = rng.below("home_store", catalog.home_cnt[brand, city], persons.pid[local], brand)
    return catalog.home_off[brand, city] + pick


def pick_guide(rng: Rng, catalog: Catalog, store: I64, stream: str, *keys: I64) -> I64:
    """A guide of `store` (a physical store), weighted by skill."""
    off, cnt = catalog.guide_off[store], catalog.guide_cnt[store]
    cum = catalog.guide_cum
    before = np.where(off > 0, cum[np.maximum(off - 1, 0)], 0.0)
    x = before + rng.u(stream, *keys) * (cum[off + cnt - 1] - before)
    return np.minimum(np.searchsorted(cum, x, side="right"), off + cnt - 1).astype(np.int64)


def buy(
    rng: Rng, config: GeneratorConfig, cal: Calendar, catalog: Catalog, p: Persons, surv: F64
) -> Buying:
    """Orders, lines and refunds of the persons in `p`."""
    n = p.n
    n_planned = np.where(
        p.buyer, np.searchsorted(-surv, -rng.u("n_orders", p.pid), side="left"), 0
    ).astype(np.int64)
    d0 = rng.choice("first_day", cal.first_cum, p.pid)
    tau0 = cal.op_clock[d0] + rng.u("first_frac", p.pid) * cal.weight[d0]

    person = np.repeat(np.arange(n, dtype=np.int64), n_planned)
    k = rank_in_group(n_planned)
    gpid = p.pid[person]
    gap = np.zeros(len(k))
    for s in range(config.gap_shape):
        gap += rng.exp(f"gap.{s}", gpid, k)
    gap *= (k > 0) * p.rate[person] * (config.mean_gap_days / config.gap_shape)
    cs = np.cumsum(gap)
    starts = group_starts(n_planned)
    tau = tau0[person] + cs - np.repeat(cs[starts[n_planned > 0]], n_planned[n_planned > 0])
    day = cal.real_day(tau)
    keep = day < cal.days
    person, k, gpid, day = person[keep], k[keep], gpid[keep], day[keep]
    n_orders = np.bincount(person, minlength=n).astype(np.int64)

    # channel among the person's buying channels
    w = np.stack([4.0 * (p.cards > 0), 2.0 * p.mp, 1.2 * p.tmall, 0.8 * p.jd, 0.8 * p.douyin], 1)
    cum = np.cumsum(w, axis=1)[person]
    x = rng.u("channel", gpid, k) * cum[:, -1]
    channel = BUY_CHANNELS[(cum <= x[:, None]).sum(axis=1).clip(0, 4)]
    is_pos = channel == POS
    mask = np.where(is_pos, p.cards[person], p.brands[person])
    brand = pick_brand(mask, rng.u("brand", gpid, k))
    bday = cal.brand_day[day]
    tilt = (bday >= 0) & ((mask >> np.maximum(bday, 0)) & 1 == 1) & rng.flag("bday", 0.6, gpid, k)
    brand = np.where(tilt, bday, brand)
    hour = np.where(
        is_pos,
        rng.choice("hour_store", cal.hours_store, gpid, k),
        rng.choice("hour_online", cal.hours_online, gpid, k),
    )
    ordered_at = (cal.day0 + day) * DAY + hour * 3600 + rng.below("second", 3600, gpid, k)

    order = np.lexsort((ordered_at, person))
    person, k, gpid, day = person[order], k[order], gpid[order], day[order]
    channel, brand, ordered_at, is_pos = (
        channel[order],
        brand[order],
        ordered_at[order],
        is_pos[order],
    )
    m = len(person)
    first = rank_in_group(n_orders) == 0

    # store and guide
    home = home_store(rng, catalog, p, person, brand)
    city = p.city[person]
    r = rng.u("store", gpid, k)
    other = catalog.home_off[brand, city] + rng.below(
        "other_store", catalog.home_cnt[brand, city], gpid, k
    )
    first_store = catalog.home_off[:, 0]  # a brand's physical stores are contiguous
    n_stores = catalog.home_off[:, -1] + catalog.home_cnt[:, -1] - first_store
    travel = first_store[brand] + rng.below("travel_store", n_stores[brand], gpid, k)
    pos_store = np.where(r < 0.85, home, np.where(r < 0.97, other, travel))
    ware = catalog.warehouse[brand, city]
    online_store = np.where(
        channel == MINIPROGRAM,
        np.where(r < 0.5, home, ware),
        np.where((channel == DOUYIN) & (r < 0.5), -1, ware),
    )
    store = np.where(is_pos, pos_store, online_store)
    guided = np.where(is_pos, r < 0.85, (channel == MINIPROGRAM) & (r < 0.15))
    guided &= store >= 0
    guided &= catalog.guide_cnt[np.maximum(store, 0)] > 0
    guide = np.where(
        guided, pick_guide(rng, catalog, np.where(guided, store, 0), "guide", gpid, k), -1
    )

    lines, total, coupon, discount = fill_baskets(
        rng, config, cal, catalog, p, person, k, brand, channel, day, ordered_at, first
    )

    # buyer identifier
    card_kind = p.card_phone[person, brand]
    by_phone = (
        is_pos
        & (card_kind != CARD_TYPO)
        & rng.flag("pos_phone", config.pos_phone_order_rate, gpid, k)
    )
    shared = card_kind == CARD_SHARED
    partner = np.maximum(p.partner[person], 0)
    phone = np.where(shared, p.phone1[partner], p.phone_at(person, ordered_at))
    buyer_type = np.select(
        [is_pos & by_phone, is_pos, channel == MINIPROGRAM, channel == TMALL, channel == JD],
        [PHONE, CARD, OPENID, TMALL_OUID, JD_PIN],
        DOUYIN_OPEN_ID,
    )
    buyer_key = np.select(
        [is_pos & by_phone, is_pos, channel == MINIPROGRAM],
        [phone, gpid * 4 + brand, gpid * 2],
        gpid,
    )
    buyer_owner = np.where(is_pos & by_phone & shared, p.pid[partner], gpid)
    paid_at = ordered_at + np.where(is_pos, 0, rng.below("pay_delay", 600, gpid, k) + 10)

    orders = Orders(
        person=person,
        slot=k,
        channel=channel,
        brand=brand,
        ordered_at=ordered_at,
        paid_at=paid_at,
        status=np.full(m, PAID),
        store=store,
        guide=guide,
        coupon=coupon,
        total=total,
        discount=discount,
        paid=total - discount,
        buyer_type=buyer_type,
        buyer_key=buyer_key,
        buyer_owner=buyer_owner,
    )
    first_at = np.full(n, -1, dtype=np.int64)
    last_at = np.full(n, -1, dtype=np.int64)
    if m:
        first_at[person[first]] = ordered_at[first]
        last_at[person] = ordered_at  # sorted: the last write per person wins
    orders, lines = add_cancelled(rng, config, cal, p.pid, orders, lines)
    orders, refunds = refund(rng, config, cal, p.pid, orders, lines)
    return Buying(
        orders=orders,
        lines=lines,
        refunds=refunds,
        n_planned=n_planned,
        n_orders=n_orders,
        first_at=first_at,
        last_at=last_at,
        first_use=_first_by(orders.person, orders.channel, orders.ordered_at, n, len(CHANNELS)),
        first_pos=_first_by(
            orders.person[orders.channel == POS],
            orders.brand[orders.channel == POS],
            orders.ordered_at[orders.channel == POS],
            n,
            N_BRANDS,
        ),
    )


def _first_by(person: I64, group: I64, t: I64, n: int, n_groups: int) -> I64:
    """(n, n_groups) earliest `t` per person and group, NO_TIME where none."""
    out = np.full(n * n_groups, NO_TIME, dtype=np.int64)
    np.minimum.at(out, person * n_groups + group, t)
    return out.reshape(n, n_groups)


