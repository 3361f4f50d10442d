"""True persons: households, home city, demographics, brands, channels and phones.

Everything here is drawn per person index from hashed streams, so a person is the same
whatever chunk it falls in. Households are cut from aligned blocks of four persons, so a
chunk that starts at a multiple of four never splits one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from siyu.demo import words
from siyu.demo.births import NO_BIRTH, true_births
from siyu.demo.calendar import Calendar
from siyu.demo.catalog import Catalog
from siyu.demo.config import GeneratorConfig
from siyu.demo.ids import IdSpace
from siyu.demo.rand import F64, I64, Bool, Rng

# Households as compositions of an aligned block of 4 persons: (sizes, weight). Gives
# ~30% singles, ~40% in couples, the rest in families of three or four.
HOUSEHOLD_PATTERNS = (
    ((4,), 0.06), ((3, 1), 0.07), ((1, 3), 0.07), ((2, 2), 0.2), ((2, 1, 1), 0.12),
    ((1, 2, 1), 0.12), ((1, 1, 2), 0.12), ((1, 1, 1, 1), 0.24),
)  # fmt: skip
BLOCK = 4
AGE_MEAN, AGE_SD, AGE_RANGE = 34.0, 11.0, (18.0, 75.0)  # members' ages at the window's start
NO_TIME = np.iinfo(np.int64).max // 2  # "never" (e.g. no phone change)
CARD_OWN, CARD_SHARED, CARD_TYPO = 0, 1, 2  # whose phone a member card row carries
# A second card of the same brand: none, a duplicate registration with the right phone,
# or one made because the phone was mistyped when looking the member up.
DUP_NONE, DUP_STORE, DUP_TYPO = 0, 1, 2
N_BRANDS = len(words.BRANDS)


def _household_tables() -> tuple[I64, I64, F64]:
    head = np.zeros((len(HOUSEHOLD_PATTERNS), BLOCK), dtype=np.int64)
    size = np.zeros_like(head)
    for p, (sizes, _w) in enumerate(HOUSEHOLD_PATTERNS):
        pos = 0
        for s in sizes:
            head[p, pos : pos + s] = pos
            size[p, pos : pos + s] = s
            pos += s
    cum = np.cumsum([w for _s, w in HOUSEHOLD_PATTERNS])
    return head, size, cum


_HH_HEAD, _HH_SIZE, _HH_CUM = _household_tables()
_SURNAME_CUM = np.cumsum(1.0 / np.arange(1, len(words.SURNAMES) + 1) ** 0.9)
# bit tables: for a brand mask (0..7), how many brands and the j-th brand in it
MASK_COUNT = np.array([bin(m).count("1") for m in range(8)], dtype=np.int64)
MASK_PICK = np.array([[[b for b in range(3) if m >> b & 1][j] if j < MASK_COUNT[m] else 0
                       for j in range(3)] for m in range(8)], dtype=np.int64)  # fmt: skip


def pick_brand(mask: I64, u: F64) -> I64:
    """A uniformly chosen brand among the set bits of `mask` (mask > 0)."""
    count = MASK_COUNT[mask]
    j = np.minimum((u * count).astype(np.int64), count - 1)
    return MASK_PICK[mask, j]


@dataclass(frozen=True)
class Persons:
    """One chunk of persons: arrays indexed by local position 0..n-1."""

    pid: I64  # global person index = person_id in truth
    household: I64  # pid of the household's first person
    hh_size: I64
    partner: I64  # local index of another household member, -1 if none
    city: I64
    gender: I64  # 0 f, 1 m, 2 u
    birth: I64  # days since 1970-01-01, NO_BIRTH unknown
    surname: I64
    given1: I64
    given2: I64  # -1: one-character given name
    brands: I64  # bit mask of brands the person buys
    main_brand: I64
    cards: I64  # bit mask of brands where the person holds a member card
    card_phone: I64  # (n, brands): CARD_OWN / CARD_SHARED / CARD_TYPO
    card_key: I64  # (n, brands): key of the person's (first) card at each brand
    duplicate: I64  # (n, brands): DUP_NONE / DUP_STORE / DUP_TYPO, only where a card is held
    mp: Bool
    wecom: Bool
    oa: Bool
    tmall: Bool
    jd: Bool
    douyin: Bool
    tmall_linked: Bool
    jd_linked: Bool
    douyin_linked: Bool
    buyer: Bool
    rate: F64  # buying-rate multiplier, mean 1
    join_at: I64  # local seconds: when a non-buyer first shows up
    phone1: I64
    phone2: I64  # 0: no change
    change_at: I64  # local seconds of the phone change, NO_TIME if none
    email: Bool  # gives an e-mail at the till
    address: Bool  # the household's address is on file (every member of it: one address)

    @property
    def n(self) -> int:
        """Number of persons in the chunk."""
        return len(self.pid)

    def phone_at(self, local: I64, t: I64) -> I64:
        """The phone person `local` used at local time `t` (after a change: the new one)."""
        changed = t >= self.change_at[local]
        return np.where(changed, self.phone2[local], self.phone1[local])


def draw_persons(
    rng: Rng,
    config: GeneratorConfig,
    cal: Calendar,
    catalog: Catalog,
    ids: IdSpace,
    lo: int,
    hi: int,
) -> Persons:
    """Persons lo..hi-1 (lo a multiple of 4)."""
    pid = np.arange(lo, hi, dtype=np.int64)
    n = len(pid)
    block, pos = pid // BLOCK, pid % BLOCK
    pattern = rng.choice("household", _HH_CUM, block)
    head = block * BLOCK + _HH_HEAD[pattern, pos]
    hh_size = np.minimum(_HH_SIZE[pattern, pos], config.members - head)
    partner_pid = np.where(pid == head, head + 1, head)
    partner = np.where(hh_size >= 2, partner_pid - lo, -1)

    city = rng.choice("city", catalog.city_cum, head)  # a household lives in one city
    g = rng.u("gender", pid)
    gender = np.where(g < 0.58, 0, np.where(g < 0.96, 1, 2))
    # ages 18..75, normal(34, 11) truncated by its inverse CDF: clipping would pile the
    # tails onto two birth dates (thousands of persons born on one day)
    lo_p, hi_p = ndtr((AGE_RANGE[0] - AGE_MEAN) / AGE_SD), ndtr((AGE_RANGE[1] - AGE_MEAN) / AGE_SD)
    age = AGE_MEAN + AGE_SD * ndtri(lo_p + (hi_p - lo_p) * rng.u("age", pid))
    age_days = age * 365.25
    birth = np.where(
        rng.flag("birth_known", 0.8, pid), cal.day0 - age_days.astype(np.int64), NO_BIRTH
    )
    birth = true_births(rng, config, pid, birth)
    n_f, n_m, n_u = len(words.GIVEN_F), len(words.GIVEN_M), len(words.GIVEN_U)

    def given(stream: str) -> I64:
        r = rng.u(stream, pid)
        f = (r * (n_f + n_u)).astype(np.int64)
        f = np.where(f < n_f, f, f + n_m)
        m = n_f + (r * (n_m + n_u)).astype(np.int64)
        return np.where(
            gender == 0, f, np.where(gender == 1, m, (r * (n_f + n_m + n_u)).astype(np.int64))
        )

    main_brand = rng.choice("main_brand", catalog.brand_share, pid)
    brands = np.left_shift(1, main_brand)
    for b in range(N_BRANDS):
        brands |= np.where(rng.flag(f"extra_brand.{b}", 0.3, pid), 1 << b, 0)
    has_card = rng.flag("card", config.card_rate, pid)
    others = brands & ~np.left_shift(1, main_brand)
    second = has_card & (others > 0) & rng.flag("second_card", config.second_card_rate, pid)
    second_brand = pick_brand(np.maximum(others, 1), rng.u("second_card_brand", pid))
    cards = np.where(has_card, np.left_shift(1, main_brand), 0)
    cards |= np.where(second, np.left_shift(1, second_brand), 0)

    mp = rng.flag("mp", config.miniprogram_rate, pid)
    tmall = rng.flag("tmall", config.tmall_rate, pid)
    jd = rng.flag("jd", config.jd_rate, pid)
    douyin = rng.flag("douyin", config.douyin_rate, pid)
    buyer = rng.flag("buyer", config.buyer_rate, pid)
    nothing = (cards == 0) & ~mp & ~tmall & ~jd & ~douyin
    cards = np.where(nothing, np.left_shift(1, main_brand), cards)  # everyone is reachable somehow

    card_phone = np.full((n, N_BRANDS), CARD_OWN, dtype=np.int64)
    for b in range(N_BRANDS):
        shared = (hh_size >= 2) & rng.flag("shared_phone", config.shared_phone_rate, pid, b)
        typoed = ~shared & rng.flag("phone_typo", config.phone_typo_rate, pid, b)
        card_phone[:, b] = np.where(shared, CARD_SHARED, np.where(typoed, CARD_TYPO, CARD_OWN))
    card_key = np.stack([ids.card_key(pid, np.full(n, b)) for b in range(N_BRANDS)], axis=1)
    duplicate = np.full((n, N_BRANDS), DUP_NONE, dtype=np.int64)
    for b in range(N_BRANDS):
        # only a card registered with the person's own phone is looked up (and missed)
        # by that phone: a household's shared phone finds the household's card
        eligible = ((cards >> b) & 1 == 1) & (card_phone[:, b] == CARD_OWN)
        u = rng.u("duplicate", pid, b)
        again = config.duplicate_registration_rate
        mistyped = again + config.typo_duplicate_rate
        duplicate[:, b] = np.where(
            eligible & (u < again),
            DUP_STORE,
            np.where(eligible & (u < mistyped), DUP_TYPO, DUP_NONE),
        )

    changed = rng.flag("phone_change", config.phone_change_rate, pid)
    change_at = np.where(
        changed,
        rng.uniform("phone_change_at", cal.start_s, cal.end_s, pid).astype(np.int64),
        NO_TIME,
    )
    spread = config.gap_spread
    return Persons(
        pid=pid,
        household=head,
        hh_size=hh_size,
        partner=partner,
        city=city,
        gender=gender,
        birth=birth,
        surname=rng.choice("surname", _SURNAME_CUM, pid),
        given1=given("given1"),
        given2=np.where(rng.flag("given2", 0.65, pid), given("given2"), -1),
        brands=brands,
        main_brand=main_brand,
        cards=cards,
        card_phone=card_phone,
        card_key=card_key,
        duplicate=duplicate,
        mp=mp,
        wecom=mp & rng.flag("wecom", config.wecom_rate, pid),
        oa=mp & rng.flag("oa", config.official_account_rate, pid),
        tmall=tmall,
        jd=jd,
        douyin=douyin,
        tmall_linked=tmall & rng.flag("tmall_linked", config.tmall_linked_rate, pid),
        jd_linked=jd & rng.flag("jd_linked", config.jd_linked_rate, pid),
        douyin_linked=douyin & rng.flag("douyin_linked", config.douyin_linked_rate, pid),
        buyer=buyer,
        rate=np.exp(spread * rng.normal("rate", pid) - spread**2 / 2),
        join_at=rng.uniform("join_at", cal.start_s, cal.end_s, pid).astype(np.int64),
        phone1=ids.primary_phone(pid),
        phone2=np.where(changed, ids.second_phone(pid), 0),
        change_at=change_at,
        email=rng.flag("email", config.email_rate, pid),
        address=rng.flag("address", config.address_rate, head),
    )
