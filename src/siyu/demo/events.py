"""Behaviour events: shopping funnels, browsing that does not buy, QR scans, WeCom, follows.

Each event carries the identifier of the channel it happened on (openid, douyin_open_id,
external_userid, ...) and never happens before that account exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from siyu.demo.accounts import Accounts
from siyu.demo.buying import Buying, home_store, pick_guide
from siyu.demo.calendar import DAY, PROMOTIONS, Calendar
from siyu.demo.catalog import Catalog
from siyu.demo.config import GeneratorConfig
from siyu.demo.ids import (
    DOUYIN,
    DOUYIN_OPEN_ID,
    EXTERNAL_USERID,
    MINIPROGRAM,
    OFFICIAL_ACCOUNT,
    OPENID,
    POS,
    WECOM,
)
from siyu.demo.people import MASK_PICK, Persons, pick_brand
from siyu.demo.rand import I64, Rng, group_starts, rank_in_group
from siyu.demo.truthlog import TruthLog
from siyu.orders.models import EVENT_TYPES

# The canonical vocabulary; the index of each type is its code in the generator's arrays.
(
    VIEW,
    ADD_TO_CART,
    ORDER,
    PAY,
    SHARE,
    SCAN,
    WECOM_ADD,
    WECOM_REMOVE,
    FOLLOW,
    UNFOLLOW,
    SIGN_IN,
    READ,
    LIKE,
    SURVEY,
) = range(len(EVENT_TYPES))
MAX_EVENTS_PER_PERSON = 4096  # event ids hold the person's event rank in 12 bits
_COLUMNS = (
    "person",
    "type",
    "channel",
    "id_type",
    "id_key",
    "t",
    "sku",
    "store",
    "guide",
    "order",
    "scene",
)


def scene_values(catalog: Catalog) -> list[str]:
    """Every QR scene value: store codes, guide cards, then posters (see `scene_index`)."""
    return (
        [f"store_qr:{s}" for s in catalog.store_ids]
        + [f"guide_card:{g}" for g in catalog.guide_ids]
        + [f"poster:{p[2]}" for p in PROMOTIONS]
    )


@dataclass
class EventRows:
    """Event columns appended block by block."""

    cols: dict[str, list[I64]] = field(default_factory=dict)

    def add(
        self,
        person: I64,
        type_code: int,
        channel: I64 | int,
        id_type: I64 | int,
        id_key: I64,
        t: I64,
        **context: I64,
    ) -> None:
        """Append events; context columns (sku, store, guide, order, scene) default to none."""
        n = len(person)
        values = {
            "person": person,
            "type": type_code,
            "channel": channel,
            "id_type": id_type,
            "id_key": id_key,
            "t": t,
        }
        for name in _COLUMNS:
            v = values.get(name, context.get(name, -1))
            self.cols.setdefault(name, []).append(
                np.broadcast_to(np.asarray(v, dtype=np.int64), (n,))
            )

    def table(self) -> dict[str, I64]:
        """All columns sorted by person, time and type."""
        cols = {k: np.concatenate(v) for k, v in self.cols.items()}
        person, t = cols["person"], cols["t"]
        t0 = int(t.min()) if len(t) else 0
        if len(t) and int(t.max()) - t0 < 1 << 27 and int(person.max()) < 1 << 31:
            # one int64 key sorts much faster than three (times span ~4 years < 2**27 s)
            order = np.argsort((person << 32) | ((t - t0) << 4) | cols["type"], kind="stable")
        else:
            order = np.lexsort((cols["type"], t, person))
        return {k: v[order] for k, v in cols.items()}


def build_events(
    rng: Rng,
    config: GeneratorConfig,
    cal: Calendar,
    catalog: Catalog,
    p: Persons,
    b: Buying,
    a: Accounts,
    log: TruthLog,
) -> dict[str, I64]:
    """Events of one chunk, sorted by person and time, with a per-person `rank` column."""
    pid, n = p.pid, p.n
    hi = cal.end_s - 60
    rows = EventRows()
    everyone = np.arange(n, dtype=np.int64)
    o, lines = b.orders, b.lines
    n_lines = np.bincount(lines.order, minlength=len(o.person))
    first_sku = lines.sku[np.minimum(group_starts(n_lines), max(len(lines.sku) - 1, 0))]

    # shopping funnel of online orders (cancelled twins stop before paying)
    idx = np.flatnonzero(o.channel != POS)
    who, keys = o.person[idx], (pid[o.person[idx]], o.slot[idx])
    ident = {"channel": o.channel[idx], "id_type": o.buyer_type[idx], "id_key": o.buyer_key[idx]}
    t = o.ordered_at[idx]
    # views and carts only where the brand sees its shoppers browse (its mini-program,
    # Douyin); Tmall, JD and Youzan hand over the orders alone
    seen = np.isin(o.channel[idx], (MINIPROGRAM, DOUYIN))
    shown = {k: v[seen] for k, v in ident.items()}
    viewed = t - 180 - rng.below("ev_view", 2220, *keys)
    carted = t - 30 - rng.below("ev_cart", 140, *keys)
    rows.add(who[seen], VIEW, t=viewed[seen], sku=first_sku[idx][seen], **shown)
    rows.add(who[seen], ADD_TO_CART, t=carted[seen], sku=first_sku[idx][seen], **shown)
    ctx = {"store": o.store[idx], "guide": o.guide[idx], "order": idx}
    rows.add(who, ORDER, t=t, **ctx, **ident)
    paid = o.paid_at[idx] >= 0
    rows.add(
        who[paid], PAY, t=o.paid_at[idx][paid], **{k: v[paid] for k, v in (ctx | ident).items()}
    )
    mp_paid = idx[paid & (o.channel[idx] == MINIPROGRAM)]
    w = mp_paid[rng.flag("share_order", 0.05, pid[o.person[mp_paid]], o.slot[mp_paid])]
    rows.add(
        o.person[w],
        SHARE,
        MINIPROGRAM,
        OPENID,
        pid[o.person[w]] * 2,
        o.paid_at[w] + 60 + rng.below("share_after", 3600, pid[o.person[w]], o.slot[w]),
        sku=first_sku[w],
    )

    _browsing(rng, cal, catalog, p, b, a, rows)

    # QR scans that brought people into the mini-program, and posters around promotions
    w = everyone[p.mp & (p.cards > 0) & rng.flag("scan_store", 0.4, pid)]
    store = home_store(rng, catalog, p, w, MASK_PICK[p.cards[w], 0])
    rows.add(w, SCAN, MINIPROGRAM, OPENID, pid[w] * 2, a.mp_at[w], store=store, scene=store)
    n_stores, n_guides = len(catalog.store_ids), len(catalog.guide_ids)
    promo_days = np.flatnonzero(cal.promo >= 0)
    mp_people = everyone[p.mp]
    hit = rng.flag("poster", 0.08, pid[mp_people][:, None], promo_days[None, :])
    w, d = np.nonzero(hit)
    who, day = mp_people[w], promo_days[d]
    t = (cal.day0 + day - rng.below("poster_lead", 3, pid[who], day)) * DAY
    t += (10 + rng.below("poster_hour", 12, pid[who], day)) * 3600
    ok = (t >= a.mp_at[who]) & (t < hi)
    scene = n_stores + n_guides + cal.promo[day]
    rows.add(who[ok], SCAN, MINIPROGRAM, OPENID, pid[who[ok]] * 2, t[ok], scene=scene[ok])

    # WeCom: a guide's card is scanned, the contact added, sometimes removed later
    w = everyone[p.wecom]
    store = home_store(rng, catalog, p, w, p.main_brand[w])
    guide = pick_guide(rng, catalog, store, "wecom_guide", pid[w])
    t = a.wecom_at[w]
    rows.add(
        w, SCAN, WECOM, EXTERNAL_USERID, pid[w], t, store=store, guide=guide, scene=n_stores + guide
    )
    rows.add(w, WECOM_ADD, WECOM, EXTERNAL_USERID, pid[w], t + 20, store=store, guide=guide)
    t2 = t + (rng.exp("wecom_remove_at", pid[w]) * 150 * DAY).astype(np.int64)
    gone = rng.flag("wecom_remove", 0.15, pid[w]) & (t2 < hi)
    rows.add(
        w[gone], WECOM_REMOVE, WECOM, EXTERNAL_USERID, pid[w[gone]], t2[gone], guide=guide[gone]
    )

    # official account follows, mini-program sign-in streaks
    w = everyone[p.oa]
    rows.add(w, FOLLOW, OFFICIAL_ACCOUNT, OPENID, pid[w] * 2 + 1, a.oa_at[w])
    t2 = a.oa_at[w] + (rng.exp("unfollow_at", pid[w]) * 200 * DAY).astype(np.int64)
    gone = rng.flag("unfollow", 0.2, pid[w]) & (t2 < hi)
    rows.add(w[gone], UNFOLLOW, OFFICIAL_ACCOUNT, OPENID, pid[w[gone]] * 2 + 1, t2[gone])
    w = everyone[p.mp & rng.flag("sign_in", 0.2, pid)]
    streak = 1 + rng.below("sign_in_days", 10, pid[w])
    who = np.repeat(w, streak)
    j = rank_in_group(streak)
    start = a.mp_at[who] + (rng.uniform("sign_in_start", 0, 60, pid[who]) * DAY).astype(np.int64)
    t = start + j * DAY + rng.below("sign_in_jitter", 3600, pid[who], j)
    ok = t < hi
    rows.add(who[ok], SIGN_IN, MINIPROGRAM, OPENID, pid[who[ok]] * 2, t[ok])

    # official-account readers: articles read over the following year, about a third of them
    # liked; now and then a questionnaire answered in the mini-program (Bestore's social
    # and activity tags read these)
    w = everyone[p.oa & rng.flag("reader", 0.5, pid)]
    reads = 1 + rng.below("reads", 24, pid[w])
    who = np.repeat(w, reads)
    j = rank_in_group(reads)
    t = a.oa_at[who] + (rng.uniform("read_at", 0, 365, pid[who], j) * DAY).astype(np.int64)
    ok = t < hi
    rows.add(who[ok], READ, OFFICIAL_ACCOUNT, OPENID, pid[who[ok]] * 2 + 1, t[ok])
    liked = ok & rng.flag("like", 0.3, pid[who], j)
    rows.add(who[liked], LIKE, OFFICIAL_ACCOUNT, OPENID, pid[who[liked]] * 2 + 1, t[liked] + 40)
    w = everyone[p.mp & rng.flag("survey", 0.15, pid)]
    t = a.mp_at[w] + (rng.uniform("survey_at", 0, 300, pid[w]) * DAY).astype(np.int64)
    ok = t < hi
    rows.add(w[ok], SURVEY, MINIPROGRAM, OPENID, pid[w[ok]] * 2, t[ok])

    ev = rows.table()
    ev["rank"] = rank_in_group(np.bincount(ev["person"], minlength=n).astype(np.int64))
    keep = ev["rank"] < MAX_EVENTS_PER_PERSON
    ev = {k: v[keep] for k, v in ev.items()}
    log.add(ev["id_type"], ev["id_key"], pid[ev["person"]], ev["t"])
    return ev


def _browsing(
    rng: Rng, cal: Calendar, catalog: Catalog, p: Persons, b: Buying, a: Accounts, rows: EventRows
) -> None:
    """Sessions that do not buy: 1-3 views, sometimes a cart left behind or a share."""
    pid = p.pid
    browser = np.flatnonzero(p.mp | p.douyin)
    bp = pid[browser]
    both = p.mp[browser] & p.douyin[browser]
    mean = 2.0 + b.n_orders[browser]
    count = np.minimum((rng.exp("sessions", bp) * mean).astype(np.int64), 40)
    who = np.repeat(browser, count)
    s = rank_in_group(count)
    wp = pid[who]
    use_mp = p.mp[who] & ~(
        both[np.repeat(np.arange(len(browser)), count)] & rng.flag("sess_dy", 0.3, wp, s)
    )
    channel = np.where(use_mp, MINIPROGRAM, DOUYIN)
    opened = np.where(use_mp, a.mp_at[who], a.douyin_at[who])
    last = np.where(b.last_at[who] >= 0, b.last_at[who], opened)
    until = np.minimum(np.maximum(last, opened) + 90 * DAY, cal.end_s - 3600)
    start = opened + (rng.u("sess_at", wp, s) * np.maximum(until - opened, 0)).astype(np.int64)
    id_type = np.where(use_mp, OPENID, DOUYIN_OPEN_ID)
    id_key = np.where(use_mp, wp * 2, wp)
    views = 1 + rng.below("sess_views", 3, wp, s)
    vi = np.repeat(np.arange(len(who)), views)
    j = rank_in_group(views)
    t = start[vi] + j * (20 + rng.below("view_gap", 100, wp[vi], s[vi], j))
    brand = pick_brand(p.brands[who[vi]], rng.u("view_brand", wp[vi], s[vi], j))
    u = rng.u("view_sku", wp[vi], s[vi], j)
    sku = np.zeros(len(vi), dtype=np.int64)
    for br, cum in enumerate(catalog.sku_cum):
        sel = brand == br
        sku[sel] = catalog.sku_off[br] + np.minimum(
            np.searchsorted(cum, u[sel] * cum[-1]), len(cum) - 1
        )
    ok = t < cal.end_s - 60
    rows.add(
        who[vi][ok], VIEW, channel[vi][ok], id_type[vi][ok], id_key[vi][ok], t[ok], sku=sku[ok]
    )
    last_view = group_starts(views) + views - 1
    cart = rng.flag("sess_cart", 0.25, wp, s) & ok[last_view]
    rows.add(
        who[cart],
        ADD_TO_CART,
        channel[cart],
        id_type[cart],
        id_key[cart],
        t[last_view][cart] + 15,
        sku=sku[last_view][cart],
    )
    share = use_mp & rng.flag("sess_share", 0.06, wp, s) & ok[last_view]
    rows.add(
        who[share],
        SHARE,
        MINIPROGRAM,
        OPENID,
        id_key[share],
        t[last_view][share] + 30,
        sku=sku[last_view][share],
    )
