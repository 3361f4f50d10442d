"""Identifier types and how their values are spelled.

Inside the generator an identifier is a (type code, integer key) pair: a phone's key is
its number, an openid's key is 2 x person + slot, a card's is 4 x its serial + brand. Keys
are turned into strings only when written, through keyed permutations, so values are
unique by construction and carry no visible trace of the person (a resolver cannot cheat
by parsing ids). Rendering data and truth with the same functions keeps them identical.

Card numbers are the one exception to "unique by construction", on purpose: every brand
of the group numbers its cards from its own sequence in the same format, so one number
is a card of different persons in different brands. A card is unique only with its brand.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
from numpy.typing import ArrayLike

from siyu.demo import text
from siyu.demo.config import CARD_SERIAL_DIGITS
from siyu.demo.rand import I64, U64, Bool, Rng, mix, permute, permute_below, unpermute_below

TYPES = (
    "phone",
    "phone_hash",
    "unionid",
    "openid",
    "external_userid",
    "tmall_ouid",
    "jd_pin",
    "douyin_open_id",
    "card",
    "device_id",
    "nickname",
)
(
    PHONE,
    PHONE_HASH,
    UNIONID,
    OPENID,
    EXTERNAL_USERID,
    TMALL_OUID,
    JD_PIN,
    DOUYIN_OPEN_ID,
    CARD,
    DEVICE_ID,
    NICKNAME,
) = range(len(TYPES))
WEAK = (DEVICE_ID, NICKNAME)
TYPE_SHIFT = 48  # (type << 48) | key orders identifiers by type, then key (keys < 2**40)
_KEY_MASK = (1 << TYPE_SHIFT) - 1

CHANNELS = ("pos", "miniprogram", "official_account", "wecom", "tmall", "jd", "douyin", "youzan")
POS, MINIPROGRAM, OFFICIAL_ACCOUNT, WECOM, TMALL, JD, DOUYIN, YOUZAN = range(len(CHANNELS))
ORDER_PREFIX = (b"PS", b"MP", b"OA", b"WC", b"TM", b"JD", b"DY", b"YZ")

# Mainland mobile numbers are 1[3-9] + 9 digits. Primary phones are the 7e8 numbers whose
# digit sum is 0 mod 10, second phones (after a change) those at 5 mod 10; a typo changes
# one digit by anything but 5, so it lands in neither class and never hits a real phone;
# swapping two adjacent digits keeps the class, so such a typo is checked against the
# persons' phones by inverting the permutation (`IdSpace.is_real_phone`).
PHONE_SPACE = 7 * 10**8
PRIMARY_CLASS, SECOND_CLASS = 0, 5
TYPO_DELTAS = np.array([1, 2, 3, 4, 6, 7, 8, 9], dtype=np.int64)


def digit_sum(x: I64, n_digits: int) -> I64:
    """Sum of the lowest n_digits decimal digits."""
    total = np.zeros_like(x)
    for _ in range(n_digits):
        total += x % 10
        x = x // 10
    return total


def phone_from_index(idx: U64, digit_class: int) -> I64:
    """Index in [0, 7e8) -> 11-digit number 1[3-9]dddddddd + check digit."""
    i = idx.astype(np.int64)
    a = 3 + i // 10**8
    d = i % 10**8
    check = (digit_class - 1 - a - digit_sum(d, 8)) % 10
    return 10**10 + a * 10**9 + d * 10 + check


def typo(phone: I64, position: I64, delta: I64) -> I64:
    """One digit wrong: digit `position` (2..10, from the left) shifted by `delta` (mod 10)."""
    place = np.power(np.int64(10), 10 - position).astype(np.int64)
    digit = (phone // place) % 10
    return (phone + ((digit + delta) % 10 - digit) * place).astype(np.int64)


def transpose(phone: I64, start: I64) -> I64:
    """Two adjacent digits swapped: the first differing pair at or after digit `start`
    (2..9 from the left, wrapping within 2..9); the phone itself if no pair differs."""
    out = phone.copy()
    done = np.zeros(len(phone), dtype=bool)
    for step in range(8):
        position = 2 + (start - 2 + step) % 8
        high = np.power(np.int64(10), 10 - position).astype(np.int64)
        low = high // 10
        a, b = (phone // high) % 10, (phone // low) % 10
        hit = ~done & (a != b)
        out = np.where(hit, phone + (b - a) * high + (a - b) * low, out)
        done |= hit
    return out.astype(np.int64)


class IdSpace:
    """Spells identifier keys, order, event and refund ids for one seed."""

    def __init__(self, seed: int, nicknames: list[str], members: int, card_range: int) -> None:
        rng = Rng(seed)
        self._k = {
            name: rng.base("perm." + name)
            for name in (*TYPES, "phone2", "ref", "order", "event", "refund", "fill")
        }
        self._nicknames = pa.array(nicknames, type=pa.string())
        self.members = members
        # Each brand's serials are a keyed permutation of one shared range, `card_range`
        # numbers per person: a card of one brand has the number of another brand's card
        # with a probability of about (that brand's cards) / (the range).
        self.card_space = card_range * members
        self._card_k = [rng.base(f"perm.card.{b}") for b in range(4)]

    def card_key(self, pid: I64, brand: I64, copy: I64 | int = 0) -> I64:
        """Key (4 x serial + brand) of a person's card at a brand; `copy` 1 is a second card
        of the same brand (a duplicate registration)."""
        pid, brand = np.broadcast_arrays(np.asarray(pid, np.int64), np.asarray(brand, np.int64))
        index = pid * 2 + np.broadcast_to(np.asarray(copy, np.int64), pid.shape)
        serial = np.zeros(pid.shape, dtype=np.int64)
        for b in np.unique(brand).tolist():
            at = brand == b
            serial[at] = permute_below(index[at], self.card_space, self._card_k[b]).astype(np.int64)
        return serial * 4 + brand

    def is_real_phone(self, phone: I64) -> Bool:
        """Whether a phone is some person's primary or changed-to number (with fewer than
        `members` persons: a changed-to number is counted whether or not its person changed)."""
        a = (phone // 10**9) % 10
        index = ((a - 3) * 10**8 + (phone // 10) % 10**8).astype(np.uint64)
        cls = digit_sum(phone, 11) % 10
        out = np.zeros(len(phone), dtype=bool)
        for digit_class, key in ((PRIMARY_CLASS, "phone"), (SECOND_CLASS, "phone2")):
            at = (cls == digit_class) & (a >= 3)
            if at.any():
                pid = unpermute_below(index[at], PHONE_SPACE, self._k[key])
                out[at] = pid < np.uint64(self.members)
        return out

    def primary_phone(self, pid: ArrayLike) -> I64:
        """The person's own phone number (int), a bijection of the person index."""
        return phone_from_index(permute_below(pid, PHONE_SPACE, self._k["phone"]), PRIMARY_CLASS)

    def second_phone(self, pid: ArrayLike) -> I64:
        """The number a person changes to; never equal to any primary phone."""
        return phone_from_index(permute_below(pid, PHONE_SPACE, self._k["phone2"]), SECOND_CLASS)

    def _core(self, kind: str, keys: ArrayLike, bits: int) -> U64:
        return permute(keys, bits, self._k[kind])

    def _fill(self, core: U64, salt: int) -> U64:
        return mix(core ^ np.uint64((self._k["fill"] + salt) & 0xFFFFFFFFFFFFFFFF))

    def render(self, type_code: int, keys: ArrayLike) -> pa.Array:
        """String values of identifiers of one type."""
        k = np.atleast_1d(np.asarray(keys)).astype(np.int64)
        n = len(k)
        kind = TYPES[type_code]
        enc = text.encode
        if type_code == PHONE:
            return text.strings(text.const(b"+86", n), enc(k, 11))
        if type_code == PHONE_HASH:
            rows = enc(k, 11).view("S11").ravel().tolist()
            return pa.array([hashlib.sha256(r).hexdigest() for r in rows], type=pa.string())
        if type_code == NICKNAME:
            return text.take(self._nicknames, k)
        if type_code == CARD:
            return text.strings(text.const(b"8", n), enc(k >> 2, CARD_SERIAL_DIGITS))
        if type_code in (UNIONID, OPENID, EXTERNAL_USERID):
            core = self._core(kind, k, 42)
            lead = {UNIONID: b"o", OPENID: b"o", EXTERNAL_USERID: b"wm"}[type_code]
            width = {UNIONID: 21, OPENID: 20, EXTERNAL_USERID: 23}[type_code]
            fill = [enc(self._fill(core, s), 10, text.BASE64URL) for s in (1, 2, 3)]
            tail = np.hstack(fill)[:, :width]
            return text.strings(text.const(lead, n), enc(core, 7, text.BASE64URL), tail)
        if type_code in (TMALL_OUID, DOUYIN_OPEN_ID):
            core = self._core(kind, k, 42)
            lead, width = (b"AAH", 13) if type_code == TMALL_OUID else (b"_000", 24)
            fill = [enc(self._fill(core, s), 10, text.BASE62) for s in (4, 5, 6)]
            tail = np.hstack(fill)[:, :width]
            return text.strings(text.const(lead, n), tail, enc(core, 8, text.BASE62))
        if type_code == JD_PIN:
            core = self._core(kind, k, 42)
            tail = enc(self._fill(core, 7), 4, text.BASE36)
            return text.strings(text.const(b"jd_", n), tail, enc(core, 9, text.BASE36))
        if type_code == DEVICE_ID:
            core = self._core(kind, k, 40)
            h = np.hstack(
                [
                    enc(core, 10, text.HEX_UPPER),
                    text.hexbytes(self._fill(core, 8), 16),
                    text.hexbytes(self._fill(core, 9), 6),
                ]
            )
            dash = text.const(b"-", n)
            return text.strings(
                h[:, :8], dash, h[:, 8:12], dash, h[:, 12:16], dash, h[:, 16:20], dash, h[:, 20:]
            )
        raise ValueError(f"identifier type: unknown code {type_code}")

    def render_mixed(self, types: I64, keys: I64) -> pa.Array:
        """String values of identifiers of mixed types, in row order.

        Each distinct identifier is spelled once: events repeat a few accounts many times.
        """
        if not len(types):
            return pa.array([], type=pa.string())
        unique, inverse = np.unique((types << TYPE_SHIFT) | keys, return_inverse=True)
        u_types, u_keys = unique >> TYPE_SHIFT, unique & _KEY_MASK
        bounds = np.flatnonzero(np.diff(u_types)) + 1
        parts = [
            self.render(int(u_types[lo]), u_keys[lo:hi])
            for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(u_types)], strict=True)
        ]
        return pa.concat_arrays(parts).take(pa.array(inverse.ravel()))

    def member_ref(self, card_key: I64) -> pa.Array:
        """Member number of a card: M + brand number + 11 digits."""
        core = self._core("ref", card_key, 36)
        return text.strings(
            text.const(b"M", len(core)), text.encode(card_key % 4 + 1, 2), text.encode(core, 11)
        )

    def order_id(self, channel: I64, order_key: I64) -> pa.Array:
        """Channel prefix + 13 digits; order_key = person x 512 + order slot."""
        core = self._core("order", order_key, 42)
        return text.strings(text.per_row(ORDER_PREFIX, channel), text.encode(core, 13))

    def refund_id(self, order_key: I64) -> pa.Array:
        """R + 13 digits (at most one refund per order)."""
        core = self._core("refund", order_key, 42)
        return text.strings(text.const(b"R", len(core)), text.encode(core, 13))

    def event_id(self, event_key: I64) -> pa.Array:
        """E + 14 digits; event_key = person x 4096 + the event's rank for that person."""
        core = self._core("event", event_key, 46)
        return text.strings(text.const(b"E", len(core)), text.encode(core, 14))
