"""What is in each order: 1-4 lines of the brand's SKUs, promotion prices and coupons.

Popular, cheap items sell most (see catalog); on promotion days half the lines carry a
15% promotion price. Brand channels (POS, mini-program) redeem coupons: a new-member
coupon on the first order, the promotion's coupon on its day, a birthday coupon in the
birth month, else spend-more-save-more; marketplaces give a platform discount instead.
"""

from __future__ import annotations

import numpy as np

from siyu.demo import words
from siyu.demo.births import NO_BIRTH
from siyu.demo.calendar import DAY, PROMOTIONS, Calendar
from siyu.demo.catalog import Catalog
from siyu.demo.config import GeneratorConfig
from siyu.demo.facts import Lines
from siyu.demo.ids import MINIPROGRAM, POS
from siyu.demo.people import N_BRANDS, Persons
from siyu.demo.rand import I64, Bool, Rng, rank_in_group

_COUPON_MIN = np.array([c[1] for c in words.COUPONS], dtype=np.int64)
_COUPON_OFF = np.array([c[2] for c in words.COUPONS], dtype=np.int64)
_NEW, _FULL50, _FULL100, _BDAY = 0, 1, 2, 7
# coupon index of each promotion (by PROMOTIONS index), -1: none
_PROMO_COUPON = np.array(
    [next((i for i, c in enumerate(words.COUPONS) if c[3] == p[2]), -1) for p in PROMOTIONS] + [-1],
    dtype=np.int64,
)


def fill_baskets(
    rng: Rng,
    config: GeneratorConfig,
    cal: Calendar,
    catalog: Catalog,
    p: Persons,
    person: I64,
    k: I64,
    brand: I64,
    channel: I64,
    day: I64,
    ordered_at: I64,
    first: Bool,
) -> tuple[Lines, I64, I64, I64]:
    """Lines of each order, and per order: total, coupon index (-1: none) and discount."""
    m = len(person)
    gpid = p.pid[person]
    is_pos = channel == POS
    lines_cum = catalog.lines_cum[brand]
    n_lines = 1 + (lines_cum[:, :-1] <= rng.u("n_lines", gpid, k)[:, None]).sum(axis=1)
    l_order = np.repeat(np.arange(m, dtype=np.int64), n_lines)
    line_no = rank_in_group(n_lines) + 1
    l_pid, l_k, l_brand = gpid[l_order], k[l_order], brand[l_order]
    u_sku = rng.u("sku", l_pid, l_k, line_no)
    sku = np.zeros(len(l_order), dtype=np.int64)
    for b in range(N_BRANDS):
        sel = l_brand == b
        c = catalog.sku_cum[b]
        sku[sel] = catalog.sku_off[b] + np.minimum(
            np.searchsorted(c, u_sku[sel] * c[-1]), len(c) - 1
        )
    qty = 1 + (catalog.qty_cum[l_brand][:, :-1] <= rng.u("qty", l_pid, l_k, line_no)[:, None]).sum(
        axis=1
    )
    price = catalog.sku_price[sku]
    promo_day = cal.promo[day] >= 0
    promo_price = promo_day[l_order] & rng.flag("promo_price", 0.5, l_pid, l_k, line_no)
    unit = np.where(promo_price, (price * 85 + 500) // 1000 * 10, price)
    amount = qty * unit
    total = np.bincount(l_order, weights=amount, minlength=m).astype(np.int64)

    # coupons (brand channels) and platform discounts (marketplaces)
    own = is_pos | (channel == MINIPROGRAM)
    has_coupon = own & rng.flag(
        "coupon", np.where(first, 2 * config.coupon_rate, config.coupon_rate), gpid, k
    )
    promo_coupon = _PROMO_COUPON[cal.promo[day]]
    birthday = (p.birth[person] != NO_BIRTH) & (_month(p.birth[person] * DAY) == _month(ordered_at))
    coupon = np.where(
        first,
        _NEW,
        np.where(
            promo_coupon >= 0,
            promo_coupon,
            np.where(birthday, _BDAY, np.where(total >= 10000, _FULL100, _FULL50)),
        ),
    )
    coupon = np.where(has_coupon & (total >= _COUPON_MIN[coupon]), coupon, -1)
    discount = np.where(coupon >= 0, _COUPON_OFF[np.maximum(coupon, 0)], 0)
    platform = ~own & promo_day & (total >= 10000)
    discount = np.where(platform, total // 10, discount)

    return (
        Lines(order=l_order, line_no=line_no, sku=sku, qty=qty, unit=unit, amount=amount),
        total,
        coupon,
        discount,
    )


def _month(local_seconds: I64) -> I64:
    return local_seconds.astype("datetime64[s]").astype("datetime64[M]").astype(np.int64) % 12
