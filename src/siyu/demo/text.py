"""Build Arrow string columns from integer arrays without a Python loop per row.

Fixed-width ids are assembled as an (n, width) matrix of ASCII bytes and handed to Arrow
as one buffer; variable text (Chinese names, store ids) is taken from small dictionaries.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import ArrayLike, NDArray

from siyu.demo.rand import U64, Bool

Chars = NDArray[np.uint8]
DIGITS = b"0123456789"
HEX_UPPER = b"0123456789ABCDEF"
BASE36 = b"0123456789abcdefghijklmnopqrstuvwxyz"
BASE62 = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
BASE64URL = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def encode(values: ArrayLike, width: int, alphabet: bytes = DIGITS) -> Chars:
    """Right-aligned base-len(alphabet) digits of `values`, zero padded, as (n, width) bytes.

    Values must be below len(alphabet) ** width, or high digits are lost.
    """
    v = np.atleast_1d(np.asarray(values)).astype(np.uint64)
    base = np.uint64(len(alphabet))
    table = np.frombuffer(alphabet, dtype=np.uint8)
    out = np.empty((len(v), width), dtype=np.uint8)
    for col in range(width - 1, -1, -1):
        out[:, col] = table[(v % base).astype(np.intp)]
        v = v // base
    return out


def const(prefix: bytes, n: int) -> Chars:
    """The same ASCII prefix on n rows."""
    return np.tile(np.frombuffer(prefix, dtype=np.uint8), (n, 1)).reshape(n, len(prefix))


def per_row(prefixes: Sequence[bytes], index: ArrayLike) -> Chars:
    """A prefix chosen per row from equal-length `prefixes` by `index`."""
    table = np.array([np.frombuffer(p, dtype=np.uint8) for p in prefixes], dtype=np.uint8)
    return table[np.asarray(index, dtype=np.intp)]


def strings(*parts: Chars, mask: Bool | None = None) -> pa.Array:
    """Concatenate byte matrices column-wise into an Arrow string array (nulls where mask)."""
    mat = (
        np.ascontiguousarray(np.hstack(parts)) if len(parts) > 1 else np.ascontiguousarray(parts[0])
    )
    n, width = mat.shape
    offsets = np.arange(n + 1, dtype=np.int32) * np.int32(width)
    validity = None
    null_count = 0
    if mask is not None and mask.any():
        validity = pa.py_buffer(np.packbits(~mask, bitorder="little").tobytes())
        null_count = int(mask.sum())
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(mat.tobytes()), validity, null_count
    )


def take(dictionary: pa.Array, index: ArrayLike, mask: Bool | None = None) -> pa.Array:
    """`dictionary[index]` as a plain Arrow array; null where `mask` (or index < 0)."""
    idx = np.atleast_1d(np.asarray(index)).astype(np.int64)
    null = idx < 0 if mask is None else (mask | (idx < 0))
    if null.any():
        return pc.take(dictionary, pa.array(np.where(null, 0, idx), mask=null))
    return pc.take(dictionary, pa.array(idx))


def hexbytes(bits: U64, width: int) -> Chars:
    """Upper-case hex digits of 64-bit values (width <= 16)."""
    return encode(bits, width, HEX_UPPER)
