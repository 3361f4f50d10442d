"""Turn a chunk's integer arrays into the contract's Arrow columns (strings, UTC times)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from siyu.demo import contact, names, text, words
from siyu.demo.births import BIRTH_FORMS, NO_BIRTH
from siyu.demo.buying import Buying
from siyu.demo.calendar import UTC_OFFSET
from siyu.demo.catalog import Catalog
from siyu.demo.config import MAX_ORDERS_PER_PERSON
from siyu.demo.events import EVENT_TYPES, MAX_EVENTS_PER_PERSON
from siyu.demo.facts import STATUSES, Lines, Orders, Refunds
from siyu.demo.ids import CARD, CHANNELS, PHONE, POS, TYPES, IdSpace
from siyu.demo.members import PHONE_ERRORS, RECORDS, Members
from siyu.demo.people import N_BRANDS, NO_TIME, Persons
from siyu.demo.rand import I64, Bool, Rng
from siyu.demo.writer import STR, TS

Columns = dict[str, pa.Array]
ORDER_SLOTS = 2 * MAX_ORDERS_PER_PERSON  # order key = person x 512 + slot
# channels listed per person in truth/persons, as bits of a mask
_PERSON_CHANNELS = ("pos", "miniprogram", "official_account", "wecom", "tmall", "jd", "douyin")


def ts(local: I64, null: Bool | None = None) -> pa.Array:
    """Local (China) seconds since the epoch -> timestamp('s') in naive UTC."""
    if null is None:
        null = (local < 0) | (local >= NO_TIME)
    utc = np.where(null, 0, local - UTC_OFFSET).astype("datetime64[s]")
    return pa.array(utc, type=TS, mask=null if null.any() else None)


def ints(values: I64, typ: pa.DataType, null: Bool | None = None) -> pa.Array:
    """Integer column; null where `null`."""
    return pa.array(values, type=typ, mask=null if null is not None and null.any() else None)


def dates(days: I64) -> pa.Array:
    """Days since 1970-01-01 -> date32; null where NO_BIRTH (unknown)."""
    unknown = days == NO_BIRTH
    return pa.array(
        np.where(unknown, 0, days).astype("datetime64[D]"), type=pa.date32(), mask=unknown
    )


def scatter(values: pa.Array, has: Bool) -> pa.Array:
    """Spread `values` (one per True in `has`) over len(has) rows, null elsewhere."""
    idx = np.cumsum(has) - 1
    return text.take(values, idx, mask=~has) if len(values) else pa.nulls(len(has), STR)


class Renderer:
    """Holds the dictionaries (brands, stores, types, ...) used to spell columns."""

    def __init__(self, ids: IdSpace, catalog: Catalog, scenes: list[str], rng: Rng) -> None:
        self.ids = ids
        self.rng = rng  # draws only what the contract spells (addresses, e-mail forms)
        self.spellings = names.spellings()
        self.brand = catalog.arrow("brand_ids")
        self.store = catalog.arrow("store_ids")
        self.guide = catalog.arrow("guide_ids")
        self.sku = catalog.arrow("sku")
        self.city = catalog.arrow("city_names")
        self.scene = pa.array(scenes, type=STR)
        self.types = pa.array(TYPES, type=STR)
        self.channels = pa.array(CHANNELS, type=STR)
        self.statuses = pa.array(STATUSES, type=STR)
        self.event_types = pa.array(EVENT_TYPES, type=STR)
        self.coupons = pa.array([c[0] for c in words.COUPONS], type=STR)
        self.reasons = pa.array(words.REFUND_REASONS, type=STR)
        self.genders = pa.array(["f", "m", "u"], type=STR)
        self.record_kinds = pa.array(RECORDS, type=STR)
        self.phone_errors = pa.array(PHONE_ERRORS, type=STR)
        self.name_forms = pa.array(names.NAME_FORMS, type=STR)
        self.birth_forms = pa.array(BIRTH_FORMS, type=STR)
        self.city_forms = pa.array(contact.CITY_FORMS, type=STR)
        ids_ = catalog.brand_ids
        self.brand_sets = pa.array(
            [",".join(ids_[b] for b in range(N_BRANDS) if m >> b & 1) for m in range(1 << N_BRANDS)]
        )
        self.channel_sets = pa.array(
            [
                ",".join(c for i, c in enumerate(_PERSON_CHANNELS) if m >> i & 1)
                for m in range(1 << 7)
            ]
        )

    def members(self, p: Persons, m: Members) -> Columns:
        """members.parquet columns: each record as keyed at its till."""
        person, sp = m.person, self.spellings
        given2 = np.where(p.given2[person] >= 0, p.given2[person], len(sp.given) - 1)
        spelled = names.render_names(
            sp,
            m.name_form,
            m.homophone_at,
            p.surname[person],
            p.given1[person],
            given2,
            p.gender[person],
            m.name_parts,
        )
        e = person[m.email]
        g2 = np.where(p.given2[e] >= 0, p.given2[e], len(sp.given) - 1)
        email = contact.emails(
            self.rng, sp, p.pid[e], p.surname[e], p.given1[e], g2, self.ids.members
        )
        a = np.flatnonzero(m.address)
        home = p.household[person[a]]
        city = p.city[person[a]]
        district = contact.district(self.rng, home, city)
        address, postcode = contact.addresses(self.rng, home, city, district, m.address_short[a])
        return {
            "member_ref": self.ids.member_ref(m.card_key),
            "brand_id": text.take(self.brand, m.brand),
            "registered_at": ts(m.registered_at),
            "channel": text.take(self.channels, np.full(len(person), POS)),
            "card": self.ids.render(CARD, m.card_key),
            "phone": self.ids.render(PHONE, m.phone),
            "name": spelled.name,
            "gender": text.take(self.genders, p.gender[person]),
            "birth_date": dates(m.birth),
            "city": contact.city_spelling(p.city[person], m.city_form),
            "home_store_id": text.take(self.store, m.home_store),
            "given_name": spelled.given_name,
            "family_name": spelled.family_name,
            "email": scatter(email, m.email),
            "address": scatter(address, m.address),
            "postcode": scatter(postcode.filter(pa.array(m.postcode[a])), m.postcode),
        }

    def member_truth(self, p: Persons, m: Members) -> Columns:
        """truth/members.parquet columns: each record's true person and what is off in it."""
        return {
            "member_ref": self.ids.member_ref(m.card_key),
            "brand_id": text.take(self.brand, m.brand),
            "person_id": pa.array(p.pid[m.person], type=pa.int64()),
            "record": text.take(self.record_kinds, m.record),
            "phone_error": text.take(self.phone_errors, m.phone_error),
            "name_form": text.take(self.name_forms, m.name_form),
            "birth_form": text.take(self.birth_forms, m.birth_form),
            "city_form": text.take(self.city_forms, m.city_form),
        }

    def identities(self, rows: dict[str, I64]) -> Columns:
        """identities.parquet columns."""
        has_link = rows["ltype"] >= 0
        return {
            "type": text.take(self.types, rows["type"]),
            "value": self.ids.render_mixed(rows["type"], rows["key"]),
            "channel": text.take(self.channels, rows["channel"]),
            "observed_at": ts(rows["t"]),
            "verified": pa.array(rows["verified"] == 1),
            "linked_type": text.take(self.types, rows["ltype"]),
            "linked_value": scatter(
                self.ids.render_mixed(rows["ltype"][has_link], rows["lkey"][has_link]), has_link
            ),
            "brand_id": text.take(self.brand, rows["brand"]),
            # one mini-program, one official account, one WeCom: every app-scoped id is in
            # the group's default scope, and a card's scope is its brand_id
            "scope": pa.nulls(len(has_link), pa.string()),
            "linked_scope": pa.nulls(len(has_link), pa.string()),
        }

    def order_ids(self, p: Persons, o: Orders) -> pa.Array:
        """Order id of every order row."""
        return self.ids.order_id(o.channel, p.pid[o.person] * ORDER_SLOTS + o.slot)

    def orders(self, o: Orders, order_id: pa.Array) -> Columns:
        """orders.parquet columns."""
        return {
            "order_id": order_id,
            "brand_id": text.take(self.brand, o.brand),
            "channel": text.take(self.channels, o.channel),
            "buyer_type": text.take(self.types, o.buyer_type),
            "buyer_value": self.ids.render_mixed(o.buyer_type, o.buyer_key),
            "buyer_scope": pa.nulls(len(o.buyer_type), pa.string()),  # a card: the order's brand
            "ordered_at": ts(o.ordered_at),
            "total_fen": pa.array(o.total, type=pa.int64()),
            "paid_fen": pa.array(o.paid, type=pa.int64()),
            "discount_fen": pa.array(o.discount, type=pa.int64()),
            "status": text.take(self.statuses, o.status),
            "paid_at": ts(o.paid_at),
            "store_id": text.take(self.store, o.store),
            "guide_id": text.take(self.guide, o.guide),
            "coupon_code": text.take(self.coupons, o.coupon),
        }

    def lines(self, lines: Lines, order_id: pa.Array) -> Columns:
        """order_lines.parquet columns."""
        return {
            "order_id": text.take(order_id, lines.order),
            "line_no": ints(lines.line_no, pa.int32()),
            "sku": text.take(self.sku, lines.sku),
            "qty": ints(lines.qty, pa.int32()),
            "unit_price_fen": pa.array(lines.unit, type=pa.int64()),
            "amount_fen": pa.array(lines.amount, type=pa.int64()),
        }

    def refunds(self, p: Persons, o: Orders, r: Refunds, order_id: pa.Array) -> Columns:
        """refunds.parquet columns."""
        return {
            "refund_id": self.ids.refund_id(
                p.pid[o.person[r.order]] * ORDER_SLOTS + o.slot[r.order]
            ),
            "order_id": text.take(order_id, r.order),
            "refunded_at": ts(r.refunded_at),
            "amount_fen": pa.array(r.amount, type=pa.int64()),
            "line_no": ints(r.line_no, pa.int32(), r.line_no < 0),
            "qty": ints(r.qty, pa.int32(), r.qty < 0),
            "reason": text.take(self.reasons, r.reason),
        }

    def events(self, p: Persons, ev: dict[str, I64], order_id: pa.Array) -> Columns:
        """events.parquet columns."""
        return {
            "event_id": self.ids.event_id(p.pid[ev["person"]] * MAX_EVENTS_PER_PERSON + ev["rank"]),
            "type": text.take(self.event_types, ev["type"]),
            "channel": text.take(self.channels, ev["channel"]),
            "identity_type": text.take(self.types, ev["id_type"]),
            "identity_value": self.ids.render_mixed(ev["id_type"], ev["id_key"]),
            "identity_scope": pa.nulls(len(ev["id_type"]), pa.string()),  # events name no card
            "occurred_at": ts(ev["t"]),
            "sku": text.take(self.sku, ev["sku"]),
            "store_id": text.take(self.store, ev["store"]),
            "guide_id": text.take(self.guide, ev["guide"]),
            "order_id": text.take(order_id, ev["order"])
            if len(order_id)
            else pa.nulls(len(ev["t"]), STR),
            "scene": text.take(self.scene, ev["scene"]),
        }

    def identity_truth(self, types: I64, keys: I64, owners: I64) -> Columns:
        """truth/identity_truth.parquet columns; a card's brand beside it (card numbers
        repeat across brands, so a card is known by its brand and number)."""
        card = types == CARD
        return {
            "type": text.take(self.types, types),
            "value": self.ids.render_mixed(types, keys),
            "person_id": pa.array(owners, type=pa.int64()),
            "brand_id": text.take(self.brand, np.where(card, keys & 3, -1)),
        }

    def persons(self, p: Persons, b: Buying) -> Columns:
        """truth/persons.parquet columns."""
        flags = [p.cards > 0, p.mp, p.oa, p.wecom, p.tmall, p.jd, p.douyin]
        channel_mask = sum(
            (f.astype(np.int64) << i for i, f in enumerate(flags)), np.zeros(p.n, dtype=np.int64)
        )
        changed = p.phone2 > 0
        return {
            "person_id": pa.array(p.pid, type=pa.int64()),
            "household_id": pa.array(p.household, type=pa.int64()),
            "city": text.take(self.city, p.city),
            "gender": text.take(self.genders, p.gender),
            "birth_date": dates(p.birth),
            "name": names.render_names(
                self.spellings,
                np.full(p.n, names.AS_REGISTERED),
                np.zeros(p.n, dtype=np.int64),
                p.surname,
                p.given1,
                np.where(p.given2 >= 0, p.given2, len(self.spellings.given) - 1),
                p.gender,
                np.zeros(p.n, dtype=bool),
            ).name,
            "buyer": pa.array(p.buyer),
            "n_orders": ints(b.n_orders, pa.int32()),
            "n_orders_uncensored": ints(b.n_planned, pa.int32()),
            "censored": pa.array(b.n_planned > b.n_orders),
            "first_order_at": ts(b.first_at),
            "last_order_at": ts(b.last_at),
            "phone": self.ids.render(PHONE, p.phone1),
            "second_phone": scatter(self.ids.render(PHONE, p.phone2[changed]), changed),
            "phone_changed_at": ts(p.change_at),
            "brands": text.take(self.brand_sets, p.brands),
            "cards": text.take(self.brand_sets, p.cards, mask=p.cards == 0),
            "channels": text.take(self.channel_sets, channel_mask),
        }
