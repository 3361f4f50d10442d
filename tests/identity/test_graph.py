"""The OneID kernel: components, exclusive classes, phone changes, weak nodes, priorities."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from siyu.identity.graph import IdentityGraph, Resolution, _sorted_edges, resolve

UNIONID, PHONE = 0, 1
I64 = np.iinfo(np.int64)


def graph(
    n: int,
    edges: Sequence[tuple[int, int]],
    *,
    strong: Sequence[bool] | None = None,
    cls: Sequence[int] | None = None,
    td: Sequence[bool] | None = None,
    seen: Sequence[tuple[int, int]] | None = None,
    priority: Sequence[int] | None = None,
    blocked: Sequence[bool] | None = None,
    soft: Sequence[bool] | None = None,
    evidence: Sequence[bool] | None = None,
) -> IdentityGraph:
    """An identity graph from plain lists; every omitted attribute takes its neutral value."""
    m = len(edges)
    pairs = np.array(edges, np.int64).reshape(m, 2)
    spans = np.array(seen if seen is not None else [(0, 0)] * n, np.int64).reshape(n, 2)
    return IdentityGraph(
        strong=np.array(strong if strong is not None else [True] * n, np.bool_),
        exclusive_class=np.array(cls if cls is not None else [-1] * n, np.int32),
        time_disjoint=np.array(td if td is not None else [False] * n, np.bool_),
        first_seen=spans[:, 0].copy(),
        last_seen=spans[:, 1].copy(),
        edge_a=pairs[:, 0].copy(),
        edge_b=pairs[:, 1].copy(),
        edge_priority=np.array(priority if priority is not None else range(m), np.int64),
        edge_blocked=np.array(blocked if blocked is not None else [False] * m, np.bool_),
        soft=None if soft is None else np.array(soft, np.bool_),
        edge_evidence=None if evidence is None else np.array(evidence, np.bool_),
    )


def partition(labels: np.ndarray) -> set[frozenset[int]]:
    groups: dict[int, set[int]] = {}
    for node, label in enumerate(labels.tolist()):
        groups.setdefault(label, set()).add(node)
    return {frozenset(g) for g in groups.values()}


def reference(g: IdentityGraph) -> dict[str, object]:
    """The semantics written plainly, with Python sets: slow, obviously right."""
    n = g.n_nodes
    comp = {i: frozenset([i]) for i in range(n)}
    conflicts, phone_changes, soft_joins = [], [], []
    assert g.soft is not None and g.edge_evidence is not None
    order = sorted(range(g.edge_a.size), key=lambda e: (int(g.edge_priority[e]), e))
    live = [e for e in order if not g.edge_blocked[e] and g.edge_a[e] != g.edge_b[e]]
    for e in live:
        a, b = int(g.edge_a[e]), int(g.edge_b[e])
        if not (g.strong[a] and g.strong[b]) or comp[a] == comp[b]:
            continue
        clash, via_td, via_soft = False, False, False
        for x in comp[a]:
            for y in comp[b]:
                if g.exclusive_class[x] >= 0 and g.exclusive_class[x] == g.exclusive_class[y]:
                    apart = g.last_seen[x] < g.first_seen[y] or g.last_seen[y] < g.first_seen[x]
                    if g.time_disjoint[x] and g.time_disjoint[y] and apart:
                        via_td = True
                    elif g.edge_evidence[e] and g.soft[x] and g.soft[y]:
                        via_soft = True
                    else:
                        clash = True
        if clash:
            conflicts.append(e)
            continue
        if via_td:
            phone_changes.append(e)
        if via_soft:
            soft_joins.append(e)
        merged = comp[a] | comp[b]
        for node in merged:
            comp[node] = merged
    home: dict[int, frozenset[int]] = {}
    ambiguous = []
    for e in live:
        a, b = int(g.edge_a[e]), int(g.edge_b[e])
        if g.strong[a] == g.strong[b]:
            continue
        w, s = (b, a) if g.strong[a] else (a, b)
        if w not in home:
            home[w] = comp[s]
        elif home[w] != comp[s] and w not in ambiguous:
            ambiguous.append(w)
    members: dict[frozenset[int], set[int]] = {c: set(c) for c in set(comp.values())}
    for w, c in home.items():
        members[c].add(w)
        members.pop(comp[w], None)
    labels = np.empty(n, np.int64)
    for group in members.values():
        labels[list(group)] = min(group)
    return {
        "labels": labels,
        "conflict_edges": conflicts,
        "time_disjoint_edges": phone_changes,
        "evidence_edges": soft_joins,
        "weak_ambiguous": sorted(ambiguous),
    }


@st.composite
def graphs(draw: st.DrawFn, plain: bool = False) -> IdentityGraph:
    n = draw(st.integers(1, 14))
    node = st.integers(0, n - 1)
    edges = draw(st.lists(st.tuples(node, node), max_size=3 * n))
    if plain:
        return graph(n, edges)
    m = len(edges)
    strong = draw(st.lists(st.sampled_from([True, True, True, False]), min_size=n, max_size=n))
    cls = [draw(st.integers(-1, 2)) if s else -1 for s in strong]
    starts = draw(st.lists(st.integers(0, 20), min_size=n, max_size=n))
    lengths = draw(st.lists(st.integers(0, 8), min_size=n, max_size=n))
    return graph(
        n,
        edges,
        strong=strong,
        cls=cls,
        td=draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        seen=[(s, s + d) for s, d in zip(starts, lengths, strict=True)],
        priority=draw(st.lists(st.integers(-3, 3), min_size=m, max_size=m)),
        blocked=draw(st.lists(st.booleans(), min_size=m, max_size=m)),
        soft=draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        evidence=draw(st.lists(st.booleans(), min_size=m, max_size=m)),
    )


def same(r1: Resolution, r2: Resolution) -> bool:
    return all(
        np.array_equal(getattr(r1, f), getattr(r2, f)) and getattr(r1, f).dtype == np.int64
        for f in r1.__dataclass_fields__
    )


@settings(max_examples=150, deadline=None)
@given(graphs(plain=True))
def test_without_classes_or_weak_nodes_labels_are_scipys_components(g: IdentityGraph) -> None:
    # given a graph of strong nodes without classes (self-loops, duplicate edges included)
    n = g.n_nodes
    ones = np.ones(g.edge_a.size, np.int8)
    csr = coo_matrix((ones, (g.edge_a, g.edge_b)), shape=(n, n)).tocsr()
    _, scipy_labels = connected_components(csr, directed=False)
    smallest = np.full(scipy_labels.max() + 1, n)
    np.minimum.at(smallest, scipy_labels, np.arange(n))
    # when it is resolved
    res = resolve(g)
    # then each node's label is the smallest node of its scipy component, nothing refused
    assert np.array_equal(res.labels, smallest[scipy_labels])
    assert res.conflict_edges.size == res.time_disjoint_edges.size == 0


@settings(max_examples=300, deadline=None)
@given(graphs())
def test_resolution_matches_the_plain_reference_and_keeps_every_rule(g: IdentityGraph) -> None:
    # given any graph with classes, phone changes, weak nodes, priorities and blocks
    # when it is resolved
    res = resolve(g)
    # then it agrees with the slow reference ...
    ref = reference(g)
    assert np.array_equal(res.labels, ref["labels"])
    assert res.conflict_edges.tolist() == ref["conflict_edges"]
    assert res.time_disjoint_edges.tolist() == ref["time_disjoint_edges"]
    assert res.evidence_edges.tolist() == ref["evidence_edges"]
    assert res.weak_ambiguous.tolist() == ref["weak_ambiguous"]
    # ... no component holds two nodes of one class unless the time-disjoint rule or an
    # evidence edge between soft nodes allows it
    assert g.soft is not None
    for group in partition(res.labels):
        ex = [x for x in group if g.exclusive_class[x] >= 0]
        for x in ex:
            for y in ex:
                if x < y and g.exclusive_class[x] == g.exclusive_class[y]:
                    apart = g.last_seen[x] < g.first_seen[y] or g.last_seen[y] < g.first_seen[x]
                    changed = g.time_disjoint[x] and g.time_disjoint[y] and apart
                    assert changed or (g.soft[x] and g.soft[y] and res.evidence_edges.size)
    # ... and each refused edge names two same-class nodes left in different components
    assert res.conflict_nodes.shape == (res.conflict_edges.size, 2)
    for e, (x, y) in zip(res.conflict_edges, res.conflict_nodes, strict=True):
        assert g.exclusive_class[x] == g.exclusive_class[y] >= 0
        assert res.labels[x] == res.labels[g.edge_a[e]] != res.labels[y]
        assert res.labels[y] == res.labels[g.edge_b[e]]


def test_evidence_joins_two_cards_of_one_brand_but_an_account_link_does_not() -> None:
    # given two members, each a card of one brand (class 2, soft) with a phone (0-1, 2-3),
    # a till link between card 0 and phone 3 (a family phone), and an evidence link
    # between the two cards (a side key: exact name and birth date)
    CARD = 2
    edges = [(0, 1), (2, 3), (0, 3), (0, 2)]
    cls = [CARD, -1, CARD, -1]
    soft = [True, False, True, False]
    # when only the account links are present, the till link is refused
    account_only = resolve(graph(4, edges[:3], cls=cls, soft=soft))
    assert account_only.conflict_edges.tolist() == [2]
    assert account_only.labels.tolist() == [0, 0, 2, 2]
    # when the fourth edge is evidence, the two records are one person's duplicate
    # registration: joined, and reported as such
    res = resolve(graph(4, edges, cls=cls, soft=soft, evidence=[False, False, False, True]))
    assert res.labels.tolist() == [0, 0, 0, 0]
    assert res.evidence_edges.tolist() == [3]
    # and evidence never joins two unionids (not soft)
    hard = resolve(graph(4, edges, cls=[UNIONID, -1, UNIONID, -1], evidence=[0, 0, 0, 1]))
    assert hard.labels.tolist() == [0, 0, 2, 2]
    assert hard.conflict_edges.tolist() == [2, 3]


def test_weak_nodes_never_bridge_two_people_and_are_reported() -> None:
    # given two people (0-1 and 2-3) who share one device (4, weak)
    g = graph(
        5,
        [(0, 1), (2, 3), (4, 3), (1, 4)],
        strong=[True, True, True, True, False],
        priority=[0, 0, 5, 7],
    )
    # when resolved
    res = resolve(g)
    # then the people stay apart; the device follows its first edge (to 3) and is reported
    assert res.labels.tolist() == [0, 0, 2, 2, 2]
    assert res.weak_ambiguous.tolist() == [4]


def test_weak_node_alone_or_with_weak_neighbours_only_stays_a_singleton() -> None:
    # given a weak node linked only to another weak node, and an unlinked strong node
    g = graph(3, [(0, 1)], strong=[False, False, True])
    # when resolved
    res = resolve(g)
    # then everybody is alone and nothing is ambiguous
    assert res.labels.tolist() == [0, 1, 2]
    assert res.weak_ambiguous.size == 0


def test_a_shared_household_phone_does_not_merge_two_unionids() -> None:
    # given two people, each with a unionid (0, 1), both linked to one phone (2)
    g = graph(3, [(0, 2), (1, 2)], cls=[UNIONID, UNIONID, PHONE])
    # when resolved
    res = resolve(g)
    # then the first link wins, the second is refused naming both unionids
    assert res.labels.tolist() == [0, 1, 0]
    assert res.conflict_edges.tolist() == [1]
    assert res.conflict_nodes.tolist() == [[1, 0]]  # (edge_a's side, edge_b's side)


@pytest.mark.parametrize(
    ("second_phone_seen", "merged"),
    [((101, 200), True), ((100, 200), False), ((50, 60), False)],
    ids=["disjoint", "touching", "inside"],
)
def test_a_phone_change_merges_only_when_the_intervals_are_disjoint(
    second_phone_seen: tuple[int, int], merged: bool
) -> None:
    # given a unionid (0) linked to two verified phones (1 seen 0-100, 2 seen later)
    g = graph(
        3,
        [(0, 1), (0, 2)],
        cls=[UNIONID, PHONE, PHONE],
        td=[False, True, True],
        seen=[(0, 300), (0, 100), second_phone_seen],
    )
    # when resolved
    res = resolve(g)
    # then disjoint intervals make one person and the edge is reported; overlap is refused
    if merged:
        assert res.labels.tolist() == [0, 0, 0]
        assert res.time_disjoint_edges.tolist() == [1]
        assert res.conflict_edges.size == 0
    else:
        assert res.labels.tolist() == [0, 0, 2]
        assert res.conflict_edges.tolist() == [1]
        assert res.conflict_nodes.tolist() == [[1, 2]]


def test_disjoint_intervals_do_not_help_nodes_that_are_not_time_disjoint() -> None:
    # given two unionids seen years apart, linked through an openid
    g = graph(3, [(0, 2), (1, 2)], cls=[UNIONID, UNIONID, -1], seen=[(0, 1), (5, 9), (0, 9)])
    # when resolved, then the second link is refused anyway
    assert resolve(g).conflict_edges.tolist() == [1]


def test_priority_decides_which_edge_wins_and_ties_go_by_edge_index() -> None:
    # given two unionids competing for one phone, the later-listed edge with lower priority
    g = graph(3, [(0, 2), (1, 2)], cls=[UNIONID, UNIONID, PHONE], priority=[5, 3])
    # when resolved, then the lower priority wins
    assert resolve(g).labels.tolist() == [0, 1, 1]
    assert resolve(g).conflict_edges.tolist() == [0]
    # and with equal priorities the lower edge index wins
    tie = graph(3, [(0, 2), (1, 2)], cls=[UNIONID, UNIONID, PHONE], priority=[4, 4])
    assert resolve(tie).labels.tolist() == [0, 1, 0]


def test_blocked_edges_are_ignored() -> None:
    # given a strong link and a weak link, both blocked by an operator after an unmerge
    g = graph(3, [(0, 1), (2, 0)], strong=[True, True, False], blocked=[True, True])
    # when resolved, then nothing is merged or attached
    assert resolve(g).labels.tolist() == [0, 1, 2]


def test_nodes_without_edges_are_singletons_and_empty_graphs_resolve() -> None:
    assert resolve(graph(4, [])).labels.tolist() == [0, 1, 2, 3]
    res = resolve(graph(0, []))
    assert res.labels.size == 0 and res.conflict_nodes.shape == (0, 2)


@settings(max_examples=50, deadline=None)
@given(graphs())
def test_the_same_input_gives_identical_arrays(g: IdentityGraph) -> None:
    assert same(resolve(g), resolve(g))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([I64.min, -1, 0, 1, I64.max]) | st.integers(I64.min, I64.max)))
def test_live_edges_are_sorted_by_priority_then_index(priorities: list[int]) -> None:
    # given a path of strong nodes whose edges carry any int64 priorities
    m = len(priorities)
    g = graph(m + 1, [(i, i + 1) for i in range(m)], priority=priorities)
    # when the edges are sorted for the union loop
    ends, index = _sorted_edges(g.edge_a, g.edge_b, g.edge_priority, g.edge_blocked)
    # then they come in numpy's stable order, each with its own two ends
    assert index.tolist() == np.argsort(g.edge_priority, kind="stable").tolist()
    assert (ends >> np.uint64(32)).tolist() == index.tolist()
    assert (ends & np.uint64(2**32 - 1)).tolist() == (index + 1).tolist()


def _ok() -> dict[str, np.ndarray]:
    g = graph(3, [(0, 1)])
    return {f: getattr(g, f) for f in g.__dataclass_fields__}


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("edge_a", np.array([0], np.int32), "array of int64, got int32"),
        ("strong", np.ones((3, 1), np.bool_), r"1-D .*got bool \(3, 1\)"),
        ("exclusive_class", np.zeros(2, np.int32), "strong's length 3, got 2"),
        ("edge_priority", np.zeros(2, np.int64), "edge_a's length 1, got 2"),
        ("edge_blocked", [False], "numpy array of bool, got list"),
        ("edge_b", np.array([3], np.int64), r"\[0, 3\)"),
        ("edge_a", np.array([-1], np.int64), r"\[0, 3\)"),
        ("exclusive_class", np.array([-2, 0, 0], np.int32), "-1"),
        ("last_seen", np.array([0, -1, 0], np.int64), ">= first_seen"),
    ],
)
def test_bad_arrays_are_refused_naming_the_field(field: str, value: object, rule: str) -> None:
    # given valid arrays with one of them broken
    arrays: dict[str, object] = {**_ok(), field: value}
    # when the graph is built, then the error names the field and the rule
    with pytest.raises(ValueError, match=rf"^{field}: .*{rule}"):
        IdentityGraph(**arrays)  # type: ignore[arg-type]


def test_weak_nodes_may_not_carry_an_exclusive_class() -> None:
    with pytest.raises(ValueError, match=r"^exclusive_class: must be -1 on weak nodes"):
        graph(2, [(0, 1)], strong=[True, False], cls=[0, 0])
