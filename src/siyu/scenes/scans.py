"""Recording a scan of a QR code, once per idempotency key.

A channel (the WeChat official account's SCAN / subscribe event, the mini-program's
launch with a scene) reports who scanned which scene. The scan is one row keyed by the
channel's key, unique in the brand group: a scan delivered twice is recorded once, and a
key reused for a different scan is refused (`idempotency_conflict`).

Acquisition (`first_touch`), kept simple on purpose: the caller may say so (`acquired`:
the channel knows the scan created the member); otherwise a scan counts when the member
registered within `ACQUISITION_WINDOW` of it (either side: the sign-up may be recorded
just before or after the scan) and has no first-touch scan yet. A member acquired twice
(a caller's word, or two members later merged) is credited to its earliest first-touch
scan by the reports.

A scan of a code past its life (a temporary code after `expires_at`, any code after it
was archived) is recorded, flagged `expired` or `archived`, and never acquires anyone:
WeChat stops honouring an expired code, so such a scan is a late delivery or a replay,
and a retired poster should not keep earning credit in the reports. The scan itself is
kept so the count of scans on dead codes tells HQ which posters still hang.

An unknown scene is refused (404): reports group by the registry, and a scan of a code
siyu did not make could not be placed. A merged member's scan goes to its survivor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select, text

from siyu.coupons.issue import holders
from siyu.errors import ValidationError
from siyu.ledger.errors import IdempotencyConflict
from siyu.scenes.models import qr_scans
from siyu.scenes.registry import PERMANENT, Scene, check_scene, scene_in
from siyu.store.dialect import dialect_of
from siyu.store.times import as_stored, stored_now, stored_time

ACQUISITION_WINDOW = timedelta(minutes=30)

_REGISTERED = text("SELECT registered_at FROM members WHERE group_id = :g AND member_id = :m")
_ACQUIRED = text("""SELECT 1 FROM qr_scans
                    WHERE group_id = :g AND member_id = :m AND first_touch""")


@dataclass(frozen=True)
class Scan:
    scan_id: int
    scene: str
    member_id: int | None
    identity_id: int | None
    referrer_member_id: int | None
    first_touch: bool
    flag: str | None
    at: datetime
    replayed: bool = False


def flag_of(code: Scene, at: datetime) -> str | None:
    """Why the code was past its life at `at`, or None while it lives."""
    if code.archived_at is not None and code.archived_at <= at:
        return "archived"
    if code.kind != PERMANENT and code.expires_at is not None and at >= code.expires_at:
        return "expired"
    return None


def record_scan(
    engine: Engine,
    group_id: str,
    scene: str,
    key: str,
    *,
    member_id: int | None = None,
    identity_id: int | None = None,
    referrer_member_id: int | None = None,
    acquired: bool | None = None,
    at: datetime | None = None,
    key_id: int | None = None,
) -> Scan:
    """Record one scan of `scene` under the idempotency `key` (see the module)."""
    check_request(scene, key, member_id, acquired)
    when = as_stored(at) if at is not None else stored_now()
    with engine.begin() as conn:
        done = _by_key(conn, group_id, key)
        if done is not None:
            return replay_of(conn, group_id, done, (scene, member_id, identity_id), key)
        code = scene_in(conn, group_id, scene)
        member = _current(conn, group_id, member_id, "member_id")
        referrer = _current(conn, group_id, referrer_member_id, "referrer_member_id")
        if referrer is not None and referrer == member:
            referrer = None  # a member scanning the code it shared refers no one
        flag = flag_of(code, when)
        first = False
        if flag is None and member is not None:
            first = acquired if acquired is not None else _new_member(conn, group_id, member, when)
        row = {
            "group_id": group_id,
            "idempotency_key": key,
            "scene": scene,
            "member_id": member,
            "identity_id": identity_id,
            "referrer_member_id": referrer,
            "first_touch": first,
            "flag": flag,
            "at": when,
            "key_id": key_id,
        }
        insert = dialect_of(conn).insert_ignore(qr_scans, ["group_id", "idempotency_key"])
        added = conn.execute(insert.returning(qr_scans.c.scan_id), row).first() is not None
        found = _by_key(conn, group_id, key)
        assert found is not None
        if added:
            return found
        return replay_of(conn, group_id, found, (scene, member_id, identity_id), key)


def check_request(
    scene: str, key: str, member_id: int | None, acquired: bool | None, field: str = ""
) -> None:
    """The rules a scan meets before the store is read; `field` prefixes the fields named
    (a row of a bulk import)."""
    check_scene(scene, f"{field}scene")
    if not key or len(key) > 200:
        raise ValidationError(f"{field}key", "required, at most 200 characters")
    if acquired and member_id is None:
        raise ValidationError(f"{field}acquired", "a scan acquires a member: member_id is required")


def _by_key(conn: Connection, group_id: str, key: str) -> Scan | None:
    row = conn.execute(
        select(qr_scans).where(qr_scans.c.group_id == group_id, qr_scans.c.idempotency_key == key)
    ).first()
    return None if row is None else scan_of(row._mapping)


def scan_of(m: Any) -> Scan:
    """A stored `qr_scans` row (its mapping) as a Scan."""
    return Scan(
        int(m["scan_id"]),
        m["scene"],
        m["member_id"],
        m["identity_id"],
        m["referrer_member_id"],
        bool(m["first_touch"]),
        m["flag"],
        stored_time(m["at"]),
    )


def replay_of(
    conn: Connection, group_id: str, done: Scan, asked: tuple[str, int | None, int | None], key: str
) -> Scan:
    """The first result of `key`, when it was the same scan: same scene and identifier,
    and the same member once merges are followed (the stored member may have moved)."""
    scene, member_id, identity_id = asked
    same_member = member_id == done.member_id or (
        member_id is not None
        and done.member_id is not None
        and len(set(holders(conn, group_id, [member_id, done.member_id]).values())) == 1
    )
    if (done.scene, done.identity_id) != (scene, identity_id) or not same_member:
        raise IdempotencyConflict(f"key: {key!r} already recorded another scan; use a new key")
    return Scan(**{**done.__dict__, "replayed": True})


def _current(conn: Connection, group_id: str, member_id: int | None, field: str) -> int | None:
    if member_id is None:
        return None
    found = holders(conn, group_id, [member_id]).get(member_id)
    if found is None:
        raise ValidationError(field, f"no member {member_id} in this group", member_id)
    return found


def _new_member(conn: Connection, group_id: str, member_id: int, at: datetime) -> bool:
    """Registered within the window of the scan, and not acquired by an earlier scan."""
    registered = conn.execute(_REGISTERED, {"g": group_id, "m": member_id}).scalar()
    if registered is None or abs(stored_time(registered) - at) > ACQUISITION_WINDOW:
        return False
    return conn.execute(_ACQUIRED, {"g": group_id, "m": member_id}).first() is None
