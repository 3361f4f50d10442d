"""The fair draw: a committed seed and a random number anyone can recompute.

When a pool is defined HQ's seed (32 random bytes, generated unless HQ brings its own) is
stored and only its SHA-256 is published: the commitment. Each draw's number is
HMAC-SHA256(seed, "<pool>|<member>|<draw key>"): unpredictable without the seed (a member
cannot choose a key that wins), fixed by it (HQ cannot change an outcome after the fact
without breaking the commitment), and once the seed is revealed after the pool ends,
anyone holding the log can recompute every draw (`audit.verify`).

The roll is the first 64 bits modulo one million (`ODDS_SCALE`); the bias of the modulo is
10**6 / 2**64, about 5e-14, far below any odds a pool can state. Prizes own consecutive
intervals of the million in prize-code order, each as wide as its `odds_ppm`; a roll past
the last interval is no prize.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from typing import Protocol

from siyu.lotteries.models import ODDS_SCALE


class Odds(Protocol):
    @property
    def prize_code(self) -> str: ...

    @property
    def odds_ppm(self) -> int: ...


def new_seed() -> bytes:
    return secrets.token_bytes(32)


def commitment(seed: bytes) -> str:
    """What is published when the pool opens: the seed's SHA-256."""
    return hashlib.sha256(seed).hexdigest()


def random_hex(seed: bytes, pool_code: str, member_id: int, key: str) -> str:
    message = f"{pool_code}|{member_id}|{key}".encode()
    return hmac.new(seed, message, hashlib.sha256).hexdigest()


def roll_of(random: str) -> int:
    return int(random[:16], 16) % ODDS_SCALE


def pick(roll: int, prizes: Sequence[Odds]) -> str | None:
    """The prize whose interval holds `roll`, or None (no prize)."""
    edge = 0
    for prize in sorted(prizes, key=lambda p: p.prize_code):
        edge += prize.odds_ppm
        if roll < edge:
            return prize.prize_code
    return None
