"""Member records as the tills wrote them: one per card, plus the second cards a member
base really holds (a duplicate registration at another store; one made after a phone was
mistyped at the till), each with its phone, name, birth date, city and contacts as keyed
on that record, which is not always the truth.

Originals keep the random streams keyed by person x 4 + brand; every new draw is keyed
by the record (person x 8 + copy x 4 + brand), so a person's records are the same
whatever chunk they fall in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from siyu.demo import names
from siyu.demo.births import recorded_births
from siyu.demo.buying import Buying, home_store
from siyu.demo.calendar import DAY, Calendar
from siyu.demo.catalog import Catalog
from siyu.demo.config import NAME_VARIANT_MIX, GeneratorConfig
from siyu.demo.contact import CITY_PLAIN
from siyu.demo.ids import TYPO_DELTAS, IdSpace, transpose, typo
from siyu.demo.people import (
    CARD_SHARED,
    CARD_TYPO,
    DUP_NONE,
    DUP_TYPO,
    N_BRANDS,
    NO_TIME,
    Persons,
)
from siyu.demo.rand import I64, Bool, Rng, rank_in_group

LEGACY_YEARS = 3  # legacy cards were registered up to 3 years before the window
NAMED_RATE = 0.92  # records with a name at all
# What is wrong with a record's phone (truth/members.parquet spells them out).
PHONE_OK, PHONE_SUBSTITUTION, PHONE_TRANSPOSITION, PHONE_HOUSEHOLD = range(4)
PHONE_ERRORS = ("none", "one_digit", "adjacent_swap", "household_phone")
# What a record is: the card, or the second card of a duplicate (DUP_STORE, DUP_TYPO).
RECORDS = ("card", "duplicate_registration", "typo_duplicate")
_MIX_CUM = np.cumsum([w for _kind, w in NAME_VARIANT_MIX])
_TRAD, _HOMO, _HONORIFIC, _LATIN = range(4)  # order of NAME_VARIANT_MIX

Natural = Callable[[str, float, float, I64, I64], I64]


@dataclass(frozen=True)
class Members:
    """One row per member record, sorted by person, brand and copy."""

    person: I64
    brand: I64
    copy: I64  # 0 the card; 1 a second card of the same brand
    record: I64  # index into RECORDS
    card_key: I64
    registered_at: I64
    phone: I64
    phone_owner: I64  # person id of whoever truly holds the phone on the record
    phone_error: I64  # index into PHONE_ERRORS
    home_store: I64
    name_form: I64  # index into names.NAME_FORMS
    homophone_at: I64  # which character a homophone replaces
    name_parts: Bool  # given_name and family_name kept apart
    birth: I64  # as recorded: days since 1970-01-01, NO_BIRTH none
    birth_form: I64  # index into births.BIRTH_FORMS
    city_form: I64  # index into contact.CITY_FORMS
    email: Bool
    address: Bool
    address_short: Bool
    postcode: Bool


def build_members(
    rng: Rng,
    config: GeneratorConfig,
    cal: Calendar,
    catalog: Catalog,
    ids: IdSpace,
    sp: names.Spellings,
    p: Persons,
    b: Buying,
    anchor: I64,
    natural: Natural,
    typos_seen: set[int],
) -> Members:
    """Every card in `p.cards` and every duplicate in `p.duplicate`, with what was keyed."""
    has = (p.cards[:, None] >> np.arange(N_BRANDS)) & 1 == 1
    person, brand = (x.astype(np.int64) for x in np.nonzero(has))  # by person, then brand
    dup = p.duplicate[person, brand]
    copies = 1 + (dup != DUP_NONE)
    person, brand, dup = (np.repeat(x, copies) for x in (person, brand, dup))
    copy = rank_in_group(copies)
    record = np.where(copy == 1, dup, 0)
    gpid = p.pid[person]
    keys = gpid * 4 + brand  # the original card's streams
    rkey = gpid * 8 + copy * 4 + brand  # the record's own

    reg = _registered(rng, cal, p, b, anchor, natural, person, brand, copy, keys, rkey)
    store = home_store(rng, catalog, p, person, brand)
    city = p.city[person]
    count = catalog.home_cnt[brand, city]
    # a duplicate is made at another store of the brand in the city when there is one
    shift = 1 + rng.below("dup_store", np.maximum(count - 1, 1), rkey)
    other = catalog.home_off[brand, city] + (store - catalog.home_off[brand, city] + shift) % count
    store = np.where((copy == 1) & (count > 1), other, store)

    phone, owner, error = _phones(rng, config, p, person, copy, record, brand, reg, rkey)
    _typos(rng, ids, phone, error, rkey, typos_seen)

    surname, given1 = p.surname[person], p.given1[person]
    given2 = np.where(p.given2[person] >= 0, p.given2[person], len(sp.given) - 1)
    named = np.where(
        copy == 0,
        rng.flag("named", NAMED_RATE, keys),
        rng.flag("named.duplicate", NAMED_RATE, rkey),
    )
    form = _name_forms(rng, config, sp, copy, rkey, surname, given1, given2, named)
    birth, birth_form = recorded_births(rng, config, p.birth[person], rkey)
    city_rate = np.where(copy == 1, config.duplicate_city_variant_rate, config.city_variant_rate)
    city_form = np.where(
        rng.flag("city_variant", city_rate, rkey), 1 + rng.below("city_form", 2, rkey), CITY_PLAIN
    )
    address = p.address[person] & rng.flag("address_on_record", config.address_on_record_rate, rkey)
    return Members(
        person=person,
        brand=brand,
        copy=copy,
        record=record,
        card_key=np.where(copy == 0, p.card_key[person, brand], ids.card_key(gpid, brand, copy)),
        registered_at=reg,
        phone=phone,
        phone_owner=owner,
        phone_error=error,
        home_store=store,
        name_form=form,
        homophone_at=names.homophone_position(
            sp, rng.u("homophone_at", rkey), surname, given1, given2
        ),
        name_parts=rng.flag("name_parts", config.name_parts_rate, rkey),
        birth=birth,
        birth_form=birth_form,
        city_form=city_form,
        email=p.email[person] & rng.flag("email_on_record", config.email_on_record_rate, rkey),
        address=address,
        address_short=rng.flag("address_short", config.address_short_rate, rkey),
        postcode=address & rng.flag("postcode", config.postcode_rate, rkey),
    )


def _registered(
    rng: Rng,
    cal: Calendar,
    p: Persons,
    b: Buying,
    anchor: I64,
    natural: Natural,
    person: I64,
    brand: I64,
    copy: I64,
    keys: I64,
    rkey: I64,
) -> I64:
    """Registration times: the card's as before; a duplicate's days to a year after it."""
    legacy = rng.flag("legacy_card", 0.2, keys)
    legacy_at = cal.start_s - (rng.uniform("legacy_at", 1, LEGACY_YEARS * 365, keys) * DAY).astype(
        np.int64
    )
    reg = np.where(legacy, legacy_at, natural("card_at", -60, 240, keys, anchor[person]))
    first_pos = b.first_pos[person, brand]
    at_till = (first_pos != NO_TIME) & rng.flag("registered_at_till", 0.5, keys)
    before = first_pos - 60 - rng.below("till_lead", 1200, keys)
    reg = np.where(at_till, before, np.minimum(reg, before))
    # joined at the till just after paying for the first purchase there as a non-member
    late = (first_pos != NO_TIME) & b.joined_late[person, brand]
    reg = np.where(late, first_pos + 60 + rng.below("join_lag", 600, keys), reg)
    hi = cal.end_s - 60
    later = reg + (rng.uniform("dup_after", 3, 400, rkey) * DAY).astype(np.int64)
    squeezed = (
        reg + 60 + (rng.u("dup_after.late", rkey) * np.maximum(hi - reg - 60, 0)).astype(np.int64)
    )
    return np.where(copy == 1, np.where(later < hi, later, np.minimum(squeezed, hi)), reg)


def _phones(
    rng: Rng,
    config: GeneratorConfig,
    p: Persons,
    person: I64,
    copy: I64,
    record: I64,
    brand: I64,
    reg: I64,
    rkey: I64,
) -> tuple[I64, I64, I64]:
    """(phone, its true owner, PHONE_* error) of each record; rows still to be mistyped
    carry the right phone and their intended error until `_typos` decides."""
    kind = np.where(copy == 0, p.card_phone[person, brand], 0)
    own = p.phone_at(person, reg)
    partner = np.maximum(p.partner[person], 0)
    shared = kind == CARD_SHARED
    phone = np.where(shared, p.phone1[partner], own)
    owner = np.where(shared, p.pid[partner], p.pid[person])
    mistyped = (kind == CARD_TYPO) | (record == DUP_TYPO)
    swapped = rng.flag("typo_transposed", config.typo_transposition_share, rkey)
    error = np.where(
        shared,
        PHONE_HOUSEHOLD,
        np.where(mistyped, np.where(swapped, PHONE_TRANSPOSITION, PHONE_SUBSTITUTION), PHONE_OK),
    )
    return phone, owner, error


def _typos(rng: Rng, ids: IdSpace, phone: I64, error: I64, rkey: I64, typos_seen: set[int]) -> None:
    """Mistype the phones of the records with a typo error, in place: one digit wrong or
    two adjacent digits swapped. A swap that makes another person's real number, or any
    typo already made (in this chunk by a lower record, or in an earlier chunk), is not
    made: the record keeps the right phone and its error is cleared."""
    rows = np.flatnonzero((error == PHONE_SUBSTITUTION) | (error == PHONE_TRANSPOSITION))
    if not len(rows):
        return
    own, k = phone[rows], rkey[rows]
    sub = typo(
        own, 2 + rng.below("typo_position", 9, k), TYPO_DELTAS[rng.below("typo_delta", 8, k)]
    )
    swap = transpose(own, 2 + rng.below("typo_swap_at", 8, k))
    want_swap = error[rows] == PHONE_TRANSPOSITION
    # a swap keeps the digit class, so it can be someone's number: then a digit goes wrong
    bad_swap = want_swap & ((swap == own) | ids.is_real_phone(swap))
    use_swap = want_swap & ~bad_swap
    cand = np.where(use_swap, swap, sub)
    ok = np.zeros(len(cand), dtype=bool)
    ok[np.unique(cand, return_index=True)[1]] = True
    ok &= ~np.isin(cand, np.fromiter(typos_seen, dtype=np.int64, count=len(typos_seen)))
    phone[rows[ok]] = cand[ok]
    error[rows] = np.where(
        ok, np.where(use_swap, PHONE_TRANSPOSITION, PHONE_SUBSTITUTION), PHONE_OK
    )
    typos_seen.update(cand[ok].tolist())


def _name_forms(
    rng: Rng,
    config: GeneratorConfig,
    sp: names.Spellings,
    copy: I64,
    rkey: I64,
    surname: I64,
    given1: I64,
    given2: I64,
    named: Bool,
) -> I64:
    """Each record's name form. A traditional or homophone spelling that would not differ
    from the name falls back to the other one, then to surname + honorific, so that the
    variant rates hold exactly."""
    rate = np.where(copy == 1, config.duplicate_name_variant_rate, config.name_variant_rate)
    variant = rng.flag("name_variant", rate, rkey)
    kind = rng.choice("name_variant_kind", _MIX_CUM, rkey)
    trad_ok, homo_ok = names.applicable(sp, surname, given1, given2)
    chinese = np.where(
        kind == _TRAD,
        np.where(trad_ok, names.TRADITIONAL, np.where(homo_ok, names.HOMOPHONE, names.HONORIFIC)),
        np.where(homo_ok, names.HOMOPHONE, np.where(trad_ok, names.TRADITIONAL, names.HONORIFIC)),
    )
    swapped = rng.flag("latin_swap", config.latin_swap_share, rkey)
    latin = np.where(swapped, names.LATIN_SWAPPED, names.LATIN)
    chosen = np.select(
        [kind == _HONORIFIC, kind == _LATIN], [names.HONORIFIC, latin], chinese
    ).astype(np.int64)
    form = np.where(variant, chosen, names.AS_REGISTERED)
    return np.where(named, form, names.MISSING).astype(np.int64)
