"""Orders, order lines and refunds of one chunk of persons, fully vectorised.

A buyer's number of orders follows the churn-by-order-count curve (drawn at once by
inverting its survival function); gaps between orders are gamma distributed in the
calendar's operational time, so seasonality and promotion spikes shape repeat orders
too. Orders that would fall after the window are dropped: the data is censored.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from siyu.demo.aftersale import add_cancelled, refund
from siyu.demo.basket import fill_baskets
from siyu.demo.calendar import DAY, Calendar
from siyu.demo.catalog import Catalog
from siyu.demo.config import MAX_ORDERS_PER_PERSON, GeneratorConfig
from siyu.demo.facts import PAID, Lines, Orders, Refunds
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
from siyu.demo.rand import F64, I64, Bool, Rng, group_starts, rank_in_group

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
    joined_late: Bool  # (n, brands): the card was issued just after the first POS order


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
    n_planned, person, k, day = _schedule(rng, config, cal, p, surv)
    n_orders = np.bincount(person, minlength=n).astype(np.int64)
    gpid = p.pid[person]

    # channel among the person's buying channels, brand among those it sells; WeChat
    # users without a card buy at the till too, as non-members paying by WeChat Pay
    walk_in = (p.cards == 0) & p.mp
    till = 4.0 * ((p.cards > 0) + config.non_member_till_weight * walk_in)
    w = np.stack([till, 2.0 * p.mp, 1.2 * p.tmall, 0.8 * p.jd, 0.8 * p.douyin], 1)
    cum = np.cumsum(w, axis=1)[person]
    x = rng.u("channel", gpid, k) * cum[:, -1]
    channel = BUY_CHANNELS[(cum <= x[:, None]).sum(axis=1).clip(0, 4)]
    is_pos = channel == POS
    till_brands = np.where(p.cards > 0, p.cards, p.brands)  # a card holder's card brands
    mask = np.where(is_pos, till_brands[person], p.brands[person])
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
    person, k, day, channel, brand, ordered_at = (
        a[order] for a in (person, k, day, channel, brand, ordered_at)
    )
    first = rank_in_group(n_orders) == 0
    store, guide = _place(rng, catalog, p, person, k, brand, channel)
    lines, total, coupon, discount = fill_baskets(
        rng, config, cal, catalog, p, person, k, brand, channel, day, ordered_at, first
    )
    # card holders on WeChat who joined at the till after paying for their first purchase
    # there as non-members (the card is issued just after it: `accounts`)
    has_card = (p.cards[:, None] >> np.arange(N_BRANDS)) & 1 == 1
    joined_late = np.stack(
        [rng.flag("join_after_first_till", config.join_after_first_till_rate, p.pid, b)
         for b in range(N_BRANDS)], 1,
    ) & has_card & p.mp[:, None]  # fmt: skip
    pos_first = _first_by(person[is_pos], brand[is_pos], ordered_at[is_pos], n, N_BRANDS)
    wechat = is_pos & (
        (p.cards[person] == 0)
        | (joined_late[person, brand] & (ordered_at == pos_first[person, brand]))
    )
    buyer_type, buyer_key, owner = _buyer(
        rng, config, p, person, k, brand, channel, ordered_at, wechat
    )
    delay = np.where(channel == POS, 0, rng.below("pay_delay", 600, p.pid[person], k) + 10)
    orders = Orders(
        person=person,
        slot=k,
        channel=channel,
        brand=brand,
        ordered_at=ordered_at,
        paid_at=ordered_at + delay,
        status=np.full(len(person), PAID),
        store=store,
        guide=guide,
        coupon=coupon,
        total=total,
        discount=discount,
        paid=total - discount,
        buyer_type=buyer_type,
        buyer_key=buyer_key,
        buyer_owner=owner,
    )
    first_at = np.full(n, -1, dtype=np.int64)
    last_at = np.full(n, -1, dtype=np.int64)
    first_at[person[first]] = ordered_at[first]
    last_at[person] = ordered_at  # sorted: the last write per person wins
    orders, lines = add_cancelled(rng, config, cal, p.pid, orders, lines)
    orders, refunds = refund(rng, config, cal, p.pid, orders, lines)
    pos = orders.channel == POS
    first_use = _first_by(orders.person, orders.channel, orders.ordered_at, n, len(CHANNELS))
    # paying by WeChat at the till uses the mini-program's openid: it exists by then
    paid_wechat = _first_by(
        orders.person[orders.buyer_type == OPENID],
        np.zeros(int((orders.buyer_type == OPENID).sum()), dtype=np.int64),
        orders.ordered_at[orders.buyer_type == OPENID],
        n,
        1,
    )[:, 0]
    first_use[:, MINIPROGRAM] = np.minimum(first_use[:, MINIPROGRAM], paid_wechat)
    return Buying(
        orders=orders,
        lines=lines,
        refunds=refunds,
        n_planned=n_planned,
        n_orders=n_orders,
        first_at=first_at,
        last_at=last_at,
        first_use=first_use,
        first_pos=_first_by(
            orders.person[pos], orders.brand[pos], orders.ordered_at[pos], n, N_BRANDS
        ),
        joined_late=joined_late,
    )


def _schedule(
    rng: Rng, config: GeneratorConfig, cal: Calendar, p: Persons, surv: F64
) -> tuple[I64, I64, I64, I64]:
    """(orders planned per person, then per order kept in the window: person, k, day).

    The number of orders inverts the survival function of the churn curve with one
    uniform; order k >= 1 follows order k-1 by a gamma gap in operational time.
    """
    n_planned = np.where(
        p.buyer, np.searchsorted(-surv, -rng.u("n_orders", p.pid), side="left"), 0
    ).astype(np.int64)
    d0 = rng.choice("first_day", cal.first_cum, p.pid)
    tau0 = cal.op_clock[d0] + rng.u("first_frac", p.pid) * cal.weight[d0]
    person = np.repeat(np.arange(p.n, dtype=np.int64), n_planned)
    k = rank_in_group(n_planned)
    gpid = p.pid[person]
    gap = np.zeros(len(k))
    for s in range(config.gap_shape):
        gap += rng.exp(f"gap.{s}", gpid, k)
    gap *= (k > 0) * p.rate[person] * (config.mean_gap_days / config.gap_shape)
    cs = np.cumsum(gap)
    buyers = n_planned > 0
    tau = tau0[person] + cs - np.repeat(cs[group_starts(n_planned)[buyers]], n_planned[buyers])
    day = cal.real_day(tau)
    keep = day < cal.days  # censoring: later orders are never seen
    return n_planned, person[keep], k[keep], day[keep]


def _place(
    rng: Rng, catalog: Catalog, p: Persons, person: I64, k: I64, brand: I64, channel: I64
) -> tuple[I64, I64]:
    """Store (-1: none) and guide (-1: none) of each order.

    Tills: the home store mostly, another store in town or one while travelling. Online:
    the home store (same-city delivery) or the regional warehouse; Douyin vouchers have
    no store. Guides serve most till orders and some mini-program ones they shared.
    """
    gpid, city = p.pid[person], p.city[person]
    is_pos = channel == POS
    home = home_store(rng, catalog, p, person, brand)
    r = rng.u("store", gpid, k)
    other = catalog.home_off[brand, city]
    other = other + rng.below("other_store", catalog.home_cnt[brand, city], gpid, k)
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
    guided &= (store >= 0) & (catalog.guide_cnt[np.maximum(store, 0)] > 0)
    picked = pick_guide(rng, catalog, np.where(guided, store, 0), "guide", gpid, k)
    return store, np.where(guided, picked, -1)


def _buyer(
    rng: Rng, config: GeneratorConfig, p: Persons, person: I64, k: I64, brand: I64,
    channel: I64, ordered_at: I64, wechat: Bool,
) -> tuple[I64, I64, I64]:  # fmt: skip
    """(type, key, true owner) of each order's buyer identifier.

    The till uses the card, or looks the member up by the phone on file: the person's
    current phone, or the household phone the card was registered with (whose owner is
    then the buyer of record). A non-member at the till (`wechat`) pays by WeChat Pay:
    only the payer's openid is known. Online channels use their own account id.
    """
    gpid = p.pid[person]
    is_pos = channel == POS
    card_kind = p.card_phone[person, brand]
    by_phone: Bool = (
        is_pos
        & ~wechat
        & (card_kind != CARD_TYPO)
        & rng.flag("pos_phone", config.pos_phone_order_rate, gpid, k)
    )
    shared = card_kind == CARD_SHARED
    partner = np.maximum(p.partner[person], 0)
    phone = np.where(shared, p.phone1[partner], p.phone_at(person, ordered_at))
    buyer_type = np.select(
        [wechat, by_phone, is_pos, channel == MINIPROGRAM, channel == TMALL, channel == JD],
        [OPENID, PHONE, CARD, OPENID, TMALL_OUID, JD_PIN],
        DOUYIN_OPEN_ID,
    )
    buyer_key = np.select(
        [wechat, by_phone, is_pos, channel == MINIPROGRAM],
        [gpid * 2, phone, p.card_key[person, brand], gpid * 2],
        gpid,
    )
    return buyer_type, buyer_key, np.where(by_phone & shared, p.pid[partner], gpid)


def _first_by(person: I64, group: I64, t: I64, n: int, n_groups: int) -> I64:
    """(n, n_groups) earliest `t` per person and group, NO_TIME where none."""
    out = np.full(n * n_groups, NO_TIME, dtype=np.int64)
    np.minimum.at(out, person * n_groups + group, t)
    return out.reshape(n, n_groups)
