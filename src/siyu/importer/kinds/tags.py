"""Imported tags: rows naming a member (by `member_ref`, or by an identifier: type, value
and scope) and a tag of kind `imported` by its slug, with an optional value and source.

A row is accepted only when its tag and its member are found; otherwise it is rejected
naming why (unknown tag, a tag not of kind imported or archived, no such member). The
accepted rows of a batch are added in the batch's one transaction, with history
(`segments.tags.add_staged`): a member already holding the tag with that value is left
as it is, so importing a file twice changes nothing. An import adds tags; it never takes
one away (a tag's whole membership is replaced with `segments.tags.apply_membership`).
A merged member's row lands on the member it was merged into.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, text

from siyu.identity.ingest import IdentifierColumn, encode_identifiers, scope_column
from siyu.importer.batch import Batch, Context
from siyu.importer.fields import Field
from siyu.importer.kinds.base import ID_TYPES, Kind, stage_accepted, text_field
from siyu.segments.models import SLUG_PATTERN, VALUE_MAX
from siyu.segments.tags import add_staged
from siyu.store.bulk import unstage
from siyu.store.times import stored_now

_SLUG = f"^{SLUG_PATTERN}$"
_MAX_HOPS = 32  # merge chains are short; the bound guards against a cycle


def _check(ctx: Context, batch: Batch) -> None:
    tags = batch.columns["tag"]
    bad_slug = pc.invert(pc.fill_null(pc.match_substring_regex(tags, _SLUG), True))
    batch.reject_where(
        bad_slug.to_numpy(zero_copy_only=False), "tag", f"a tag slug: {SLUG_PATTERN}"
    )
    refs = batch.columns["member_ref"]
    types, values = batch.columns["identity_type"], batch.columns["identity_value"]
    has_ref = pc.is_valid(refs).to_numpy(zero_copy_only=False)
    has_type = pc.is_valid(types).to_numpy(zero_copy_only=False)
    has_value = pc.is_valid(values).to_numpy(zero_copy_only=False)
    batch.reject_where(
        ~has_ref & ~(has_type & has_value),
        "member_ref",
        "name the member: member_ref, or identity_type and identity_value",
    )
    batch.reject_where(
        has_ref & (has_type | has_value), "member_ref", "member_ref or an identifier, not both"
    )
    batch.reject_where(
        has_type ^ has_value, "identity_value", "identity_type and identity_value go together"
    )
    scopes, broken = scope_column(types, batch.columns["identity_scope"], None)
    for i, exc in broken:
        batch.reject(i, "identity_scope", exc.rule)
    column = encode_identifiers(ctx.encoder, types, values, "identity_value", scopes)
    batch.reject_rules("identity_value", column.row_errors())
    batch.derived["identifiers"] = column


def _load(conn: Connection, ctx: Context, batch: Batch) -> int:
    column: IdentifierColumn = batch.derived["identifiers"]
    n = len(batch)
    none = pa.array([None] * n, pa.int64())
    staged = stage_accepted(
        conn,
        "tags",
        batch,
        {
            "_key": column.keys,
            "_scope": column.scopes,
            "_tag_id": none,
            "_member_id": none,
            "_by": pa.array([None] * n, pa.string()),
        },
        omit=("identity_value",),  # personal data in the clear stays out of the store
    )
    s, g = staged.name, {"g": ctx.group_id}
    conn.execute(
        text(f"""UPDATE {s} SET
              _tag_id = (SELECT t.tag_id FROM tags t WHERE t.group_id = :g AND t.slug = {s}.tag
                           AND t.kind = 'imported' AND t.archived_at IS NULL),
              _member_id = COALESCE(
                (SELECT m.member_id FROM members m WHERE m.group_id = :g
                   AND m.source_ref = {s}.member_ref),
                (SELECT MIN(i.member_id) FROM identities i WHERE i.group_id = :g
                   AND i.type = {s}.identity_type AND i.value_key = {s}._key
                   AND i.scope = {s}._scope))"""),
        g,
    )
    for _ in range(_MAX_HOPS):  # a merged member stands for the member it was merged into
        moved = conn.execute(
            text(f"""UPDATE {s} SET _member_id = (
                       SELECT m.merged_into FROM members m WHERE m.member_id = {s}._member_id)
                     WHERE EXISTS (SELECT 1 FROM members m WHERE m.member_id = {s}._member_id
                       AND m.status = 'merged' AND m.merged_into IS NOT NULL)"""),
            g,
        ).rowcount
        if not moved:
            break
    _reject_unresolved(conn, ctx, batch, s)
    conn.execute(text(f"DELETE FROM {s} WHERE _tag_id IS NULL OR _member_id IS NULL"))
    conn.execute(text(f"UPDATE {s} SET _by = 'import:' || COALESCE(source, 'file')"))
    applied = add_staged(conn, ctx.group_id, s, stored_now())
    ctx.count(tags_entered=applied.entered, tags_changed=applied.changed)
    unstage(conn, staged)
    return applied.entered + applied.changed


def _reject_unresolved(conn: Connection, ctx: Context, batch: Batch, s: str) -> None:
    """Rows whose tag or member was not found are rejected, naming which and why."""
    rows = conn.execute(
        text(f"""SELECT x._i, x.tag, x.member_ref, x._tag_id, x._member_id, t.kind,
                        t.archived_at
                 FROM {s} x LEFT JOIN tags t ON t.group_id = :g AND t.slug = x.tag
                 WHERE x._tag_id IS NULL OR x._member_id IS NULL"""),
        {"g": ctx.group_id},
    ).all()
    for row in rows:
        i = int(row._i)
        if row._tag_id is None:
            if row.kind is None:
                batch.reject(i, "tag", f"no tag {row.tag!r} in this brand group")
            elif row.archived_at is not None:
                batch.reject(i, "tag", f"tag {row.tag!r} is archived")
            else:
                batch.reject(
                    i, "tag", f"tag {row.tag!r} is {row.kind}: an import sets imported tags"
                )
        elif row.member_ref is not None:
            batch.reject(i, "member_ref", "no member with this member_ref")
        else:
            batch.reject(i, "identity_value", "no member holds this identifier")


KINDS: tuple[Kind, ...] = (
    Kind(
        "tags",
        (
            text_field("tag", True, 64),
            text_field("member_ref", max_len=128),
            Field("identity_type", "enum", choices=ID_TYPES),
            text_field("identity_value", max_len=256),
            # the identifier's scope: a card's brand (required), an openid's app, ...
            text_field("identity_scope", max_len=64),
            text_field("value", max_len=VALUE_MAX),
            # where the tag came from ('crm', 'survey-2024'): set_by is 'import:<source>'
            text_field("source", max_len=100),
        ),
        _check,
        _load,
    ),
)
