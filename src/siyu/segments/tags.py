"""Tags: define them, set them on members, and read who holds what since when.

The faces (API, CLI, console) and the writers (automatic tags, the `tags` importer) all
come here, so every change to `member_tags` writes its `member_tag_history` row in the
same transaction. Setting a tag a member holds with the same value is a no-op, removing
one it does not hold is too: a retry never writes history twice.

`apply_membership` replaces a tag's whole member set at once, set-based, through the
writer segments share (`segments.membership`): a tag of a million members costs no Python
per member.

Row scope (a guide tags only its own members) is the caller's: it resolves the member
with `auth.scope.member_in_scope` first, which also follows a merged member to its
survivor. Tags follow merges in `identity.tag_follow`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy import Connection, insert, select, text, update

from siyu.errors import NotFoundError, ValidationError
from siyu.guides.queries import GUIDE_MEMBER_IDS
from siyu.segments.membership import (
    DIFFERS,
    TAG_HOLDERS,
    Applied,
    replace_members,
    unique_members,
)
from siyu.segments.models import (
    NAME_MAX,
    REFRESHES,
    SLUG_PATTERN,
    TAG_KINDS,
    VALUE_MAX,
    member_tag_history,
    member_tags,
    tags,
)
from siyu.store.dialect import dialect_of
from siyu.store.times import stored_now

_SLUG = re.compile(rf"^{SLUG_PATTERN}$")
# No control characters in a label or an owner: they are shown on pages and in CSV, and
# PostgreSQL refuses NUL in text (the API's schemas refuse them too; this holds every face).
_CONTROL = re.compile(r"[\x00-\x1f]")
_DEFINE_FIELDS = ("name_zh", "name_en", "kind", "definition", "owner", "refresh")
# Who may set a tag of each kind by hand: manual tags only; the others have a writer.
SETTABLE_KINDS = ("manual",)


@dataclass(frozen=True)
class Tag:
    tag_id: int
    slug: str
    name_zh: str
    name_en: str
    kind: str
    definition: Any
    owner: str
    refresh: str
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
    members: int = 0


@dataclass(frozen=True)
class Held:
    """A tag a member holds: which, with what value, set by whom and when."""

    slug: str
    kind: str
    value: str | None
    set_by: str
    set_at: datetime


@dataclass(frozen=True)
class HeldDefined:
    """A tag a member holds with the tag's own names and definition: one row of a page of
    a member's tags (`member_tag_page`)."""

    slug: str
    name_zh: str
    name_en: str
    kind: str
    definition: Any
    value: str | None
    set_by: str
    set_at: datetime


@dataclass(frozen=True)
class Holder:
    member_id: int
    value: str | None
    set_by: str
    set_at: datetime


@dataclass(frozen=True)
class Change:
    slug: str
    member_id: int
    change: str
    value: str | None
    by: str
    at: datetime


# --- definitions ----------------------------------------------------------------------------


def check_slug(slug: str) -> str:
    if not isinstance(slug, str) or not _SLUG.match(slug):
        raise ValidationError("slug", f"must match {SLUG_PATTERN} (lower case, digits, _ . -)")
    return slug


def _check_definition(fields: dict[str, Any]) -> dict[str, Any]:
    """The stored columns of a tag's definition, each checked; errors name field and rule."""
    unknown = sorted(set(fields) - set(_DEFINE_FIELDS))
    if unknown:
        raise ValidationError(unknown[0], "not a field of a tag")
    out: dict[str, Any] = {}
    for name in ("name_zh", "name_en"):
        if name in fields:
            value = fields[name]
            if not isinstance(value, str) or not value.strip() or len(value) > NAME_MAX:
                raise ValidationError(name, f"a label of 1 to {NAME_MAX} characters")
            if _CONTROL.search(value):
                raise ValidationError(name, "a label without control characters")
            out[name] = value.strip()
    if "kind" in fields and fields["kind"] not in TAG_KINDS:
        raise ValidationError("kind", f"one of {', '.join(TAG_KINDS)}")
    if "refresh" in fields and fields["refresh"] not in REFRESHES:
        raise ValidationError("refresh", f"one of {', '.join(REFRESHES)}")
    for name in ("kind", "refresh"):
        if name in fields:
            out[name] = fields[name]
    if "owner" in fields:
        owner = fields["owner"]
        if not isinstance(owner, str) or not owner or len(owner) > 128:
            raise ValidationError("owner", "a role, user or key id of 1 to 128 characters")
        if _CONTROL.search(owner):
            raise ValidationError("owner", "a role, user or key id without control characters")
        out["owner"] = owner
    if "definition" in fields:
        definition = fields["definition"]
        if definition is not None and not isinstance(definition, dict):
            raise ValidationError("definition", "a JSON object (the rule, or the source)")
        out["definition"] = json.dumps(definition or {}, ensure_ascii=False, sort_keys=True)
    return out


AUTOMATIC_PREFIX = "auto."  # the slugs of the automatic tags (segments.automatic)


def define_tag(
    conn: Connection,
    group_id: str,
    slug: str,
    *,
    name_zh: str,
    name_en: str,
    kind: str,
    owner: str,
    refresh: str | None = None,
    definition: dict[str, Any] | None = None,
) -> Tag:
    """Create a tag; `ValidationError` on a bad field, or when the slug is taken."""
    check_slug(slug)
    if slug.startswith(AUTOMATIC_PREFIX) and kind != "automatic":
        # the nightly refresh stops at a tag of another kind holding one of its slugs
        raise ValidationError("slug", f"{AUTOMATIC_PREFIX}* is kept for the automatic tags")
    refresh = refresh or {"automatic": "nightly", "imported": "on_import"}.get(kind, "manual")
    row = _check_definition(
        {
            "name_zh": name_zh,
            "name_en": name_en,
            "kind": kind,
            "owner": owner,
            "refresh": refresh,
            "definition": definition,
        }
    )
    if _find(conn, group_id, slug) is not None:
        raise ValidationError("slug", f"already a tag of this brand group: {slug!r}")
    now = stored_now()
    conn.execute(
        insert(tags).values(group_id=group_id, slug=slug, created_at=now, updated_at=now, **row)
    )
    return get_tag(conn, group_id, slug)


def update_tag(conn: Connection, group_id: str, slug: str, **fields: Any) -> Tag:
    """Change a tag's labels, owner, refresh or definition (its kind and slug stay)."""
    if "kind" in fields or "slug" in fields:
        field = "kind" if "kind" in fields else "slug"
        raise ValidationError(field, "cannot change: define a new tag")
    found = _require(conn, group_id, slug)
    row = _check_definition(fields)
    if row:
        conn.execute(
            update(tags).where(tags.c.tag_id == found.tag_id).values(updated_at=stored_now(), **row)
        )
    return get_tag(conn, group_id, slug)


def archive_tag(conn: Connection, group_id: str, slug: str) -> Tag:
    """Archive a tag: it keeps its members and history for reading, takes no more writes."""
    found = _require(conn, group_id, slug)
    if found.archived_at is None:
        now = stored_now()
        conn.execute(
            update(tags)
            .where(tags.c.tag_id == found.tag_id)
            .values(archived_at=now, updated_at=now)
        )
    return get_tag(conn, group_id, slug)


def get_tag(conn: Connection, group_id: str, slug: str) -> Tag:
    found = _require(conn, group_id, slug)
    n = conn.execute(
        text("SELECT COUNT(*) FROM member_tags WHERE group_id = :g AND tag_id = :t"),
        {"g": group_id, "t": found.tag_id},
    ).scalar_one()
    return Tag(**{**found.__dict__, "members": int(n)})


def list_tags(conn: Connection, group_id: str, archived: bool = False) -> list[Tag]:
    """The group's tags by slug, each with its member count; archived ones on request."""
    rows = conn.execute(
        text(f"""SELECT t.*, (SELECT COUNT(*) FROM member_tags mt
                              WHERE mt.group_id = t.group_id AND mt.tag_id = t.tag_id) AS n
                 FROM tags t WHERE t.group_id = :g
                 {"" if archived else "AND t.archived_at IS NULL"} ORDER BY t.slug"""),
        {"g": group_id},
    ).all()
    return [_tag(r, int(r.n)) for r in rows]


def _find(conn: Connection, group_id: str, slug: str) -> Tag | None:
    row = conn.execute(select(tags).where(tags.c.group_id == group_id, tags.c.slug == slug)).first()
    return None if row is None else _tag(row)


def _require(conn: Connection, group_id: str, slug: str) -> Tag:
    found = _find(conn, group_id, check_slug(slug))
    if found is None:
        raise NotFoundError(f"slug: no tag {slug!r}")
    return found


def _tag(row: Any, members: int = 0) -> Tag:
    return Tag(
        tag_id=int(row.tag_id),
        slug=row.slug,
        name_zh=row.name_zh,
        name_en=row.name_en,
        kind=row.kind,
        definition=json.loads(row.definition or "{}"),
        owner=row.owner,
        refresh=row.refresh,
        created_at=row.created_at,
        updated_at=row.updated_at,
        archived_at=row.archived_at,
        members=members,
    )


def writable(conn: Connection, group_id: str, slug: str, kinds: Sequence[str]) -> Tag:
    """The tag, if it is live and of one of `kinds`; a `ValidationError` naming why not.
    Its row stays locked to the end of the caller's transaction (`_lock`)."""
    found = _require(conn, group_id, slug)
    _lock(conn, group_id, found.tag_id)
    if found.archived_at is not None:
        raise ValidationError("slug", f"tag {slug!r} is archived: it takes no more members")
    if found.kind not in kinds:
        raise ValidationError(
            "slug", f"tag {slug!r} is {found.kind}: only {', '.join(kinds)} tags are set here"
        )
    return found


def _lock(conn: Connection, group_id: str, tag_id: int) -> None:
    """Lock the tag's row: its writers (a member set by hand, the whole set replaced) take
    turns, so a set never races `apply_membership` into a duplicate holder."""
    query = select(tags.c.tag_id).where(tags.c.group_id == group_id, tags.c.tag_id == tag_id)
    if conn.execute(dialect_of(conn).with_row_lock(query)).first() is None:
        raise NotFoundError(f"tag_id: no tag {tag_id} in this brand group")


def _check_value(value: str | None) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > VALUE_MAX):
        raise ValidationError("value", f"text of at most {VALUE_MAX} characters")
    return value


# --- one member -----------------------------------------------------------------------------


def set_member_tag(
    conn: Connection,
    group_id: str,
    slug: str,
    member_id: int,
    by: str,
    value: str | None = None,
    kinds: Sequence[str] = SETTABLE_KINDS,
) -> str:
    """Give the member the tag (with `value`); returns 'enter', 'value' or 'none' (it held
    the tag with that value already). Caller holds the transaction; the member is the
    current one (the caller resolved its scope and survivor)."""
    _check_value(value)
    tag = writable(conn, group_id, slug, kinds)
    now = stored_now()
    key = {"group_id": group_id, "tag_id": tag.tag_id, "member_id": member_id}
    added = conn.execute(
        dialect_of(conn)
        .insert_ignore(member_tags)
        .values(**key, value=value, set_by=by, set_at=now)
        .returning(member_tags.c.member_id)  # rowcount is not told for every driver
    ).first()
    if added is not None:
        change = "enter"
    else:
        held = conn.execute(
            select(member_tags.c.value).where(*(member_tags.c[k] == v for k, v in key.items()))
        ).scalar_one()
        if held == value:
            return "none"
        conn.execute(
            update(member_tags)
            .where(*(member_tags.c[k] == v for k, v in key.items()))
            .values(value=value, set_by=by, set_at=now)
        )
        change = "value"
    conn.execute(
        insert(member_tag_history).values(**key, change=change, value=value, by=by, at=now)
    )
    return change


def unset_member_tag(
    conn: Connection,
    group_id: str,
    slug: str,
    member_id: int,
    by: str,
    kinds: Sequence[str] = SETTABLE_KINDS,
) -> bool:
    """Take the tag from the member; False when it did not hold it (nothing written)."""
    tag = writable(conn, group_id, slug, kinds)
    key = {"group_id": group_id, "tag_id": tag.tag_id, "member_id": member_id}
    gone = conn.execute(
        member_tags.delete()
        .where(*(member_tags.c[k] == v for k, v in key.items()))
        .returning(member_tags.c.member_id)
    ).first()
    if gone is None:
        return False
    conn.execute(
        insert(member_tag_history).values(**key, change="leave", value=None, by=by, at=stored_now())
    )
    return True


def member_tag_list(conn: Connection, group_id: str, member_id: int) -> list[Held]:
    rows = conn.execute(
        text("""SELECT t.slug, t.kind, mt.value, mt.set_by, mt.set_at
                FROM member_tags mt JOIN tags t ON t.tag_id = mt.tag_id
                WHERE mt.group_id = :g AND mt.member_id = :m ORDER BY t.slug"""),
        {"g": group_id, "m": member_id},
    ).all()
    return [Held(r.slug, r.kind, r.value, r.set_by, r.set_at) for r in rows]


def member_tag_page(
    conn: Connection, group_id: str, member_id: int, limit: int, offset: int = 0
) -> tuple[int, list[HeldDefined]]:
    """(how many tags the member holds, one page of them by slug with their definitions):
    a member may hold hundreds, and a page reads only its own rows."""
    params = {"g": group_id, "m": member_id, "n": limit, "o": offset}
    total = conn.execute(
        text("SELECT COUNT(*) FROM member_tags WHERE group_id = :g AND member_id = :m"), params
    ).scalar_one()
    rows = conn.execute(
        text("""SELECT t.slug, t.name_zh, t.name_en, t.kind, t.definition, mt.value, mt.set_by,
                       mt.set_at
                FROM member_tags mt JOIN tags t ON t.tag_id = mt.tag_id AND t.group_id = :g
                WHERE mt.group_id = :g AND mt.member_id = :m
                ORDER BY t.slug LIMIT :n OFFSET :o"""),
        params,
    ).all()
    page = [
        HeldDefined(
            r.slug,
            r.name_zh,
            r.name_en,
            r.kind,
            json.loads(r.definition or "{}"),
            r.value,
            r.set_by,
            r.set_at,
        )
        for r in rows
    ]
    return int(total), page


def givable_tags(conn: Connection, group_id: str, member_id: int) -> list[Tag]:
    """The live manual tags the member does not hold (what may be given to it by hand), by
    slug; no holder counts (Member 360 needs none, and counting costs a scan per tag)."""
    rows = conn.execute(
        text(f"""SELECT t.* FROM tags t WHERE t.group_id = :g AND t.archived_at IS NULL
                 AND t.kind IN ({", ".join(f"'{k}'" for k in SETTABLE_KINDS)})
                 AND NOT EXISTS (SELECT 1 FROM member_tags mt WHERE mt.group_id = :g
                   AND mt.tag_id = t.tag_id AND mt.member_id = :m)
                 ORDER BY t.slug"""),
        {"g": group_id, "m": member_id},
    ).all()
    return [_tag(r) for r in rows]


def tag_members(
    conn: Connection,
    group_id: str,
    slug: str,
    limit: int = 50,
    after: int | None = None,
    guide_id: str | None = None,
) -> tuple[int, list[Holder], int | None]:
    """(total, one page of holders by member id, `after` for the next page or None);
    with `guide_id`, only that guide's members (a guide key's row scope)."""
    tag = _require(conn, group_id, slug)
    params = {"g": group_id, "t": tag.tag_id, "a": after or 0, "n": limit + 1, "gd": guide_id}
    mine = "" if guide_id is None else f"AND member_id IN ({GUIDE_MEMBER_IDS})"
    rows = conn.execute(
        text(f"""SELECT member_id, value, set_by, set_at FROM member_tags
                 WHERE group_id = :g AND tag_id = :t AND member_id > :a {mine}
                 ORDER BY member_id LIMIT :n"""),
        params,
    ).all()
    total = conn.execute(
        text(f"SELECT COUNT(*) FROM member_tags WHERE group_id = :g AND tag_id = :t {mine}"),
        params,
    ).scalar_one()
    page = [Holder(int(r.member_id), r.value, r.set_by, r.set_at) for r in rows[:limit]]
    return int(total), page, page[-1].member_id if len(rows) > limit else None


def history(
    conn: Connection,
    group_id: str,
    *,
    member_id: int | None = None,
    slug: str | None = None,
    limit: int = 100,
    guide_id: str | None = None,
) -> list[Change]:
    """Enters, leaves and value changes, newest first, of a member, a tag, or both; with
    `guide_id`, of that guide's members only (a guide key's row scope)."""
    conds, params = ["h.group_id = :g"], {"g": group_id, "n": limit}
    if guide_id is not None:
        conds.append(f"h.member_id IN ({GUIDE_MEMBER_IDS})")
        params["gd"] = guide_id
    if member_id is not None:
        conds.append("h.member_id = :m")
        params["m"] = member_id
    if slug is not None:
        conds.append("h.tag_id = :t")
        params["t"] = _require(conn, group_id, slug).tag_id
    rows = conn.execute(
        text(f"""SELECT t.slug, h.member_id, h.change, h.value, h.by, h.at
                 FROM member_tag_history h JOIN tags t ON t.tag_id = h.tag_id
                 WHERE {" AND ".join(conds)} ORDER BY h.at DESC, h.change_id DESC LIMIT :n"""),
        params,
    ).all()
    return [Change(r.slug, int(r.member_id), r.change, r.value, r.by, r.at) for r in rows]


# --- a whole tag at once --------------------------------------------------------------------


def apply_membership(
    conn: Connection,
    group_id: str,
    tag_id: int,
    member_ids: pa.Array | pa.ChunkedArray | np.ndarray,
    value: str | pa.Array | np.ndarray | None = None,
    by: str = "system",
) -> Applied:
    """Make `member_ids` the tag's members: those not in it leave, new ones enter, those
    whose value differs change value; history gets one row per delta. `value` is one for
    all, or one per member (aligned with `member_ids`; a repeated member keeps its first).
    Caller holds the transaction. Set-based (`segments.membership`)."""
    _lock(conn, group_id, tag_id)
    count = len(member_ids)
    if isinstance(value, (pa.Array, np.ndarray)):
        values = pa.array(value, pa.string()) if isinstance(value, np.ndarray) else value
        if len(values) != count:
            raise ValidationError("value", "one value per member, or one for all")
    else:
        values = pa.array([_check_value(value)] * count, pa.string())
    ids, kept = unique_members(member_ids, values)
    assert kept is not None
    longest = pa.compute.max(pa.compute.utf8_length(kept)).as_py() if len(kept) else None
    if longest is not None and longest > VALUE_MAX:
        raise ValidationError("value", f"text of at most {VALUE_MAX} characters")
    return replace_members(conn, TAG_HOLDERS, group_id, tag_id, ids, kept, by, stored_now())


def add_staged(conn: Connection, group_id: str, staged: str, at: datetime) -> Applied:
    """Add the rows of the staging table `staged` (columns `_tag_id`, `_member_id`,
    `value`, `_by`; rows with either id null are skipped) to their tags: new holders
    enter, holders with another value change value; nobody leaves (an import adds, unlike
    `apply_membership`). A pair repeated in `staged` counts once (its least value)."""
    pairs = f"""SELECT s._tag_id AS tag_id, s._member_id AS member_id, MIN(s.value) AS value,
                       MIN(s._by) AS by
                FROM {staged} s WHERE s._tag_id IS NOT NULL AND s._member_id IS NOT NULL
                GROUP BY s._tag_id, s._member_id"""
    held = """SELECT 1 FROM member_tags mt WHERE mt.group_id = :g AND mt.tag_id = x.tag_id
              AND mt.member_id = x.member_id"""
    p = {"g": group_id, "gv": group_id, "at": at}
    columns = "(group_id, tag_id, member_id, change, value, by, at)"
    changed = conn.execute(
        text(f"""INSERT INTO member_tag_history {columns}
                 SELECT :gv, x.tag_id, x.member_id, 'value', x.value, x.by, :at
                 FROM ({pairs}) x JOIN member_tags mt ON mt.group_id = :g
                   AND mt.tag_id = x.tag_id AND mt.member_id = x.member_id
                 WHERE {DIFFERS.format(a="mt.value", b="x.value")}"""),
        p,
    ).rowcount
    if changed:
        conn.execute(
            text(f"""UPDATE member_tags SET set_at = :at,
                       value = (SELECT x.value FROM ({pairs}) x WHERE x.tag_id = member_tags.tag_id
                                AND x.member_id = member_tags.member_id),
                       set_by = (SELECT x.by FROM ({pairs}) x WHERE x.tag_id = member_tags.tag_id
                                 AND x.member_id = member_tags.member_id)
                     WHERE group_id = :g AND EXISTS (
                       SELECT 1 FROM ({pairs}) x WHERE x.tag_id = member_tags.tag_id
                         AND x.member_id = member_tags.member_id
                         AND {DIFFERS.format(a="member_tags.value", b="x.value")})"""),
            p,
        )
    entered = conn.execute(
        text(f"""INSERT INTO member_tag_history {columns}
                 SELECT :gv, x.tag_id, x.member_id, 'enter', x.value, x.by, :at
                 FROM ({pairs}) x WHERE NOT EXISTS ({held})"""),
        p,
    ).rowcount
    conn.execute(
        text(f"""INSERT INTO member_tags (group_id, tag_id, member_id, value, set_by, set_at)
                 SELECT :gv, x.tag_id, x.member_id, x.value, x.by, :at
                 FROM ({pairs}) x WHERE NOT EXISTS ({held})"""),
        p,
    )
    return Applied(entered=int(entered), left=0, changed=int(changed))


def current_member(conn: Connection, group_id: str, member_id: int) -> int:
    """The member itself, or the member it was merged into (as `auth.scope.survivor` for
    the async faces); `NotFoundError` when the group has no such member."""
    current = member_id
    for _ in range(32):  # merge chains are short; the bound guards against a cycle
        row = conn.execute(
            text("SELECT status, merged_into FROM members WHERE group_id = :g AND member_id = :m"),
            {"g": group_id, "m": current},
        ).first()
        if row is None:
            raise NotFoundError(f"member_id: no member {member_id}")
        if row.status != "merged" or row.merged_into is None:
            break
        current = int(row.merged_into)
    return current
