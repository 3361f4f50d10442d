"""The in-memory OneID kernel: constraint-aware connected components over identifiers.

Arrays in, arrays out; reading identifiers from the store and writing members back is
someone else's job. Nodes are identifiers, edges are observations that two identifiers
belong to one person. Edges are applied in priority order with a union-find that refuses a
union when the merged component would hold two different nodes of one exclusive class
(two unionids, two cards of one brand, two verified phones), unless both nodes are
`time_disjoint` and were seen in disjoint intervals (a phone change), or the edge is
*evidence* (a rule or a probabilistic match says two member records are one person) and
both nodes are `soft`: two cards of one brand joined by evidence are one person's duplicate
registration, while the same two cards joined by an account link (a phone typed at the
till) are two people sharing a phone. Weak nodes (device, nickname) never join two
components: each one follows its first-priority strong neighbour.
The hot loops are numba (10M nodes / 30M edges: seconds on one core, see bench/).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from siyu.identity.errors import GraphInputError

_NONE = -1
_MAX_SIZE = 2**31 - 1  # nodes and edges: the kernel packs indexes in 31 bits


def _check(field: str, value: object, dtype: Any, ref: tuple[str, int] | None) -> np.ndarray:
    if not (isinstance(value, np.ndarray) and value.ndim == 1 and value.dtype == dtype):
        got = f"{getattr(value, 'dtype', type(value).__name__)} {getattr(value, 'shape', '')}"
        raise GraphInputError(field, f"must be a 1-D numpy array of {np.dtype(dtype)}, got {got}")
    if ref is not None and value.shape[0] != ref[1]:
        raise GraphInputError(field, f"must match {ref[0]}'s length {ref[1]}, got {len(value)}")
    return value


_FIELDS = {  # the first field of each group sets the length of the others
    "strong": {"strong": np.bool_, "exclusive_class": np.int32, "time_disjoint": np.bool_,
               "first_seen": np.int64, "last_seen": np.int64, "soft": np.bool_},
    "edge_a": {"edge_a": np.int64, "edge_b": np.int64, "edge_priority": np.int64,
               "edge_blocked": np.bool_, "edge_evidence": np.bool_},
}  # fmt: skip


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
    # bool[n]; the node's exclusivity yields to evidence edges (cards); None = all False
    soft: np.ndarray | None = None
    # bool[m]; the edge is evidence that two records are one person; None = all False
    edge_evidence: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name, lead in (("soft", "strong"), ("edge_evidence", "edge_a")):
            if getattr(self, name) is None:
                like = getattr(self, lead)
                count = len(like) if hasattr(like, "__len__") else 0
                object.__setattr__(self, name, np.zeros(count, np.bool_))
        for lead, fields in _FIELDS.items():
            size = (lead, len(_check(lead, getattr(self, lead), fields[lead], None)))
            if size[1] > _MAX_SIZE:
                raise GraphInputError(lead, f"must have at most {_MAX_SIZE} entries")
            for field, dtype in fields.items():
                _check(field, getattr(self, field), dtype, size)
        n, cls = self.n_nodes, self.exclusive_class
        if cls.size and cls.min() < _NONE:
            raise GraphInputError("exclusive_class", "must be -1 (none) or a class >= 0")
        if np.any(cls[~self.strong] != _NONE):
            raise GraphInputError("exclusive_class", "must be -1 on weak nodes (they never merge)")
        if np.any(self.last_seen < self.first_seen):
            raise GraphInputError("last_seen", "must be >= first_seen")
        for field, ends in (("edge_a", self.edge_a), ("edge_b", self.edge_b)):
            if ends.size and (ends.min() < 0 or ends.max() >= n):
                raise GraphInputError(field, f"must hold node indexes in [0, {n})")

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
    # int64[e]: evidence edges accepted only because evidence may join soft nodes (the
    # duplicate registrations, reported)
    evidence_edges: np.ndarray
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
    assert graph.soft is not None and graph.edge_evidence is not None  # set by __post_init__
    labels, conflicts, phone_changes, soft_joins, weak = _kernel(
        c(graph.strong), c(graph.exclusive_class), c(graph.time_disjoint), c(graph.soft),
        c(graph.first_seen), c(graph.last_seen), ends, index, c(graph.edge_evidence),
        np.empty((n, 8), np.int32), np.empty(n, np.int64),
    )  # fmt: skip
    conflict_edges, conflict_nodes = conflicts[:, 0].copy(), conflicts[:, 1:].copy()
    return Resolution(
        labels, conflict_edges, conflict_nodes, phone_changes, soft_joins, weak.astype(np.int64)
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
    m, sign = ea.size, np.uint64(1) << np.uint64(63)
    keys, ends, index = np.empty(m, np.uint64), np.empty(m, np.uint64), np.empty(m, np.int32)
    live, low, high = 0, ~np.uint64(0), np.uint64(0)
    for e in range(m):
        if blocked[e] or ea[e] == eb[e]:
            continue
        k = np.uint64(priority[e]) ^ sign  # order-preserving int64 -> uint64
        keys[live], low, high = k, min(low, k), max(high, k)
        ends[live], index[live] = (np.uint64(ea[e]) << np.uint64(32)) | np.uint64(eb[e]), e
        live += 1
    keys, ends, index = keys[:live], ends[:live], index[:live]
    passes, span = 0, high - low if live else np.uint64(0)
    while passes * _DIGIT_BITS < 64 and span >> np.uint64(passes * _DIGIT_BITS):
        passes += 1  # only the digits that vary cost a pass
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
        slot[:] = np.cumsum(slot) - slot  # where each digit's run starts
        shift = np.uint64(p * _DIGIT_BITS)
        for i in range(live):
            d = (keys[i] >> shift) & mask
            j = slot[d]
            slot[d] = j + 1
            keys2[j], ends2[j], index2[j] = keys[i], ends[i], index[i]
        keys, keys2, ends, ends2, index, index2 = keys2, keys, ends2, ends, index2, index
    return ends, index


@njit(cache=True)
def _find(rec: np.ndarray, x: Any) -> Any:  # pragma: no cover - numba
    while rec[x, 0] != x:  # field 0: parent
        rec[x, 0] = rec[rec[x, 0], 0]  # path halving
        x = rec[x, 0]
    return x


@njit(cache=True)
def _push(buf: np.ndarray, count: int, value: Any) -> tuple:  # pragma: no cover - numba
    if count == buf.size:
        grown = np.empty(2 * buf.size, buf.dtype)
        grown[:count] = buf
        buf = grown
    buf[count] = value
    return buf, count + 1


# Fields of a node's 32-byte record: two records share a cache line, so what the union
# loop reads about a node (and about a root) costs one miss, prefetched ahead.
_PARENT, _SIZE, _HEAD, _MASK, _TAIL, _NEXT, _CLASS, _TD = range(8)


@njit(cache=True)
def _kernel(  # pragma: no cover - numba
    strong: np.ndarray, cls: np.ndarray, td: np.ndarray, soft: np.ndarray, first: np.ndarray,
    last: np.ndarray, ends: np.ndarray, index: np.ndarray, evidence: np.ndarray,
    rec: np.ndarray, labels: np.ndarray,
) -> tuple:  # fmt: skip
    n = strong.size
    # size 0 marks a weak node; a root heads a linked list (head, tail, next) of its
    # component's exclusive nodes and keeps a 32-bit filter of their classes (class % 32):
    # disjoint filters mean no clash, so most unions never walk the lists.
    for i in range(n):
        exclusive = cls[i] >= 0
        rec[i, _PARENT], rec[i, _SIZE], rec[i, _NEXT] = i, strong[i], _NONE
        rec[i, _HEAD] = rec[i, _TAIL] = i if exclusive else _NONE
        rec[i, _MASK] = np.int32(np.uint32(1) << np.uint32(cls[i] & 31)) if exclusive else 0
        # _TD holds two flags: bit 0 time-disjoint, bit 1 soft (yields to evidence)
        rec[i, _CLASS], rec[i, _TD] = cls[i], np.int32(td[i]) | (np.int32(soft[i]) << 1)
    flat, width, live = rec.reshape(-1), rec.shape[1], ends.size
    conf = np.empty(48, np.int64)  # (edge, clashing node on a's side, on b's side) per row
    tde, sje, weak = np.empty(16, np.int64), np.empty(16, np.int64), np.empty(16, np.int64)
    n_conf = n_td = n_sj = n_weak = 0
    hi, lo = np.uint64(32), np.uint64(_LOW32)
    for k in range(live):
        far, near = ends[min(k + _AHEAD, live - 1)], ends[min(k + _AHEAD // 2, live - 1)]
        _prefetch(flat, np.int64(far >> hi) * width)
        _prefetch(flat, np.int64(far & lo) * width)
        _prefetch(flat, np.int64(rec[np.int64(near >> hi), _PARENT]) * width)
        _prefetch(flat, np.int64(rec[np.int64(near & lo), _PARENT]) * width)
        a, b = np.int64(ends[k] >> hi), np.int64(ends[k] & lo)
        if rec[a, _SIZE] == 0 or rec[b, _SIZE] == 0:  # weak end: attach later; both: ignore
            if rec[a, _SIZE] != 0 or rec[b, _SIZE] != 0:
                weak, n_weak = _push(weak, n_weak, k)
            continue
        ra, rb = _find(rec, a), _find(rec, b)
        if ra == rb:
            continue
        clash_x, clash_y, via_td, via_soft = _NONE, _NONE, False, False
        if rec[ra, _MASK] & rec[rb, _MASK]:
            is_evidence = evidence[index[k]]
            x = rec[ra, _HEAD]
            while x != _NONE and clash_x == _NONE:
                y = rec[rb, _HEAD]
                while y != _NONE:
                    if rec[x, _CLASS] == rec[y, _CLASS]:
                        flags = rec[x, _TD] & rec[y, _TD]
                        if (flags & 1) and (last[x] < first[y] or last[y] < first[x]):
                            via_td = True
                        elif is_evidence and (flags & 2):
                            via_soft = True
                        else:
                            clash_x, clash_y = x, y
                            break
                    y = rec[y, _NEXT]
                x = rec[x, _NEXT]
        if clash_x != _NONE:
            for value in (np.int64(index[k]), np.int64(clash_x), np.int64(clash_y)):
                conf, n_conf = _push(conf, n_conf, value)
            continue
        if via_td:
            tde, n_td = _push(tde, n_td, index[k])
        if via_soft:
            sje, n_sj = _push(sje, n_sj, index[k])
        if rec[ra, _SIZE] < rec[rb, _SIZE]:
            ra, rb = rb, ra
        rec[rb, _PARENT], rec[ra, _SIZE] = ra, rec[ra, _SIZE] + rec[rb, _SIZE]
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
        a, b = np.int64(ends[weak[i]] >> hi), np.int64(ends[weak[i]] & lo)
        w, s = (b, a) if strong[a] else (a, b)
        r = _find(rec, s)
        if attach[w] == _NONE:
            attach[w] = r
        elif attach[w] != r:
            ambiguous[w] = True
    for node in range(n):
        rec[node, _TAIL] = _NONE  # reused below as the component's smallest node
        if attach[node] != _NONE:
            rec[node, _PARENT] = attach[node]
    for i in range(n):  # ascending i: the first node seen of a component is its smallest
        _prefetch(flat, np.int64(rec[min(i + _AHEAD, n - 1), _PARENT]) * width)
        r = _find(rec, i)
        if rec[r, _TAIL] == _NONE:
            rec[r, _TAIL] = i
        labels[i] = rec[r, _TAIL]
    return (
        labels, conf[:n_conf].reshape(-1, 3), tde[:n_td], sje[:n_sj], np.flatnonzero(ambiguous)
    )  # fmt: skip
