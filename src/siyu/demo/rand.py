"""Counter-based random numbers and keyed permutations, all vectorised over numpy arrays.

Every draw is a pure function of (seed, stream name, keys such as the person index and the
order number). A `numpy.random.Generator` would make a person's data depend on how many
numbers were drawn before it, so a different `chunk_persons` would change the output;
hashing makes chunking change memory use only, never content.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

U64 = NDArray[np.uint64]
I64 = NDArray[np.int64]
F64 = NDArray[np.float64]
Bool = NDArray[np.bool_]
Arr = NDArray[Any]

_MASK64 = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO_53 = 1.0 / float(1 << 53)


def mix_int(x: int) -> int:
    """SplitMix64 finaliser on a Python int (for stream bases and permutation keys)."""
    x &= _MASK64
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & _MASK64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def mix(z: U64) -> U64:
    """SplitMix64 finaliser on a uint64 array; a bijection with good avalanche."""
    z = z ^ (z >> np.uint64(30))
    z = z * _M1
    z = z ^ (z >> np.uint64(27))
    z = z * _M2
    return z ^ (z >> np.uint64(31))


def _u64(key: ArrayLike) -> U64:
    return np.atleast_1d(np.asarray(key)).astype(np.uint64)


class Rng:
    """Named random streams; `rng.u("city", pid)` is the same number for the same person."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._bases: dict[str, int] = {}

    def base(self, name: str) -> int:
        """The 64-bit base of a stream: seed and name hashed together."""
        b = self._bases.get(name)
        if b is None:
            b = mix_int(mix_int(self.seed + 0x5EED) ^ zlib.crc32(name.encode()))
            self._bases[name] = b
        return b

    def bits(self, name: str, *keys: ArrayLike) -> U64:
        """64 random bits per element of the broadcast keys."""
        arrays = np.broadcast_arrays(*[_u64(k) for k in keys])
        h = np.full(arrays[0].shape, self.base(name), dtype=np.uint64)
        for k in arrays:
            h = mix(h + k.astype(np.uint64) * _GOLDEN)
        return h

    def u(self, name: str, *keys: ArrayLike) -> F64:
        """Uniform in the open interval (0, 1), so `log(u)` is always finite."""
        b = self.bits(name, *keys)
        return ((b >> np.uint64(11)).astype(np.float64) + 0.5) * _TWO_53

    def flag(self, name: str, p: ArrayLike, *keys: ArrayLike) -> Bool:
        """True with probability `p` (scalar or per element)."""
        return self.u(name, *keys) < np.asarray(p)

    def below(self, name: str, n: ArrayLike, *keys: ArrayLike) -> I64:
        """Uniform integer in [0, n) (n scalar or per element, n >= 1)."""
        n_arr = np.asarray(n, dtype=np.int64)
        out = (self.u(name, *keys) * n_arr).astype(np.int64)
        return np.minimum(out, n_arr - 1)

    def uniform(self, name: str, lo: ArrayLike, hi: ArrayLike, *keys: ArrayLike) -> F64:
        """Uniform in (lo, hi)."""
        lo_a = np.asarray(lo, dtype=np.float64)
        return lo_a + (np.asarray(hi, dtype=np.float64) - lo_a) * self.u(name, *keys)

    def exp(self, name: str, *keys: ArrayLike) -> F64:
        """Standard exponential (mean 1)."""
        return -np.log(self.u(name, *keys))

    def normal(self, name: str, *keys: ArrayLike) -> F64:
        """Standard normal by Box-Muller on two independent streams."""
        r = np.sqrt(-2.0 * np.log(self.u(name + "#r", *keys)))
        return r * np.cos(2.0 * np.pi * self.u(name + "#t", *keys))

    def choice(self, name: str, cum: F64, *keys: ArrayLike) -> I64:
        """Index drawn with probabilities given by the cumulative weights `cum`."""
        x = self.u(name, *keys) * cum[-1]
        idx = np.searchsorted(cum, x, side="right").astype(np.int64)
        return np.minimum(idx, len(cum) - 1)


def permute(x: ArrayLike, bits: int, key: int) -> U64:
    """Keyed bijection of [0, 2**bits) (4-round Feistel, `bits` even).

    Identifier values are built from permuted indices so they are unique by construction
    yet reveal nothing about the person or order they came from.
    """
    if bits % 2 or bits < 2 or bits > 62:
        raise ValueError(f"permute bits: must be even in 2..62, got {bits}")
    half = bits // 2
    mask = np.uint64((1 << half) - 1)
    v = _u64(x)
    left = v >> np.uint64(half)
    right = v & mask
    for r in range(4):
        rk = np.uint64(mix_int(key * 4 + r + 1))
        left, right = right, left ^ (mix(right ^ rk) & mask)
    return (left << np.uint64(half)) | right


def unpermute(y: ArrayLike, bits: int, key: int) -> U64:
    """The inverse of `permute`: `unpermute(permute(x, b, k), b, k) == x`."""
    if bits % 2 or bits < 2 or bits > 62:
        raise ValueError(f"permute bits: must be even in 2..62, got {bits}")
    half = bits // 2
    mask = np.uint64((1 << half) - 1)
    v = _u64(y)
    left = v >> np.uint64(half)
    right = v & mask
    for r in range(3, -1, -1):
        rk = np.uint64(mix_int(key * 4 + r + 1))
        left, right = right ^ (mix(left ^ rk) & mask), left
    return (left << np.uint64(half)) | right


def permute_below(x: ArrayLike, n: int, key: int) -> U64:
    """Keyed bijection of [0, n) by cycle walking a Feistel permutation."""
    bits = max(2, int(n - 1).bit_length())
    bits += bits % 2
    out = permute(x, bits, key)
    bad = out >= np.uint64(n)
    while bad.any():
        out[bad] = permute(out[bad], bits, key)
        bad = out >= np.uint64(n)
    return out


def group_starts(counts: I64) -> I64:
    """Start offset of each group in a flat array holding `counts[i]` items per group."""
    starts = np.zeros(len(counts), dtype=np.int64)
    if len(counts) > 1:
        np.cumsum(counts[:-1], out=starts[1:])
    return starts


def rank_in_group(counts: I64) -> I64:
    """0, 1, ... within each group of a flat array grouped by `counts`."""
    total = int(counts.sum())
    starts = group_starts(counts)
    return np.arange(total, dtype=np.int64) - np.repeat(starts, counts)


def unpermute_below(y: ArrayLike, n: int, key: int) -> U64:
    """The inverse of `permute_below` on [0, n): walks the cycle backwards."""
    bits = max(2, int(n - 1).bit_length())
    bits += bits % 2
    out = unpermute(y, bits, key)
    bad = out >= np.uint64(n)
    while bad.any():
        out[bad] = unpermute(out[bad], bits, key)
        bad = out >= np.uint64(n)
    return out
