"""Who truly owns each identifier: collected while rows are built, resolved per chunk.

Every row that emits an identifier also logs (type, key, owner, time). Strong identifiers
have one owner by construction; a weak one (a device shared in a household, a nickname
from the small pool) belongs to whoever saw it first, i.e. the earliest observation
(ties: the lower person id). Nicknames are shared across chunks, so they are resolved once
at the end over a running best-so-far per pool entry.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from siyu.demo.ids import NICKNAME, TYPE_SHIFT, WEAK
from siyu.demo.people import NO_TIME
from siyu.demo.rand import I64


class TruthLog:
    """Accumulates identifier observations of one chunk."""

    def __init__(self) -> None:
        self._parts: list[tuple[I64, I64, I64, I64]] = []

    def add(self, type_code: ArrayLike, key: I64, owner: I64, t: I64) -> None:
        """Log identifiers (type scalar or per row) with their true owner and observation time."""
        n = len(key)
        if n:
            types = np.broadcast_to(np.asarray(type_code, dtype=np.int64), (n,))
            self._parts.append(
                (types, key.astype(np.int64), owner.astype(np.int64), t.astype(np.int64))
            )

    def resolve(self) -> tuple[I64, I64, I64, I64]:
        """Unique (type, key) with owner and first-seen time, sorted by owner, type and key."""
        if not self._parts:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty, empty
        types, keys, owners, times = (np.concatenate(c) for c in zip(*self._parts, strict=True))
        combined = (types << TYPE_SHIFT) | keys
        weak = np.isin(types, WEAK)
        strong = _first_per_key(combined[~weak], owners[~weak], times[~weak], check_owner=True)
        weak_first = _first_per_key(combined[weak], owners[weak], times[weak], check_owner=False)
        c, owners, times = (np.concatenate(x) for x in zip(strong, weak_first, strict=True))
        # by owner: owners lie in the chunk's person range, so chunks concatenate in order
        by_owner = np.lexsort((c, owners))
        c, owners, times = c[by_owner], owners[by_owner], times[by_owner]
        return c >> TYPE_SHIFT, c & ((1 << TYPE_SHIFT) - 1), owners, times


def _first_per_key(
    combined: I64, owners: I64, times: I64, check_owner: bool
) -> tuple[I64, I64, I64]:
    """One row per key: the earliest observation (ties: lower owner).

    With `check_owner` (strong identifiers) every observation must name the same owner;
    anything else is a generator bug. Sorting one key is then enough, which matters: the
    log holds every event's identifier.
    """
    if not len(combined):
        return combined, owners, times
    if check_owner:
        order = np.argsort(combined, kind="stable")
    else:
        order = np.lexsort((owners, times, combined))
    combined, owners, times = combined[order], owners[order], times[order]
    first = np.ones(len(combined), dtype=bool)
    first[1:] = combined[1:] != combined[:-1]
    starts = np.flatnonzero(first)
    if check_owner:
        if np.any(np.minimum.reduceat(owners, starts) != np.maximum.reduceat(owners, starts)):
            raise RuntimeError("generator bug: a strong identifier has two owners")
        return combined[starts], owners[starts], np.minimum.reduceat(times, starts)
    return combined[starts], owners[starts], times[starts]


class NicknameOwners:
    """First observer of each nickname across all chunks."""

    def __init__(self, pool: int) -> None:
        self.time = np.full(pool, NO_TIME, dtype=np.int64)
        self.owner = np.full(pool, -1, dtype=np.int64)

    def update(self, keys: I64, owners: I64, times: I64) -> None:
        """Fold one chunk's first observations (unique keys) into the running best."""
        better = (times < self.time[keys]) | (
            (times == self.time[keys]) & (owners < self.owner[keys])
        )
        self.time[keys[better]] = times[better]
        self.owner[keys[better]] = owners[better]

    def resolved(self) -> tuple[I64, I64]:
        """(pool index, owner) of every nickname seen."""
        seen = np.flatnonzero(self.owner >= 0)
        return seen, self.owner[seen]


def split_nicknames(
    resolved: tuple[I64, I64, I64, I64],
) -> tuple[tuple[I64, I64, I64], tuple[I64, I64, I64]]:
    """Separate nickname rows (resolved globally) from the rest: (types, keys, owners) x 2."""
    types, keys, owners, times = resolved
    nick = types == NICKNAME
    return (types[~nick], keys[~nick], owners[~nick]), (keys[nick], owners[nick], times[nick])
