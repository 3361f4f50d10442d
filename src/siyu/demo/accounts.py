"""Member cards and identity observations: how each person shows up in each channel.

Builds the `members` rows (one per card) and the `identities` rows (openid-unionid logins,
verified phones, card bindings, WeCom contacts, marketplace accounts with or without a
phone hash, phone updates at the till, devices and nicknames), and logs every identifier
with its true owner. Account creation times are tied to the person's first order on the
channel, so no order or event uses an account before it exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from siyu.demo.buying import Buying
from siyu.demo.calendar import DAY, Calendar
from siyu.demo.catalog import Catalog
from siyu.demo.config import GeneratorConfig
from siyu.demo.ids import (
    CARD,
    DEVICE_ID,
    DOUYIN,
    DOUYIN_OPEN_ID,
    EXTERNAL_USERID,
    JD,
    JD_PIN,
    MINIPROGRAM,
    NICKNAME,
    OFFICIAL_ACCOUNT,
    OPENID,
    PHONE,
    PHONE_HASH,
    POS,
    TMALL,
    TMALL_OUID,
    UNIONID,
    WECOM,
    IdSpace,
)
from siyu.demo.members import Members, build_members
from siyu.demo.names import Spellings
from siyu.demo.people import CARD_OWN, NO_TIME, Persons
from siyu.demo.rand import I64, Bool, Rng
from siyu.demo.truthlog import TruthLog


@dataclass
class IdentityRows:
    """Identity observations (appended block by block, then sorted)."""

    cols: dict[str, list[I64]] = field(default_factory=dict)

    def add(
        self,
        person: I64,
        type_code: int,
        key: I64,
        channel: int,
        t: I64,
        verified: bool,
        ltype: int = -1,
        lkey: I64 | None = None,
        brand: I64 | None = None,
    ) -> None:
        """Append observations of (type_code, key), optionally linked to (ltype, lkey)."""
        n = len(person)
        values = {
            "person": person,
            "type": np.full(n, type_code),
            "key": key,
            "channel": np.full(n, channel),
            "t": t,
            "verified": np.full(n, int(verified)),
            "ltype": np.full(n, ltype),
            "lkey": np.zeros(n, dtype=np.int64) if lkey is None else lkey,
            "brand": np.full(n, -1) if brand is None else brand,
        }
        for name, v in values.items():
            self.cols.setdefault(name, []).append(np.asarray(v, dtype=np.int64))

    def table(self) -> dict[str, I64]:
        """All columns, sorted by person then observation time."""
        cols = {k: np.concatenate(v) for k, v in self.cols.items()}
        order = np.lexsort((cols["type"], cols["t"], cols["person"]))
        return {k: v[order] for k, v in cols.items()}


@dataclass(frozen=True)
class Accounts:
    """Per-person account creation times (NO_TIME: no such account) and the rows built."""

    mp_at: I64
    wecom_at: I64
    oa_at: I64
    douyin_at: I64
    members: Members
    identities: dict[str, I64]


def build_accounts(
    rng: Rng,
    config: GeneratorConfig,
    cal: Calendar,
    catalog: Catalog,
    p: Persons,
    b: Buying,
    ids: IdSpace,
    sp: Spellings,
    typos_seen: set[int],
    log: TruthLog,
) -> Accounts:
    """Members and identity rows of one chunk; logs every identifier to `log`."""
    pid, n = p.pid, p.n
    anchor = np.where(b.first_at >= 0, b.first_at, p.join_at)
    lo, hi = cal.start_s - 2 * 365 * DAY, cal.end_s - 60

    def natural(stream: str, days_lo: float, days_hi: float, keys: I64, base: I64) -> I64:
        t = base + (rng.uniform(stream, days_lo, days_hi, keys) * DAY).astype(np.int64)
        late = t >= hi
        t = np.where(late, base + (rng.u(stream + ".late", keys) * (hi - base)).astype(np.int64), t)
        return np.clip(t, lo, hi)

    def opened(stream: str, days_lo: float, days_hi: float, has: Bool, channel: int) -> I64:
        first = b.first_use[:, channel]
        # opened well before its first order, so the order's funnel events come after it
        before_first = first - 3000 - rng.below(stream + ".lead", 3600, pid)
        t = np.minimum(natural(stream, days_lo, days_hi, pid, anchor), before_first)
        return np.where(has, t, NO_TIME)

    mp_at = opened("mp_at", -90, 300, p.mp, MINIPROGRAM)
    tmall_at = opened("tmall_at", -120, 300, p.tmall, TMALL)
    jd_at = opened("jd_at", -120, 300, p.jd, JD)
    douyin_at = opened("douyin_at", -120, 300, p.douyin, DOUYIN)
    wecom_at = np.where(p.wecom, natural("wecom_at", 0, 200, pid, np.minimum(mp_at, hi)), NO_TIME)
    oa_at = np.where(p.oa, natural("oa_at", -200, 300, pid, anchor), NO_TIME)

    members = build_members(rng, config, cal, catalog, ids, sp, p, b, anchor, natural, typos_seen)
    log.add(CARD, members.card_key, pid[members.person], members.registered_at)
    log.add(PHONE, members.phone, members.phone_owner, members.registered_at)

    rows = IdentityRows()
    everyone = np.arange(n, dtype=np.int64)

    def linked(
        who: I64,
        type_code: int,
        key: I64,
        channel: int,
        t: I64,
        verified: bool,
        ltype: int = -1,
        lkey: I64 | None = None,
        brand: I64 | None = None,
    ) -> None:
        rows.add(who, type_code, key, channel, t, verified, ltype, lkey, brand)
        log.add(type_code, key, pid[who], t)
        if lkey is not None:
            log.add(ltype, lkey, pid[who], t)

    w = everyone[p.mp]
    linked(w, OPENID, pid[w] * 2, MINIPROGRAM, mp_at[w], True, UNIONID, pid[w])
    # ordering in the mini-program requires a verified phone; browsing does not
    first_mp = b.first_use[w, MINIPROGRAM]
    v = w[(first_mp != NO_TIME) | rng.flag("verified_phone", config.verified_phone_rate, pid[w])]
    tv = np.minimum(
        natural("verified_at", 0, 30, pid[v], mp_at[v]), b.first_use[v, MINIPROGRAM] - 30
    )
    linked(v, PHONE, p.phone_at(v, tv), MINIPROGRAM, tv, True, UNIONID, pid[v])
    again = v[tv < p.change_at[v]]  # re-authorised after a change: the new phone, later
    t2 = p.change_at[again] + (rng.uniform("reverified_at", 1, 20, pid[again]) * DAY).astype(
        np.int64
    )
    again, t2 = again[t2 < hi], t2[t2 < hi]
    linked(again, PHONE, p.phone2[again], MINIPROGRAM, t2, True, UNIONID, pid[again])

    # the card a member binds is their first of the brand (a duplicate stays unbound)
    mw = np.flatnonzero(p.mp[members.person] & (members.copy == 0))
    bind = mw[
        rng.flag(
            "card_binding", config.card_binding_rate, pid[members.person[mw]], members.brand[mw]
        )
    ]
    who = members.person[bind]
    tb = natural("bound_at", 0, 60, pid[who], np.maximum(mp_at[who], members.registered_at[bind]))
    linked(
        who,
        CARD,
        members.card_key[bind],
        MINIPROGRAM,
        tb,
        True,
        UNIONID,
        pid[who],
        members.brand[bind],
    )

    w = everyone[p.wecom]
    linked(w, EXTERNAL_USERID, pid[w], WECOM, wecom_at[w], True, UNIONID, pid[w])
    w = everyone[p.oa]
    linked(w, OPENID, pid[w] * 2 + 1, OFFICIAL_ACCOUNT, oa_at[w], True, UNIONID, pid[w])

    for has, is_linked, at, type_code, channel in (
        (p.tmall, p.tmall_linked, tmall_at, TMALL_OUID, TMALL),
        (p.jd, p.jd_linked, jd_at, JD_PIN, JD),
        (p.douyin, p.douyin_linked, douyin_at, DOUYIN_OPEN_ID, DOUYIN),
    ):
        w = everyone[has & ~is_linked]
        linked(w, type_code, pid[w], channel, at[w], False)
        w = everyone[is_linked]
        linked(w, type_code, pid[w], channel, at[w], True, PHONE_HASH, p.phone_at(w, at[w]))
        w = w[(at[w] < p.change_at[w]) & rng.flag(f"relink.{channel}", 0.6, pid[w])]
        t2 = p.change_at[w] + (rng.uniform(f"relink_at.{channel}", 1, 30, pid[w]) * DAY).astype(
            np.int64
        )
        w, t2 = w[t2 < hi], t2[t2 < hi]
        linked(w, type_code, pid[w], channel, t2, True, PHONE_HASH, p.phone2[w])

    # the till learns the new phone of a card registered with the old one
    kind = p.card_phone[members.person, members.brand]
    m_idx = np.flatnonzero(
        (members.copy == 0)
        & (kind == CARD_OWN)
        & (members.registered_at < p.change_at[members.person])
    )
    who = members.person[m_idx]
    brand_u = members.brand[m_idx]
    days_later = rng.uniform("pos_update_at", 1, 60, pid[who], brand_u)
    tu = p.change_at[who] + (days_later * DAY).astype(np.int64)
    ok = (tu < hi) & rng.flag("pos_update", 0.8, pid[who], brand_u)
    m_idx, who, tu = m_idx[ok], who[ok], tu[ok]
    linked(
        who,
        CARD,
        members.card_key[m_idx],
        POS,
        tu,
        True,
        PHONE,
        p.phone2[who],
        members.brand[m_idx],
    )

    _weak(rng, config, p, mp_at, douyin_at, natural, linked)
    return Accounts(
        mp_at=mp_at,
        wecom_at=wecom_at,
        oa_at=oa_at,
        douyin_at=douyin_at,
        members=members,
        identities=rows.table(),
    )


Natural = Callable[[str, float, float, I64, I64], I64]
Linked = Callable[..., None]


def _weak(
    rng: Rng,
    config: GeneratorConfig,
    p: Persons,
    mp_at: I64,
    douyin_at: I64,
    natural: Natural,
    linked: Linked,
) -> None:
    """Devices (a few shared in a household) and nicknames from a small shared pool."""
    pid = p.pid
    everyone = np.arange(p.n, dtype=np.int64)
    has_device = p.mp & rng.flag("device", config.device_rate, pid)
    w = everyone[has_device]
    device_at = np.full(p.n, NO_TIME, dtype=np.int64)
    device_at[w] = natural("device_at", 0, 10, pid[w], mp_at[w])
    linked(w, DEVICE_ID, pid[w], MINIPROGRAM, device_at[w], False, OPENID, pid[w] * 2)
    partner = np.maximum(p.partner, 0)
    share = p.mp & (p.partner >= 0) & has_device[partner]
    w = everyone[share & rng.flag("shared_device", config.shared_device_rate, pid)]
    pt = partner[w]
    t = natural("shared_device_at", 0, 100, pid[w], np.maximum(mp_at[w], device_at[pt]))
    linked(w, DEVICE_ID, pid[pt], MINIPROGRAM, t, False, OPENID, pid[w] * 2)

    nickname = rng.below("nickname", config.nickname_pool, pid)
    w = everyone[p.mp & rng.flag("nickname_mp", config.nickname_rate, pid)]
    t = natural("nickname_at", 0, 5, pid[w], mp_at[w])
    linked(w, NICKNAME, nickname[w], MINIPROGRAM, t, False, OPENID, pid[w] * 2)
    w = everyone[p.douyin & rng.flag("nickname_douyin", config.nickname_rate, pid)]
    linked(w, NICKNAME, nickname[w], DOUYIN, douyin_at[w], False, DOUYIN_OPEN_ID, pid[w])
