"""The registry of QR codes: create, list, archive, with WeChat's limits.

WeChat's rules, checked here so a code HQ defines can really be made: a scene string
(`scene_str`) is 1 to 64 characters with nothing invisible in it (no control characters,
no spaces: a value copied from a spreadsheet with a trailing tab would make a different
code); a temporary code lives at most 30 days (`expire_seconds` ≤ 2,592,000); a brand
group has at most 100,000 permanent codes, ever. The permanent count is a counter row
raised by a conditional UPDATE in the code's own transaction (as coupons' limits are), so
two HQ users creating the last code at once cannot both get it; WeChat never takes a
permanent code back, so archiving one does not give its slot back.

Creating a scene that exists with the same kind and targets answers the existing code
(a retried create is harmless); one pointing elsewhere is refused (`scene_exists`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, bindparam, select, text

from siyu.errors import NotFoundError, ValidationError
from siyu.scenes.errors import SceneExists, SceneLimitReached
from siyu.scenes.models import KINDS, TARGETS, qr_scene_counters, qr_scenes
from siyu.store.dialect import dialect_of
from siyu.store.times import as_stored, stored_now, stored_time

MAX_SCENE = 64
MAX_TEMPORARY_LIFE = timedelta(days=30)
MAX_PERMANENT = 100_000
PERMANENT = "permanent"

_TAKE = text("""UPDATE qr_scene_counters SET used = used + 1
                WHERE group_id = :g AND counter = :c AND used + 1 <= :cap""")


@dataclass(frozen=True)
class Scene:
    scene: str
    kind: str
    expires_at: datetime | None
    targets: dict[str, str | None]
    created_at: datetime
    archived_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "scene": self.scene,
            "kind": self.kind,
            "expires_at": self.expires_at,
            **self.targets,
            "created_at": self.created_at,
            "archived_at": self.archived_at,
        }


def check_scene(scene: str, field: str = "scene") -> str:
    """The scene string as WeChat takes it, or a ValidationError naming the rule."""
    if not 1 <= len(scene) <= MAX_SCENE:
        raise ValidationError(field, f"1 to {MAX_SCENE} characters, got {len(scene)}", scene)
    if not scene.isprintable() or any(c.isspace() for c in scene):
        raise ValidationError(field, "visible characters only: no control characters or spaces")
    return scene


def check_expiry(kind: str, expires_at: datetime | None, now: datetime) -> datetime | None:
    """A temporary code's end, in (now, now + 30 days]; a permanent code has none."""
    if kind not in KINDS:
        raise ValidationError("kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == PERMANENT:
        if expires_at is not None:
            raise ValidationError("expires_at", "a permanent code does not expire")
        return None
    if expires_at is None:
        raise ValidationError("expires_at", "required for a temporary code")
    end = as_stored(expires_at)
    if end <= now:
        raise ValidationError("expires_at", "must be after the code is created")
    if end - now > MAX_TEMPORARY_LIFE:
        raise ValidationError("expires_at", "a temporary code lives at most 30 days")
    return end


def _check_targets(targets: dict[str, str | None]) -> dict[str, str | None]:
    unknown = set(targets) - set(TARGETS)
    if unknown:
        raise ValidationError(sorted(unknown)[0], f"not a target; targets: {', '.join(TARGETS)}")
    out: dict[str, str | None] = dict.fromkeys(TARGETS)
    for name, value in targets.items():
        if value is not None:
            if not 1 <= len(value) <= 64 or not value.isprintable():
                raise ValidationError(name, "1 to 64 characters, no control characters")
            out[name] = value
    return out


def create(
    engine: Engine,
    group_id: str,
    scene: str,
    kind: str,
    *,
    expires_at: datetime | None = None,
    key_id: int | None = None,
    at: datetime | None = None,
    **targets: str | None,
) -> Scene:
    """Register a code; a permanent one takes a slot of the group's 100,000."""
    check_scene(scene)
    now = as_stored(at) if at is not None else stored_now()
    end = check_expiry(kind, expires_at, now)
    points = _check_targets(targets)
    row = {
        "group_id": group_id,
        "scene": scene,
        "kind": kind,
        "expires_at": end,
        **points,
        "created_at": now,
        "key_id": key_id,
    }
    with engine.begin() as conn:
        # RETURNING says whether the row was added (rowcount is not reliable here on
        # PostgreSQL, where the insert already returns the new key)
        insert = dialect_of(conn).insert_ignore(qr_scenes, ["group_id", "scene"])
        added = conn.execute(insert.returning(qr_scenes.c.scene_id), row).first()
        if added is None:
            existing = scene_in(conn, group_id, scene)
            if existing.kind != kind or existing.targets != points:
                raise SceneExists(scene)
            return existing
        if kind == PERMANENT:
            _take_permanent(conn, group_id)
        return scene_in(conn, group_id, scene)


def _take_permanent(conn: Connection, group_id: str) -> None:
    conn.execute(
        dialect_of(conn).insert_ignore(qr_scene_counters),
        {"group_id": group_id, "counter": PERMANENT, "used": 0},
    )
    taken = conn.execute(_TAKE, {"g": group_id, "c": PERMANENT, "cap": MAX_PERMANENT})
    if taken.rowcount != 1:
        raise SceneLimitReached(PERMANENT, MAX_PERMANENT)


def permanent_used(conn: Connection, group_id: str) -> int:
    found = conn.execute(
        select(qr_scene_counters.c.used).where(
            qr_scene_counters.c.group_id == group_id, qr_scene_counters.c.counter == PERMANENT
        )
    ).scalar()
    return int(found or 0)


def get(engine: Engine, group_id: str, scene: str) -> Scene:
    with engine.connect() as conn:
        return scene_in(conn, group_id, scene)


def scene_in(conn: Connection, group_id: str, scene: str) -> Scene:
    row = conn.execute(
        select(qr_scenes).where(qr_scenes.c.group_id == group_id, qr_scenes.c.scene == scene)
    ).first()
    if row is None:
        raise NotFoundError(f"scene: no code {scene!r} in this group")
    return scene_of(row._mapping)


def scene_of(m: Any) -> Scene:
    def when(value: Any) -> datetime | None:
        return None if value is None else stored_time(value)

    return Scene(
        m["scene"],
        m["kind"],
        when(m["expires_at"]),
        {t: m[t] for t in TARGETS},
        stored_time(m["created_at"]),
        when(m["archived_at"]),
    )


def list_scenes(
    engine: Engine,
    group_id: str,
    *,
    campaign: str | None = None,
    archived: bool = False,
    limit: int = 500,
    after: str | None = None,
) -> list[Scene]:
    """Codes in scene order (`after`: the last scene of the previous page); archived
    ones only when asked."""
    q = select(qr_scenes).where(qr_scenes.c.group_id == group_id)
    if campaign is not None:
        q = q.where(qr_scenes.c.campaign == campaign)
    if not archived:
        q = q.where(qr_scenes.c.archived_at.is_(None))
    if after is not None:
        q = q.where(qr_scenes.c.scene > after)
    with engine.connect() as conn:
        rows = conn.execute(q.order_by(qr_scenes.c.scene).limit(limit)).all()
    return [scene_of(r._mapping) for r in rows]


def archive(engine: Engine, group_id: str, scene: str, at: datetime | None = None) -> Scene:
    """Retire a code: it leaves the list, and its later scans are recorded but flagged.
    Archiving twice keeps the first time."""
    now = as_stored(at) if at is not None else stored_now()
    with engine.begin() as conn:
        conn.execute(
            text("""UPDATE qr_scenes SET archived_at = :at
                    WHERE group_id = :g AND scene = :s AND archived_at IS NULL""").bindparams(
                bindparam("at", type_=DateTime())
            ),
            {"g": group_id, "s": scene, "at": now},
        )
        return scene_in(conn, group_id, scene)
