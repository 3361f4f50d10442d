"""Incremental OneID: attach one observed identifier (and what it was seen with) in one
transaction. When it bridges two members they merge, older surviving, unless the policy
refuses, in which case the conflict is recorded and both stay as they are."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine, insert, text

from siyu.identity.ingest import Encoded, IdentifierEncoder, ObservationBuffer
from siyu.identity.merge import merge_members, now_utc
from siyu.identity.models import identity_conflicts, members
from siyu.identity.policy import ClassMap, Held, clash
from siyu.store.dialect import dialect_of


@dataclass
class AttachResult:
    member_id: int
    identity_id: int
    merges: list[int] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


def attach(
    engine: Engine,
    encoder: IdentifierEncoder,
    group_id: str,
    ident: Encoded,
    channel: str,
    observed_at: datetime,
    strong_types: tuple[str, ...],
    verified: bool = False,
    linked: Encoded | None = None,
    brand_id: str | None = None,
) -> AttachResult:
    with engine.begin() as conn:
        # Shared side of the group lock: attaches run together, a batch resolve waits.
        dialect_of(conn).advisory_lock(conn, "siyu.oneid", group_id, shared=True)
        buf = ObservationBuffer(encoder)
        buf.observe(ident, channel, observed_at, verified, brand_id)
        if linked is not None:
            # The channel proved the new identifier, not the one it was linked to.
            buf.observe(linked, channel, observed_at, False, brand_id)
            buf.link(ident, linked, channel, observed_at, verified)
        buf.flush(conn, group_id)
        keys = [
            (str(t), str(s), str(k))
            for t, s, k in zip(buf.obs["type"], buf.obs["scope"], buf.obs["value_key"], strict=True)
        ]
        touched = _identities(conn, group_id, keys)
        result = AttachResult(0, touched[keys[0]])  # `ident`, observed first
        for link_id, a, b, evidence in _links_among(conn, group_id, list(touched.values())):
            _join(conn, group_id, link_id, a, b, strong_types, observed_at, result, evidence)
        for identity_id in sorted(set(touched.values())):
            # Seen alone, or refused by the policy: a member of its own.
            if (
                conn.execute(
                    text("SELECT member_id FROM identities WHERE identity_id = :i"),
                    {"i": identity_id},
                ).scalar_one()
                is None
            ):
                conn.execute(
                    text("UPDATE identities SET member_id = :m WHERE identity_id = :i"),
                    {"m": _new_member(conn, group_id, observed_at), "i": identity_id},
                )
        result.member_id = int(
            conn.execute(
                text("SELECT member_id FROM identities WHERE identity_id = :i"),
                {"i": result.identity_id},
            ).scalar_one()
        )
    return result


def _identities(
    conn: Connection, group_id: str, keys: list[tuple[str, str, str]]
) -> dict[tuple[str, str, str], int]:
    """identity_id per (type, scope, value_key)."""
    out = {}
    for type_name, scope, key in keys:
        out[(type_name, scope, key)] = int(
            conn.execute(
                text(
                    "SELECT identity_id FROM identities WHERE group_id = :g AND type = :t "
                    "AND value_key = :k AND scope = :s"
                ),
                {"g": group_id, "t": type_name, "k": key, "s": scope},
            ).scalar_one()
        )
    return out


def _links_among(
    conn: Connection, group_id: str, ids: list[int]
) -> list[tuple[int, int, int, bool]]:
    """Live links among `ids` in the batch resolver's order: account before evidence,
    verified first, then older first."""
    listed = ",".join(str(i) for i in sorted(set(ids)))
    rows = conn.execute(
        text(f"""
        SELECT link_id, identity_a, identity_b, kind FROM identity_links
        WHERE group_id = :g AND NOT blocked AND identity_a IN ({listed})
          AND identity_b IN ({listed})
        ORDER BY CASE WHEN kind = 'evidence' THEN 1 ELSE 0 END, verified DESC, first_seen,
                 link_id"""),
        {"g": group_id},
    ).all()
    return [(int(r[0]), int(r[1]), int(r[2]), r[3] == "evidence") for r in rows]


def _join(
    conn: Connection,
    group_id: str,
    link_id: int,
    a: int,
    b: int,
    strong_types: tuple[str, ...],
    at: datetime,
    result: AttachResult,
    evidence: bool = False,
) -> None:
    rows = {
        r.identity_id: r
        for r in conn.execute(
            text(
                "SELECT identity_id, type, member_id FROM identities WHERE identity_id IN (:a, :b)"
            ),
            {"a": a, "b": b},
        )
    }
    ma, mb = rows[a].member_id, rows[b].member_id
    if ma is not None and ma == mb:
        return
    if ma is None and mb is None:
        m = _new_member(conn, group_id, at)
        conn.execute(
            text("UPDATE identities SET member_id = :m WHERE identity_id IN (:a, :b)"),
            {"m": m, "a": a, "b": b},
        )
        return
    # An identity without a member is checked like a member holding only itself: a new
    # unionid must not slip onto a member that already has one.
    held_a = _held(conn, "member_id", ma) if ma is not None else _held(conn, "identity_id", a)
    held_b = _held(conn, "member_id", mb) if mb is not None else _held(conn, "identity_id", b)
    clashing = clash(held_a, held_b, ClassMap(), evidence)
    if clashing is not None:
        x, y = clashing
        # The same refusal seen again (a retried bind, a batch resolve after it) is the
        # same conflict: recorded once, lower identity first, and never an error.
        conn.execute(
            dialect_of(conn)
            .insert_ignore(identity_conflicts)
            .values(
                group_id=group_id,
                kind="exclusive_clash",
                link_id=link_id,
                identity_x=min(x.identity_id, y.identity_id),
                identity_y=max(x.identity_id, y.identity_id),
                status="open",
                detected_at=now_utc(),
                detail=f"refused: one member cannot hold two {x.type} identities",
            )
        )
        result.conflicts.append(f"identities {x.identity_id} and {y.identity_id} are both {x.type}")
        return
    if ma is None or mb is None:
        conn.execute(
            text("UPDATE identities SET member_id = :m WHERE identity_id = :i"),
            {"m": ma if mb is None else mb, "i": a if ma is None else b},
        )
        return
    if rows[a].type not in strong_types or rows[b].type not in strong_types:
        return  # a weak identifier never bridges two members
    merge_id, _ = merge_members(conn, group_id, ma, mb, "shared strong identifiers", [link_id])
    result.merges.append(merge_id)


def _held(conn: Connection, column: str, value: int) -> list[Held]:
    """The identities of a member (column='member_id') or one identity ('identity_id')."""
    d = dialect_of(conn)
    rows = conn.execute(
        text(f"""
        SELECT identity_id, type, scope, verified, {d.epoch_seconds("first_seen")},
               {d.epoch_seconds("last_seen")}
        FROM identities WHERE {column} = :v"""),
        {"v": value},
    ).all()
    return [Held(int(r[0]), r[1], r[2], bool(r[3]), int(r[4]), int(r[5])) for r in rows]


def _new_member(conn: Connection, group_id: str, registered_at: datetime) -> int:
    now = now_utc()
    return int(
        conn.execute(
            insert(members)
            .values(
                group_id=group_id,
                status="active",
                registered_at=registered_at,
                created_at=now,
                updated_at=now,
            )
            .returning(members.c.member_id)
        ).scalar_one()
    )
