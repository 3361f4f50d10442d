"""Stored segments: a rule kept under a slug, versioned, and who is in it now.

Defining a segment validates its rule (`rules.parse_document`) and the segments it nests
(each must exist, not be archived, and no segment may reach itself). Changing the rule
adds a version (`segment_versions`); the segment row names the current one, and every
evaluation records the version it ran, so "which rule put this member in" has an answer.
Archiving keeps the members and history for reading; a segment another live segment
nests cannot be archived (it would silently select nobody).

Evaluation (`segments.evaluate`) writes the members; everything else reads them from the
store (`segment_members`), never from the warehouse per request.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from siyu.errors import ConflictError, NotFoundError, ValidationError
from siyu.segments.models import (
    NAME_MAX,
    SEGMENT_REFRESHES,
    segment_evaluations,
    segment_members,
    segment_versions,
    segments,
    tags,
)
from siyu.segments.rules import SLUG, parse_document, references
from siyu.segments.sources import STORE_ATTRIBUTES
from siyu.segments.tags import AUTOMATIC_PREFIX
from siyu.store.dialect import dialect_of
from siyu.store.times import stored_now

OWNER_MAX = 128


@dataclass(frozen=True)
class StoredSegment:
    segment_id: int
    slug: str
    name_zh: str
    name_en: str
    owner: str
    refresh: str
    version: int
    rule: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None
    size: int | None  # at the last evaluation; None before the first
    evaluated_at: datetime | None

    def nests(self) -> frozenset[str]:
        """The slugs of the segments its rule nests."""
        return references(parse_document(self.rule).rule).segments


@dataclass(frozen=True)
class Version:
    version: int
    rule: dict[str, Any]
    created_by: str
    created_at: datetime


# --- checks ---------------------------------------------------------------------------------


def check_segment_slug(slug: object) -> str:
    if not isinstance(slug, str) or not SLUG.fullmatch(slug):
        raise ValidationError(
            "slug", "must be 1 to 64 of a-z, 0-9, _ and -, starting with a letter or digit", slug
        )
    return slug


def _check_fields(fields: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("name_zh", "name_en"):
        if name in fields:
            value = fields[name]
            if not isinstance(value, str) or not value.strip() or len(value) > NAME_MAX:
                raise ValidationError(name, f"must be text of 1 to {NAME_MAX} characters")
            out[name] = value.strip()
    if "owner" in fields:
        owner = fields["owner"]
        if not isinstance(owner, str) or not owner.strip() or len(owner) > OWNER_MAX:
            raise ValidationError("owner", f"must be text of 1 to {OWNER_MAX} characters")
        out["owner"] = owner.strip()
    if "refresh" in fields:
        if fields["refresh"] not in SEGMENT_REFRESHES:
            raise ValidationError("refresh", f"must be one of {', '.join(SEGMENT_REFRESHES)}")
        out["refresh"] = fields["refresh"]
    return out


def _check_rule(conn: Connection, group_id: str, slug: str, rule: object) -> dict[str, Any]:
    """The rule, validated, with every nested segment existing, live, and not leading back
    to `slug`."""
    document = parse_document(rule)
    nested = references(document.rule).segments
    graph = _graph(conn, group_id)
    for name in sorted(nested):
        if name == slug:
            raise ValidationError("rule", f"segment {slug!r} cannot nest itself")
        found = graph.get(name)
        if found is None:
            raise ValidationError("rule", f"nests segment {name!r}, which does not exist")
        if found[1]:
            raise ValidationError("rule", f"nests segment {name!r}, which is archived")
    check_tags(conn, group_id, references(document.rule).tags)
    check_attributes(conn, group_id, references(document.rule).attributes)
    cycle = _path_back(graph, nested, slug)
    if cycle:
        raise ValidationError(
            "rule",
            f"nesting would loop: {' -> '.join([slug, *cycle])}; a segment cannot reach itself",
        )
    assert isinstance(rule, dict)
    return rule


def check_tags(conn: Connection, group_id: str, slugs: Iterable[str]) -> None:
    """Refuse a rule naming a tag the group has not defined: it would hold nobody, silently
    (a typo, or an automatic tag before the first `siyu tags refresh`)."""
    wanted = sorted(set(slugs))
    if not wanted:
        return
    known = set(
        conn.execute(
            select(tags.c.slug).where(tags.c.group_id == group_id, tags.c.slug.in_(wanted))
        ).scalars()
    )
    for slug in wanted:
        if slug not in known:
            hint = (
                " (automatic tags are defined by `siyu tags refresh`)"
                if slug.startswith(AUTOMATIC_PREFIX)
                else ""
            )
            raise ValidationError("rule", f"names tag {slug!r}, which does not exist{hint}")


def check_attributes(conn: Connection, group_id: str, names: Iterable[str]) -> None:
    """Refuse a rule naming a store attribute no refresh has written yet (`affinity` before
    the first `siyu tags refresh`): every member would read the value of no row (0)."""
    writers = {
        name: STORE_ATTRIBUTES[name].written_by
        for name in sorted(set(names))
        if name in STORE_ATTRIBUTES and STORE_ATTRIBUTES[name].written_by
    }
    if not writers:
        return
    known = set(
        conn.execute(
            select(tags.c.slug).where(
                tags.c.group_id == group_id, tags.c.slug.in_(set(writers.values()))
            )
        ).scalars()
    )
    for name, tag in writers.items():
        if tag not in known:
            raise ValidationError(
                "rule",
                f"names attribute {name!r}, which `siyu tags refresh` has not computed yet "
                f"(it writes it with the automatic tag {tag!r})",
            )


def _graph(conn: Connection, group_id: str) -> dict[str, tuple[frozenset[str], bool]]:
    """Each segment's nested slugs (current version) and whether it is archived."""
    rows = conn.execute(
        select(segments.c.slug, segments.c.archived_at, segment_versions.c.rule)
        .join(
            segment_versions,
            (segment_versions.c.segment_id == segments.c.segment_id)
            & (segment_versions.c.version == segments.c.version),
        )
        .where(segments.c.group_id == group_id)
    )
    return {
        r.slug: (
            references(parse_document(json.loads(r.rule)).rule).segments,
            r.archived_at is not None,
        )
        for r in rows
    }


def _path_back(
    graph: dict[str, tuple[frozenset[str], bool]], start: Iterable[str], target: str
) -> list[str]:
    """A chain of nested segments from one of `start` to `target`, or [] (depth-first)."""
    seen: set[str] = set()

    def walk(node: str) -> list[str] | None:
        if node == target:
            return [node]
        if node in seen:
            return None
        seen.add(node)
        for child in sorted(graph.get(node, (frozenset(), False))[0]):
            found = walk(child)
            if found:
                return [node, *found]
        return None

    for first in sorted(start):
        found = walk(first)
        if found:
            return found
    return []


# --- definitions ----------------------------------------------------------------------------


def define_segment(
    conn: Connection,
    group_id: str,
    slug: str,
    *,
    name_zh: str,
    name_en: str,
    rule: object,
    owner: str,
    refresh: str = "nightly",
) -> StoredSegment:
    """Create a segment at version 1. `ConflictError` when the slug is taken."""
    check_segment_slug(slug)
    row = _check_fields(
        {"name_zh": name_zh, "name_en": name_en, "owner": owner, "refresh": refresh}
    )
    checked = _check_rule(conn, group_id, slug, rule)
    if _find(conn, group_id, slug) is not None:
        raise ConflictError(f"slug: {slug!r} is already a segment of this brand group")
    now = stored_now()
    segment_id = conn.execute(
        insert(segments)
        .values(group_id=group_id, slug=slug, version=1, created_at=now, updated_at=now, **row)
        .returning(segments.c.segment_id)
    ).scalar_one()
    _add_version(conn, segment_id, 1, checked, row["owner"], now)
    return get_segment(conn, group_id, slug)


def update_segment(
    conn: Connection, group_id: str, slug: str, *, by: str, **fields: Any
) -> StoredSegment:
    """Change labels, owner or refresh in place; a new `rule` adds a version (the same
    rule again does not)."""
    unknown = set(fields) - {"name_zh", "name_en", "owner", "refresh", "rule"}
    if unknown:
        raise ValidationError(sorted(unknown)[0], "cannot change (slug: define a new segment)")
    found = _lock(conn, group_id, slug)
    if found.archived_at is not None:
        raise ConflictError(f"slug: segment {slug!r} is archived")
    row = _check_fields(fields)
    now = stored_now()
    if "rule" in fields:
        rule = _check_rule(conn, group_id, slug, fields["rule"])
        if _canonical(rule) != _canonical(found.rule):
            row["version"] = found.version + 1
            _add_version(conn, found.segment_id, found.version + 1, rule, by, now)
    if row:
        conn.execute(
            update(segments)
            .where(segments.c.segment_id == found.segment_id)
            .values(updated_at=now, **row)
        )
    return get_segment(conn, group_id, slug)


def archive_segment(conn: Connection, group_id: str, slug: str) -> StoredSegment:
    found = _lock(conn, group_id, slug)
    if found.archived_at is None:
        nesting = sorted(
            name
            for name, (nested, archived) in _graph(conn, group_id).items()
            if slug in nested and not archived
        )
        if nesting:
            raise ConflictError(
                f"slug: segment {slug!r} is nested by {', '.join(nesting)}; change those first"
            )
        now = stored_now()
        conn.execute(
            update(segments)
            .where(segments.c.segment_id == found.segment_id)
            .values(archived_at=now, updated_at=now)
        )
    return get_segment(conn, group_id, slug)


def _add_version(
    conn: Connection, segment_id: int, version: int, rule: dict[str, Any], by: str, at: datetime
) -> None:
    conn.execute(
        insert(segment_versions).values(
            segment_id=segment_id,
            version=version,
            rule=_canonical(rule),
            created_by=by,
            created_at=at,
        )
    )


def _canonical(rule: dict[str, Any]) -> str:
    return json.dumps(rule, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


# --- reads ----------------------------------------------------------------------------------


def _query() -> Any:
    """Segments with their current rule and their latest evaluation's size and time."""
    runs = segment_evaluations.alias("runs")
    latest = (
        select(runs.c.evaluation_id)
        .where(runs.c.segment_id == segments.c.segment_id)
        .order_by(runs.c.evaluation_id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(
            segments,
            segment_versions.c.rule,
            segment_evaluations.c.size,
            segment_evaluations.c.at.label("evaluated_at"),
        )
        .join(
            segment_versions,
            (segment_versions.c.segment_id == segments.c.segment_id)
            & (segment_versions.c.version == segments.c.version),
        )
        .outerjoin(segment_evaluations, segment_evaluations.c.evaluation_id == latest)
    )


def _segment(row: Any) -> StoredSegment:
    return StoredSegment(
        segment_id=int(row.segment_id),
        slug=row.slug,
        name_zh=row.name_zh,
        name_en=row.name_en,
        owner=row.owner,
        refresh=row.refresh,
        version=int(row.version),
        rule=json.loads(row.rule),
        created_at=row.created_at,
        updated_at=row.updated_at,
        archived_at=row.archived_at,
        size=None if row.size is None else int(row.size),
        evaluated_at=row.evaluated_at,
    )


def _find(conn: Connection, group_id: str, slug: str) -> StoredSegment | None:
    row = conn.execute(
        _query().where(segments.c.group_id == group_id, segments.c.slug == slug)
    ).first()
    return None if row is None else _segment(row)


def get_segment(conn: Connection, group_id: str, slug: str) -> StoredSegment:
    found = _find(conn, group_id, check_segment_slug(slug))
    if found is None:
        raise NotFoundError(f"slug: no segment {slug!r} in this brand group")
    return found


def _lock(conn: Connection, group_id: str, slug: str) -> StoredSegment:
    """The segment, its row locked: its writers (an edit, an evaluation) take turns."""
    query = select(segments.c.segment_id).where(
        segments.c.group_id == group_id, segments.c.slug == check_segment_slug(slug)
    )
    if conn.execute(dialect_of(conn).with_row_lock(query)).first() is None:
        raise NotFoundError(f"slug: no segment {slug!r} in this brand group")
    return get_segment(conn, group_id, slug)


lock_segment = _lock


def segment_named(conn: Connection, group_id: str, slug_or_id: str) -> StoredSegment:
    """A segment by its slug, or by its id (digits that are no segment's slug)."""
    found = _find(conn, group_id, slug_or_id) if SLUG.fullmatch(slug_or_id) else None
    if found is None and slug_or_id.isdigit():
        row = conn.execute(
            _query().where(
                segments.c.group_id == group_id, segments.c.segment_id == int(slug_or_id)
            )
        ).first()
        found = None if row is None else _segment(row)
    if found is None:
        raise NotFoundError(f"segment: no segment {slug_or_id!r} in this brand group")
    return found


def segment_member_ids(conn: Connection, group_id: str, segment_id: int) -> list[int]:
    """The segment's members now (as its last evaluation wrote them), by member id."""
    rows = conn.execute(
        select(segment_members.c.member_id)
        .where(segment_members.c.group_id == group_id, segment_members.c.segment_id == segment_id)
        .order_by(segment_members.c.member_id)
    )
    return [int(m) for m in rows.scalars()]


def list_segments(conn: Connection, group_id: str, archived: bool = False) -> list[StoredSegment]:
    query = _query().where(segments.c.group_id == group_id)
    if not archived:
        query = query.where(segments.c.archived_at.is_(None))
    return [_segment(r) for r in conn.execute(query.order_by(segments.c.slug))]


def segment_versions_of(conn: Connection, group_id: str, slug: str) -> list[Version]:
    found = get_segment(conn, group_id, slug)
    rows = conn.execute(
        select(segment_versions)
        .where(segment_versions.c.segment_id == found.segment_id)
        .order_by(segment_versions.c.version)
    )
    return [Version(int(r.version), json.loads(r.rule), r.created_by, r.created_at) for r in rows]


def evaluation_order(conn: Connection, group_id: str, slugs: Iterable[str] | None) -> list[str]:
    """Live segments to evaluate, each after the segments it nests (those are included
    too, so a nested segment is never read stale within one run). All live when None."""
    graph = {s: v for s, v in _graph(conn, group_id).items() if not v[1]}
    wanted = sorted(graph) if slugs is None else sorted(set(slugs))
    for slug in wanted:
        if slug not in graph:
            raise NotFoundError(f"slug: no live segment {slug!r} in this brand group")
    order: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> None:
        if node in done:
            return
        done.add(node)
        for child in sorted(graph[node][0]):
            visit(child)
        order.append(node)

    for slug in wanted:
        visit(slug)
    return order
