"""The in-memory OneID kernel: constraint-aware connected components over identifiers.

Arrays in, arrays out; reading identifiers from the store and writing members back is
someone else's job. Nodes are identifiers, edges are observations that two identifiers
belong to one person. Edges are applied in priority order with a union-find that refuses a
union when the merged component would hold two different nodes of one exclusive class
(two unionids, two cards of one brand, two verified phones), unless both nodes are
`time_disjoint` and were seen in disjoint intervals (a phone change). Weak nodes (device,
nickname) never join two components: each one follows its first-priority strong neighbour.

The hot loops are numba; 10M nodes / 30M edges resolve in seconds on one core.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from siyu.errors import ValidationError

_NONE = -1
_MAX_SIZE = 2**31 - 1  # nodes and edges: the kernel packs indexes in 31 bits


class GraphInputError(ValidationError, ValueError):
    """An identity-graph array broke a rule; `field` names the array."""

    code = "identity_graph_invalid"


def _check(field: str, value: object, dtype: type, ref: tuple[str, int] | None) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise GraphInputError(field, f"must be a numpy array, got {type(value).__name__}")
    if value.ndim != 1:
        raise GraphInputError(field, f"must be 1-D, got shape {value.shape}")
    if value.dtype != np.dtype(dtype):
        raise GraphInputError(field, f"must have dtype {np.dtype(dtype)}, got {value.dtype}")
    if ref is not None and value.shape[0] != ref[1]:
        raise GraphInputError(
            field, f"must have the length of {ref[0]} ({ref[1]}), got {value.shape[0]}"
        )
    return value


@dataclass(frozen=True, eq=False)
class IdentityGraph:
    """Nodes (identifiers) and edges (links between them) of one brand's identity graph."""

    strong: np.ndarray  # bool[n]; weak nodes never bridge two components
    exclusive_class: np.ndarray  # int32[n]; -1 = none; >= 0: at most one node per component
    time_disjoint: np.ndarray  # bool[n]; same-class nodes may share a component if seen apart
    first_seen: np.ndarray  # int64[n] epoch seconds
    last_seen: np.ndarray  # int64[n] epoch seconds, >= first_seen
    edge_a: np.ndarray  # int64[m] node index
    edge_b: np.ndarray  # int64[m] node index
    edge_priority: np.ndarray  # int64[m]; applied ascending, ties by edge index
    edge_blocked: np.ndarray  # bool[m]; blocked by an operator, ignored

    def __post_init__(self) -> None:
        strong = _check("strong", self.strong, np.bool_, None)
        n = ("strong", strong.shape[0])
        cls = _check("exclusive_class", self.exclusive_class, np.int32, n)
        _check("time_disjoint", self.time_disjoint, np.bool_, n)
        first = _check("first_seen", self.first_seen, np.int64, n)
        last = _check("last_seen", self.last_seen, np.int64, n)
        a = _check("edge_a", self.edge_a, np.int64, None)
        m = ("edge_a", a.shape[0])
        b = _check("edge_b", self.edge_b, np.int64, m)
        _check("edge_priority", self.edge_priority, np.int64, m)
        _check("edge_blocked", self.edge_blocked, np.bool_, m)
        if n[1] > _MAX_SIZE or m[1] > _MAX_SIZE:
            raise GraphInputError("strong" if n[1] > _MAX_SIZE else "edge_a", "at most 2**31-1")
        if cls.size and cls.min() < _NONE:
            raise GraphInputError("exclusive_class", "must be -1 (none) or a class >= 0")
        if np.any(cls[~strong] != _NONE):
            raise GraphInputError(
                "exclusive_class", "must be -1 on weak nodes: they never merge, so cannot clash"
            )
        if np.any(last < first):
            raise GraphInputError("last_seen", "must be >= first_seen")
        for field, ends in (("edge_a", a), ("edge_b", b)):
            if ends.size and (ends.min() < 0 or ends.max() >= n[1]):
                raise GraphInputError(field, f"must hold node indexes in [0, {n[1]})")

    @property
    def n_nodes(self) -> int:
        return int(self.strong.shape[0])


@dataclass(frozen=True, eq=False)
class Resolution:
    """Components of an identity graph, and what the constraints refused or allowed."""

    labels: np.ndarray  # int64[n]: smallest node index of the node's component
    conflict_edges: np.ndarray  # int64[k]: edges refused, in the order they were tried
    conflict_nodes: np.ndarray  # int64[k, 2]: clashing same-class nodes (a's side, b's side)
    time_disjoint_edges: np.ndarray  # int64[j]: edges accepted only by the time-disjoint rule
    weak_ambiguous: np.ndarray  # int64[w]: weak nodes whose strong neighbours span 2+ components


def resolve(graph: IdentityGraph) -> Resolution:
    """Constraint-aware connected components of `graph`; deterministic for a given input."""
    c = np.ascontiguousarray
    ends, index = _sorted_edges(
        c(graph.edge_a), c(graph.edge_b), c(graph.edge_priority), c(graph.edge_blocked)
    )
    n = graph.n_nodes
    # The randomly accessed work arrays come from numpy, which asks Linux for huge pages:
    # far fewer TLB misses than numba's own allocations (the sort's are sequential).
    labels, conf, conf_x, conf_y, n_conf, td, n_td, ambiguous = _kernel(
        c(graph.strong), c(graph.exclusive_class), c(graph.time_disjoint),
        c(graph.first_seen), c(graph.last_seen), ends, index,
        np.empty((n, 8), np.int32), np.empty(n, np.int64),
    )  # fmt: skip
    return Resolution(
        labels=labels,
        conflict_edges=conf[:n_conf].astype(np.int64),
        conflict_nodes=np.stack([conf_x[:n_conf], conf_y[:n_conf]], axis=1).astype(np.int64),
        time_disjoint_edges=td[:n_td].astype(np.int64),
        weak_ambiguous=np.flatnonzero(ambiguous).astype(np.int64),
    )


_DIGIT_BITS = 8  # 256 buckets per pass: measured faster than 11 or 16 bits
_BUCKETS = 1 << _DIGIT_BITS
_LOW32 = (1 << 32) - 1
_AHEAD = 16  # prefetch the nodes of the edge this far ahead, their parents half as far


def _prefetch_intrinsic(typingctx: Any, arr: Any, i: Any) -> Any:
    """Hint the CPU to fetch arr.flat[i]: union-find is bound by cache misses, not work."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        ptr = builder.bitcast(builder.gep(data, [args[1]]), ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch")
        builder.call(fn, [ptr, i32(0), i32(3), i32(1)])  # read, keep in all caches, data
        return context.get_dummy_value()

    return types.void(arr, i), codegen


_prefetch: Any = intrinsic(_prefetch_intrinsic)


@njit(cache=True)
def _sorted_edges(
    ea: np.ndarray, eb: np.ndarray, priority: np.ndarray, blocked: np.ndarray
) -> tuple:  # pragma: no cover - numba
    """Edges that are not blocked nor self-loops, in (priority, index) order.

    Each edge travels as its two ends packed in a uint64 plus its int32 index through a
    stable LSD radix sort: sequential passes instead of a random gather per edge later.
    """
    m = ea.size
    sign = np.uint64(1) << np.uint64(63)
    keys, ends, index = np.empty(m, np.uint64), np.empty(m, np.uint64), np.empty(m, np.int32)
    live = 0
    low = ~np.uint64(0)
    high = np.uint64(0)
    for e in range(m):
        if blocked[e] or ea[e] == eb[e]:
            continue
        k = np.uint64(priority[e]) ^ sign  # order-preserving int64 -> uint64
        keys[live] = k
        low = min(low, k)
        high = max(high, k)
        ends[live] = (np.uint64(ea[e]) << np.uint64(32)) | np.uint64(eb[e])
        index[live] = e
        live += 1
    keys, ends, index = keys[:live], ends[:live], index[:live]
    bits = 0
    span = high - low if live else np.uint64(0)
    while span > 0:
        span >>= np.uint64(1)
        bits += 1
    passes = (bits + _DIGIT_BITS - 1) // _DIGIT_BITS  # only the bits that vary cost a pass
    mask = np.uint64(_BUCKETS - 1)
    counts = np.zeros((max(passes, 1), _BUCKETS), np.int64)
    for i in range(live):
        keys[i] -= low
        for p in range(passes):
            counts[p, (keys[i] >> np.uint64(p * _DIGIT_BITS)) & mask] += 1
    keys2, ends2, index2 = np.empty_like(keys), np.empty_like(ends), np.empty_like(index)
    for p in range(passes):
        slot = counts[p]
        if slot.max() == live:
            continue  # every key has the same digit here: the pass would move nothing
        total = 0
        for d in range(_BUCKETS):
            total, slot[d] = total + slot[d], total
        shift = np.uint64(p * _DIGIT_BITS)
        for i in range(live):
            d = (keys[i] >> shift) & mask
            j = slot[d]
            slot[d] = j + 1
            keys2[j] = keys[i]
            ends2[j] = ends[i]
            index2[j] = index[i]
        keys, keys2 = keys2, keys
        ends, ends2 = ends2, ends
        index, index2 = index2, index
    return ends, index


@njit(cache=True)
def _find(rec: np.ndarray, x: Any) -> Any:  # pragma: no cover - numba
    while rec[x, 0] != x:  # field 0: parent
        rec[x, 0] = rec[rec[x, 0], 0]  # path halving
        x = rec[x, 0]
    return x


@njit(cache=True)
def _push(buf: np.ndarray, count: int, value: int) -> np.ndarray:  # pragma: no cover - numba
    if count == buf.size:
        grown = np.empty(2 * buf.size, buf.dtype)
        grown[:count] = buf
        buf = grown
    buf[count] = value
    return buf


# Fields of a node's 32-byte record: two records share a cache line, so what the union
# loop reads about a node (and about a root) costs one miss, prefetched ahead.
_PARENT, _SIZE, _HEAD, _MASK, _TAIL, _NEXT, _CLASS, _TD = range(8)
_SMALLEST = _TAIL  # reused once the unions are done


@njit(cache=True)
def _kernel(  # pragma: no cover - numba
    strong: np.ndarray,
    cls: np.ndarray,
    td: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    ends: np.ndarray,
    index: np.ndarray,
    rec: np.ndarray,
    labels: np.ndarray,
) -> tuple:
    n = strong.size
    # size 0 marks a weak node; a root heads a linked list (head, tail, next) of its
    # component's exclusive nodes and keeps a 32-bit filter of their classes (class % 32):
    # disjoint filters mean no clash, so most unions never walk the lists.
    for i in range(n):
        rec[i, _PARENT] = i
        rec[i, _SIZE] = 1 if strong[i] else 0
        rec[i, _HEAD] = rec[i, _TAIL] = rec[i, _NEXT] = _NONE
        rec[i, _MASK] = 0
        rec[i, _CLASS] = cls[i]
        rec[i, _TD] = 1 if td[i] else 0
        if cls[i] >= 0:
            rec[i, _HEAD] = rec[i, _TAIL] = i
            rec[i, _MASK] = np.int32(np.uint32(1) << np.uint32(cls[i] & 31))
    flat = rec.reshape(-1)
    width = rec.shape[1]
    conf = np.empty(16, np.int32)
    conf_x = np.empty(16, np.int32)
    conf_y = np.empty(16, np.int32)
    tde = np.empty(16, np.int32)
    weak = np.empty(16, np.int64)
    n_conf = n_td = n_weak = 0
    live = ends.size
    hi, lo = np.uint64(32), np.uint64(_LOW32)
    for k in range(live):
        if k + _AHEAD < live:
            _prefetch(flat, np.int64(ends[k + _AHEAD] >> hi) * width)
            _prefetch(flat, np.int64(ends[k + _AHEAD] & lo) * width)
        if k + _AHEAD // 2 < live:
            _prefetch(flat, np.int64(rec[np.int64(ends[k + _AHEAD // 2] >> hi), 0]) * width)
            _prefetch(flat, np.int64(rec[np.int64(ends[k + _AHEAD // 2] & lo), 0]) * width)
        a = np.int64(ends[k] >> hi)
        b = np.int64(ends[k] & lo)
        if rec[a, _SIZE] == 0 or rec[b, _SIZE] == 0:  # weak end: attach later; both: ignore
            if rec[a, _SIZE] != 0 or rec[b, _SIZE] != 0:
                weak = _push(weak, n_weak, k)
                n_weak += 1
            continue
        ra = _find(rec, a)
        rb = _find(rec, b)
        if ra == rb:
            continue
        clash_x = clash_y = _NONE
        via_td = False
        if rec[ra, _MASK] & rec[rb, _MASK]:
            x = rec[ra, _HEAD]
            while x != _NONE and clash_x == _NONE:
                y = rec[rb, _HEAD]
                while y != _NONE:
                    if rec[x, _CLASS] == rec[y, _CLASS]:
                        if (
                            rec[x, _TD]
                            and rec[y, _TD]
                            and (last[x] < first[y] or last[y] < first[x])
                        ):
                            via_td = True
                        else:
                            clash_x = x
                            clash_y = y
                            break
                    y = rec[y, _NEXT]
                x = rec[x, _NEXT]
        if clash_x != _NONE:
            conf = _push(conf, n_conf, index[k])
            conf_x = _push(conf_x, n_conf, clash_x)
            conf_y = _push(conf_y, n_conf, clash_y)
            n_conf += 1
            continue
        if via_td:
            tde = _push(tde, n_td, index[k])
            n_td += 1
        if rec[ra, _SIZE] < rec[rb, _SIZE]:
            ra, rb = rb, ra
        rec[rb, _PARENT] = ra
        rec[ra, _SIZE] += rec[rb, _SIZE]
        if rec[rb, _HEAD] != _NONE:
            if rec[ra, _HEAD] == _NONE:
                rec[ra, _HEAD] = rec[rb, _HEAD]
            else:
                rec[rec[ra, _TAIL], _NEXT] = rec[rb, _HEAD]
            rec[ra, _TAIL] = rec[rb, _TAIL]
            rec[ra, _MASK] |= rec[rb, _MASK]
    # Weak nodes follow the strong neighbour of their first edge in priority order,
    # looked up once every strong union is done so the component is the final one.
    ambiguous = np.zeros(n, np.bool_)
    attach = np.full(n, _NONE, np.int32)
    for i in range(n_weak):
        a = np.int64(ends[weak[i]] >> hi)
        b = np.int64(ends[weak[i]] & lo)
        w, s = (b, a) if strong[a] else (a, b)
        r = _find(rec, s)
        if attach[w] == _NONE:
            attach[w] = r
        elif attach[w] != r:
            ambiguous[w] = True
    for node in range(n):
        rec[node, _SMALLEST] = _NONE
        if attach[node] != _NONE:
            rec[node, _PARENT] = attach[node]
    for i in range(n):  # ascending i: the first node seen of a component is its smallest
        if i + _AHEAD < n:
            _prefetch(flat, np.int64(rec[i + _AHEAD, _PARENT]) * width)
        r = _find(rec, i)
        if rec[r, _SMALLEST] == _NONE:
            rec[r, _SMALLEST] = i
        labels[i] = rec[r, _SMALLEST]
    return labels, conf, conf_x, conf_y, n_conf, tde, n_td, ambiguous
