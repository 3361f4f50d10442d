"""Recording many scans at once: a channel's history (the scene scans of a WeChat account
exported when a brand moves to siyu) or a backlog a channel replays after an outage.

`record_scans` gives what `record_scan` gives when called once per scan in the given
order (the same rows, flags, acquisitions and replays; tests/scenes/test_bulk_scans.py
checks it), with a few set-based statements per batch of scans instead of a transaction
per scan: the keys, codes, members, registrations and earlier acquisitions of a batch are
read in one query each and its rows written in one insert. The batches share one
transaction, so an import that breaks a rule (a row naming an unknown code or member, a
key reused for another scan) applies nothing, and the error names the row
(`scans[12].member_id`).

Acquisition is decided in order, as the per-scan service would: a member acquired by an
earlier scan of the import (or of the store) is not acquired again by a later one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, bindparam, select, text

from siyu.coupons.issue import holders
from siyu.errors import NotFoundError, ValidationError
from siyu.scenes.models import qr_scans, qr_scenes
from siyu.scenes.registry import Scene, scene_of
from siyu.scenes.scans import (
    ACQUISITION_WINDOW,
    Scan,
    check_request,
    flag_of,
    replay_of,
    scan_of,
)
from siyu.store.dialect import dialect_of
from siyu.store.times import as_stored, stored_now, stored_time

BATCH = 1_000

_REGISTERED = text("""SELECT member_id, registered_at FROM members
                      WHERE group_id = :g AND member_id IN :ms""").bindparams(
    bindparam("ms", expanding=True)
)
_ACQUIRED = text("""SELECT DISTINCT member_id FROM qr_scans
                    WHERE group_id = :g AND member_id IN :ms AND first_touch""").bindparams(
    bindparam("ms", expanding=True)
)


@dataclass(frozen=True)
class ScanIn:
    """One scan to record: `record_scan`'s arguments."""

    scene: str
    key: str
    member_id: int | None = None
    identity_id: int | None = None
    referrer_member_id: int | None = None
    acquired: bool | None = None
    at: datetime | None = None


def record_scans(
    engine: Engine,
    group_id: str,
    scans: Sequence[ScanIn],
    *,
    key_id: int | None = None,
    batch: int = BATCH,
) -> list[Scan]:
    """Record `scans` in order, each once per key; the results in the same order."""
    for i, s in enumerate(scans):
        check_request(s.scene, s.key, s.member_id, s.acquired, f"scans[{i}].")
    now = stored_now()
    out: list[Scan] = []
    with engine.begin() as conn:
        for start in range(0, len(scans), batch):
            out.extend(_batch(conn, group_id, scans[start : start + batch], start, now, key_id))
    return out


def _batch(
    conn: Connection,
    group_id: str,
    scans: Sequence[ScanIn],
    first_row: int,
    now: datetime,
    key_id: int | None,
) -> list[Scan]:
    keys = sorted({s.key for s in scans})
    done = {
        r["idempotency_key"]: scan_of(r)
        for r in conn.execute(
            select(qr_scans).where(
                qr_scans.c.group_id == group_id, qr_scans.c.idempotency_key.in_(keys)
            )
        ).mappings()
    }
    fresh = [s for s in scans if s.key not in done]
    codes = _codes(conn, group_id, {s.scene for s in fresh})
    asked = {m for s in fresh for m in (s.member_id, s.referrer_member_id) if m is not None}
    current = holders(conn, group_id, sorted(asked))
    members = sorted({current[m] for m in asked if m in current})
    registered = _registered(conn, group_id, members)
    acquired = _acquired(conn, group_id, members)
    ids = iter(dialect_of(conn).new_ids(conn, "qr_scans", "scan_id", len(fresh)).tolist())

    out: list[Scan] = []
    rows: list[dict[str, object]] = []
    for i, s in enumerate(scans, start=first_row):
        field = f"scans[{i}]."
        if s.key in done:
            out.append(replay_of(conn, group_id, done[s.key], _asked(s), s.key))
            continue
        code = codes.get(s.scene)
        if code is None:
            raise NotFoundError(f"{field}scene: no code {s.scene!r} in this group")
        member = _current(current, s.member_id, f"{field}member_id")
        referrer = _current(current, s.referrer_member_id, f"{field}referrer_member_id")
        if referrer is not None and referrer == member:
            referrer = None  # a member scanning the code it shared refers no one
        when = as_stored(s.at) if s.at is not None else now
        flag = flag_of(code, when)
        first = False
        if flag is None and member is not None:
            if s.acquired is not None:
                first = s.acquired
            else:
                joined = registered.get(member)
                first = (
                    joined is not None
                    and abs(joined - when) <= ACQUISITION_WINDOW
                    and member not in acquired
                )
        if first:
            assert member is not None
            acquired.add(member)
        scan = Scan(next(ids), s.scene, member, s.identity_id, referrer, first, flag, when)
        done[s.key] = scan  # a later row of the import with this key replays this one
        out.append(scan)
        rows.append(
            {
                "scan_id": scan.scan_id,
                "group_id": group_id,
                "idempotency_key": s.key,
                "scene": s.scene,
                "member_id": member,
                "identity_id": s.identity_id,
                "referrer_member_id": referrer,
                "first_touch": first,
                "flag": flag,
                "at": when,
                "key_id": key_id,
            }
        )
    if rows:
        insert = dialect_of(conn).insert_ignore(qr_scans, ["group_id", "idempotency_key"])
        conn.execute(insert, rows)
        return _settled(conn, group_id, scans, out, {s.scan_id for s in out if not s.replayed})
    return out


def _settled(
    conn: Connection, group_id: str, scans: Sequence[ScanIn], out: list[Scan], mine: set[int]
) -> list[Scan]:
    """The results once written: a key another writer recorded between this batch's read
    and its insert (the insert left it alone) replays that writer's scan, as
    `record_scan` does."""
    stored = {
        r["idempotency_key"]: scan_of(r)
        for r in conn.execute(
            select(qr_scans).where(
                qr_scans.c.group_id == group_id,
                qr_scans.c.idempotency_key.in_(sorted({s.key for s in scans})),
            )
        ).mappings()
    }
    settled = []
    for s, scan in zip(scans, out, strict=True):
        theirs = stored[s.key]
        if scan.scan_id in mine and theirs.scan_id != scan.scan_id:
            scan = replay_of(conn, group_id, theirs, _asked(s), s.key)
        settled.append(scan)
    return settled


def _asked(s: ScanIn) -> tuple[str, int | None, int | None]:
    return (s.scene, s.member_id, s.identity_id)


def _current(current: dict[int, int], member_id: int | None, field: str) -> int | None:
    if member_id is None:
        return None
    if member_id not in current:
        raise ValidationError(field, f"no member {member_id} in this group", member_id)
    return current[member_id]


def _codes(conn: Connection, group_id: str, scenes: set[str]) -> dict[str, Scene]:
    if not scenes:
        return {}
    rows = conn.execute(
        select(qr_scenes).where(
            qr_scenes.c.group_id == group_id, qr_scenes.c.scene.in_(sorted(scenes))
        )
    ).mappings()
    return {r["scene"]: scene_of(r) for r in rows}


def _registered(conn: Connection, group_id: str, members: list[int]) -> dict[int, datetime]:
    if not members:
        return {}
    rows = conn.execute(_REGISTERED, {"g": group_id, "ms": members}).all()
    return {int(m): stored_time(t) for m, t in rows if t is not None}


def _acquired(conn: Connection, group_id: str, members: list[int]) -> set[int]:
    if not members:
        return set()
    return {int(m) for (m,) in conn.execute(_ACQUIRED, {"g": group_id, "ms": members})}
