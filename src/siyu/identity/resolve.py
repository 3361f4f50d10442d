"""Batch OneID: resolve the whole identity graph of a brand group into members.

Reads identities and links, runs the constraint-aware connected components of
`siyu.identity.graph`, and writes back the smallest change that makes the store agree:
identities that move, members that merge into the oldest member of their component, new
members for components that have none, and the conflicts it refused. Running it again
changes nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Engine, insert, text

from siyu.identity.graph import IdentityGraph, Resolution, resolve
from siyu.identity.models import identity_conflicts, merges
from siyu.identity.policy import VERIFIED_PHONE_CLASS, YIELDS_TO_EVIDENCE, ClassMap
from siyu.identity.records import retired_cards
from siyu.store.bulk import fetch_arrow, stage, unstage
from siyu.store.dialect import dialect_of

Step = Callable[[str], None]


@dataclass
class ResolveReport:
    identities: int = 0
    links: int = 0
    members: int = 0
    new_members: int = 0
    merges: int = 0
    moved_identities: int = 0
    conflicts: int = 0
    phone_changes: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return sum(self.timings.values())


IDENTITY_SCHEMA = pa.schema(
    [
        ("identity_id", pa.int64()),
        ("type", pa.string()),
        ("scope", pa.string()),
        ("verified", pa.int8()),
        ("first_seen", pa.int64()),
        ("last_seen", pa.int64()),
        ("member_id", pa.int64()),
    ]
)
LINK_SCHEMA = pa.schema(
    [
        ("link_id", pa.int64()),
        ("identity_a", pa.int64()),
        ("identity_b", pa.int64()),
        ("verified", pa.int8()),
        ("first_seen", pa.int64()),
        ("blocked", pa.int8()),
        ("evidence", pa.int8()),
    ]
)


def resolve_all(
    engine: Engine, group_id: str, strong_types: tuple[str, ...], step: Step | None = None
) -> ResolveReport:
    """Resolve every identity of `group_id`; one transaction, serialised per group."""
    report = ResolveReport()
    clock = _Clock(report, step)
    with engine.begin() as conn:
        _lock_group(conn, group_id)
        ids, links = _load(conn, group_id)
        clock.lap("load")
        report.identities, report.links = ids.num_rows, links.num_rows
        graph, identity_ids = _graph(ids, links, strong_types, retired_cards(conn, group_id))
        result = resolve(graph)
        clock.lap("components")
        plan = _plan(conn, group_id, ids, identity_ids, result.labels)
        clock.lap("plan")
        _apply(conn, group_id, plan, report)
        _record_conflicts(conn, group_id, ids, links, result, report)
        _refresh_facts(conn, group_id)
        clock.lap("write")
        report.members = int(
            conn.execute(
                text("SELECT COUNT(DISTINCT member_id) FROM identities WHERE group_id = :g"),
                {"g": group_id},
            ).scalar_one()
        )
    return report


class _Clock:
    def __init__(self, report: ResolveReport, step: Step | None) -> None:
        self.report, self.step, self.t = report, step, time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.report.timings[name] = now - self.t
        self.t = now
        if self.step:
            self.step(name)


def _lock_group(conn: Connection, group_id: str) -> None:
    """PostgreSQL: one batch resolution per group at a time, and no incremental attach
    while it runs (attach takes the shared side). SQLite's BEGIN IMMEDIATE already
    serialises writers."""
    dialect_of(conn).advisory_lock(conn, "siyu.oneid", group_id)


def _load(conn: Connection, group_id: str) -> tuple[pa.Table, pa.Table]:
    d = dialect_of(conn)
    ids = fetch_arrow(
        conn,
        f"""SELECT identity_id, type, scope, {d.as_int("verified")},
                   {d.epoch_seconds("first_seen")}, {d.epoch_seconds("last_seen")},
                   COALESCE(member_id, 0)
            FROM identities WHERE group_id = :g ORDER BY identity_id""",
        {"g": group_id},
        IDENTITY_SCHEMA,
    )
    links = fetch_arrow(
        conn,
        f"""SELECT link_id, identity_a, identity_b, {d.as_int("verified")},
                   {d.epoch_seconds("first_seen")}, {d.as_int("blocked")},
                   CASE WHEN kind = 'evidence' THEN 1 ELSE 0 END
            FROM identity_links WHERE group_id = :g ORDER BY link_id""",
        {"g": group_id},
        LINK_SCHEMA,
    )
    return ids, links


def _graph(
    ids: pa.Table,
    links: pa.Table,
    strong_types: tuple[str, ...],
    retired: np.ndarray | None = None,
) -> tuple[IdentityGraph, np.ndarray]:
    """Arrays for the kernel, built with Arrow compute (no Python object per identity)."""
    identity_ids = ids.column("identity_id").to_numpy()
    types = ids.column("type")
    verified = ids.column("verified").to_numpy().astype(bool)
    classes = ClassMap().classes_arrow(types, ids.column("scope"), verified)
    a = np.searchsorted(identity_ids, links.column("identity_a").to_numpy())
    b = np.searchsorted(identity_ids, links.column("identity_b").to_numpy())
    # Account links before evidence links, verified before unverified, then older first;
    # ties fall to the edge order, which is link_id order (the load sorts by it). What a
    # channel proved outweighs what was typed, and both outweigh a person-level match.
    first_seen = links.column("first_seen").to_numpy()
    offset = first_seen - (first_seen.min() if len(first_seen) else 0)
    evidence = links.column("evidence").to_numpy().astype(bool)
    priority = (
        (evidence.astype(np.int64) << 41)
        | ((1 - links.column("verified").to_numpy().astype(np.int64)) << 40)
        | offset
    )
    strong = pc.is_in(types, value_set=pa.array(strong_types, pa.string()))
    strong_np = strong.to_numpy(zero_copy_only=False)
    # A type configured as weak never bridges members, so its exclusivity cannot matter.
    classes[~strong_np] = -1
    if retired is not None and len(retired):
        # A card replaced by its member's new card is history: one card per brand counts
        # the current card only (identity/records.py).
        classes[np.isin(identity_ids, retired)] = -1
    graph = IdentityGraph(
        strong=strong_np,
        exclusive_class=classes,
        time_disjoint=classes == VERIFIED_PHONE_CLASS,
        first_seen=ids.column("first_seen").to_numpy(),
        last_seen=ids.column("last_seen").to_numpy(),
        edge_a=a.astype(np.int64),
        edge_b=b.astype(np.int64),
        edge_priority=priority.astype(np.int64),
        edge_blocked=links.column("blocked").to_numpy().astype(bool),
        # A second card of one brand is a duplicate registration when evidence says the
        # two records are one person; unionids and verified phones never yield.
        soft=(classes >= 0)
        & pc.is_in(types, value_set=pa.array(YIELDS_TO_EVIDENCE, pa.string())).to_numpy(
            zero_copy_only=False
        ),
        edge_evidence=evidence,
    )
    return graph, identity_ids


@dataclass
class _Plan:
    identity_ids: np.ndarray
    current: np.ndarray  # member per identity now (0 = none)
    target: np.ndarray  # member per identity after (negative = the k-th new member, -1-k)
    new_member_registered: np.ndarray  # epoch seconds per new member
    survivor_of: dict[int, int]  # merged member -> survivor (negative = new member)


def _plan(
    conn: Connection, group_id: str, ids: pa.Table, identity_ids: np.ndarray, labels: np.ndarray
) -> _Plan:
    """Decide the member of every component with the fewest changes, in numpy.

    Each existing member is *claimed* by the component holding most of its identities
    (ties: the smaller component label); a component keeps the oldest member it claimed
    (the others merge into it), and a component that claimed none gets a new member.
    """
    current = ids.column("member_id").to_numpy()
    first_seen = ids.column("first_seen").to_numpy()
    components, node_component = np.unique(labels, return_inverse=True)

    has = current > 0
    # (member, component) pairs as one integer key: np.unique on 1-D is much faster.
    n_comp = max(len(components), 1)
    pair_key, counts = np.unique(current[has] * n_comp + node_component[has], return_counts=True)
    pair_member, pair_component = pair_key // n_comp, pair_key % n_comp
    order = np.lexsort((pair_component, -counts, pair_member))
    first = _first_of_runs(pair_member[order])
    claim_member = pair_member[order][first]
    claim_component = pair_component[order][first]

    reg_members, reg_at = _registered_at(conn, group_id)
    claim_reg = np.full(len(claim_member), np.iinfo(np.int64).max, dtype=np.int64)
    if len(reg_members):
        pos = np.clip(np.searchsorted(reg_members, claim_member), 0, len(reg_members) - 1)
        hit = reg_members[pos] == claim_member
        claim_reg[hit] = reg_at[pos[hit]]
    order = np.lexsort((claim_member, claim_reg, claim_component))
    first = _first_of_runs(claim_component[order])
    component_member = np.zeros(len(components), dtype=np.int64)
    component_member[claim_component[order][first]] = claim_member[order][first]

    unclaimed = component_member == 0
    component_member[unclaimed] = -1 - np.arange(int(unclaimed.sum()), dtype=np.int64)
    earliest = np.full(len(components), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(earliest, node_component, first_seen)

    survivor = component_member[claim_component]
    absorbed = survivor != claim_member
    return _Plan(
        identity_ids=identity_ids,
        current=current,
        target=component_member[node_component],
        new_member_registered=earliest[unclaimed],
        survivor_of=dict(
            zip(claim_member[absorbed].tolist(), survivor[absorbed].tolist(), strict=True)
        ),
    )


def _first_of_runs(sorted_keys: np.ndarray) -> np.ndarray:
    """Mask of the first element of each run of equal keys in a sorted array."""
    first = np.ones(len(sorted_keys), dtype=bool)
    first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    return first


def _registered_at(conn: Connection, group_id: str) -> tuple[np.ndarray, np.ndarray]:
    """Active members' ids (sorted) and registration times, for 'the oldest survives'."""
    table = fetch_arrow(
        conn,
        f"SELECT member_id, {dialect_of(conn).epoch_seconds('registered_at')} FROM members "
        "WHERE group_id = :g AND status = 'active' ORDER BY member_id",
        {"g": group_id},
        pa.schema([("member_id", pa.int64()), ("registered", pa.int64())]),
    )
    return table.column(0).to_numpy(), table.column(1).to_numpy()


def _apply(conn: Connection, group_id: str, plan: _Plan, report: ResolveReport) -> None:
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    new_ids = _allocate_members(conn, group_id, plan.new_member_registered, now)
    report.new_members = len(new_ids)
    target = plan.target.copy()
    is_new = target < 0
    target[is_new] = new_ids[-1 - target[is_new]]
    moved = target != plan.current
    report.moved_identities = int(moved.sum())
    if moved.any():
        staged = stage(
            conn,
            "assign",
            pa.table(
                {
                    "identity_id": pa.array(plan.identity_ids[moved]),
                    "member_id": pa.array(target[moved]),
                }
            ),
        )
        conn.execute(
            text(f"""
            UPDATE identities SET member_id = s.member_id FROM {staged.name} s
            WHERE identities.identity_id = s.identity_id""")
        )
        unstage(conn, staged)
    _record_merges(conn, group_id, plan, target, moved, now, report)


def _allocate_members(
    conn: Connection, group_id: str, registered: np.ndarray, now: datetime
) -> np.ndarray:
    if len(registered) == 0:
        return np.empty(0, dtype=np.int64)
    new_ids = dialect_of(conn).new_ids(conn, "members", "member_id", len(registered))
    reg = pa.array(registered.astype("datetime64[s]"), pa.timestamp("s"))
    staged = stage(
        conn,
        "newmembers",
        pa.table(
            {
                "member_id": pa.array(new_ids),
                "registered_at": reg,
                "now": pa.array([now] * len(new_ids), pa.timestamp("s")),
            }
        ),
    )
    conn.execute(
        text(f"""
        INSERT INTO members (member_id, group_id, status, registered_at, created_at, updated_at)
        SELECT s.member_id, :g, 'active', s.registered_at, s.now, s.now FROM {staged.name} s"""),
        {"g": group_id},
    )
    unstage(conn, staged)
    return new_ids


def _record_merges(
    conn: Connection,
    group_id: str,
    plan: _Plan,
    target: np.ndarray,
    moved: np.ndarray,
    now: datetime,
    report: ResolveReport,
) -> None:
    """One merge row per (from member, to member) move, holding the identities moved, so
    `unmerge` can put them back. A member whose identities all left becomes 'merged'."""
    from_m, to_m = plan.current[moved], target[moved]
    moved_ids = plan.identity_ids[moved]
    keep = from_m > 0  # identities that had no member are assignments, not merges
    from_m, to_m, moved_ids = from_m[keep], to_m[keep], moved_ids[keep]
    order = np.lexsort((moved_ids, to_m, from_m))
    from_m, to_m, moved_ids = from_m[order], to_m[order], moved_ids[order]
    starts = (
        np.flatnonzero(
            np.concatenate([[True], (from_m[1:] != from_m[:-1]) | (to_m[1:] != to_m[:-1])])
        )
        if len(from_m)
        else np.empty(0, dtype=np.int64)
    )
    rows = []
    ends = np.append(starts[1:], len(from_m)) if len(starts) else starts
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        f, t = int(from_m[start]), int(to_m[start])
        absorbed = plan.survivor_of.get(f) == t
        rows.append(
            {
                "group_id": group_id,
                "survivor_id": t,
                "merged_id": f,
                "mode": "batch",
                "reason": "shared strong identifiers" if absorbed else "identities re-assigned",
                "evidence": json.dumps({"identities": moved_ids[start:end].tolist()}),
                "created_at": now,
            }
        )
    if rows:
        conn.execute(insert(merges), rows)
    report.merges = len(rows)
    if plan.survivor_of:
        staged = stage(
            conn,
            "merged",
            pa.table(
                {
                    "member_id": pa.array(list(plan.survivor_of), pa.int64()),
                    "survivor": pa.array(list(plan.survivor_of.values()), pa.int64()),
                }
            ),
        )
        conn.execute(
            text(f"""
            UPDATE members SET status = 'merged', merged_into = s.survivor, updated_at = :now
            FROM {staged.name} s WHERE members.member_id = s.member_id"""),
            {"now": now},
        )
        unstage(conn, staged)


_ACCEPTED = ("phone_change", "duplicate_registration")  # reported, not refused


def _record_conflicts(
    conn: Connection,
    group_id: str,
    ids: pa.Table,
    links: pa.Table,
    result: Resolution,
    report: ResolveReport,
) -> None:
    identity_ids = ids.column("identity_id").to_numpy()
    types = ids.column("type").to_pylist()
    link_ids = links.column("link_id").to_numpy()
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    rows = []
    for edge, (x, y) in zip(
        result.conflict_edges.tolist(), result.conflict_nodes.tolist(), strict=True
    ):
        rows.append(
            {
                "kind": "exclusive_clash",
                "link_id": int(link_ids[edge]),
                # lower id first, as attach records it: one clash, one row
                "identity_x": int(min(identity_ids[x], identity_ids[y])),
                "identity_y": int(max(identity_ids[x], identity_ids[y])),
                "detail": f"refused: one member cannot hold two {types[x]} identities "
                "(shared or mistyped identifier?)",
            }
        )
    for edge in result.time_disjoint_edges.tolist():
        a, b = links.column("identity_a")[edge].as_py(), links.column("identity_b")[edge].as_py()
        rows.append(
            {
                "kind": "phone_change",
                "link_id": int(link_ids[edge]),
                "identity_x": a,
                "identity_y": b,
                "detail": "accepted: verified phones used one after the other",
            }
        )
    for node in result.weak_ambiguous.tolist():
        rows.append(
            {
                "kind": "weak_ambiguous",
                "link_id": None,
                "identity_x": int(identity_ids[node]),
                "identity_y": int(identity_ids[node]),
                "detail": f"{types[node]} seen with several members; attached to one only",
            }
        )
    for edge in result.evidence_edges.tolist():
        a, b = links.column("identity_a")[edge].as_py(), links.column("identity_b")[edge].as_py()
        rows.append(
            {
                "kind": "duplicate_registration",
                "link_id": int(link_ids[edge]),
                "identity_x": a,
                "identity_y": b,
                "detail": "accepted: evidence says two cards of one brand are one person's",
            }
        )
    report.conflicts = sum(r["kind"] not in _ACCEPTED for r in rows)
    report.phone_changes = len(result.time_disjoint_edges)
    if not rows:
        return
    for r in rows:
        r.update(group_id=group_id, status="open", detected_at=now)
    stmt = dialect_of(conn).insert_ignore(identity_conflicts)
    conn.execute(stmt, rows)


def _refresh_facts(conn: Connection, group_id: str) -> None:
    """Keep orders.member_id and events.member_id equal to their identity's member."""
    for table, column in (("orders", "buyer_identity_id"), ("events", "identity_id")):
        conn.execute(
            text(f"""
            UPDATE {table} SET member_id = i.member_id FROM identities i
            WHERE {table}.group_id = :g AND {table}.{column} = i.identity_id
              AND ({table}.member_id IS NULL OR {table}.member_id <> i.member_id)"""),
            {"g": group_id},
        )
