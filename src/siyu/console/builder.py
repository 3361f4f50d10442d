"""The segment builder: compose a rule from a form (no JSON to write), preview its size
and a masked sample on the warehouse (`segments.evaluate.preview_rule`, writes nothing),
and save it as a new segment (`stored.define_segment`) or a segment's next version
(`stored.update_segment`).

Opening it needs `segments:preview` (HQ admins and analysts), saving `segments:write`
(admins), as the API's preview and define do. A refusal is shown next to the row or the
field it names; the rule's JSON is shown beside the form and may be edited instead.
"""

from __future__ import annotations

import json
from contextlib import suppress
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from siyu.analytics.snapshot import latest_snapshot
from siyu.auth.principal import Principal
from siyu.catalog.queries import BRANDS, STORES
from siyu.channels import registry as channels
from siyu.console import builder_form as bf
from siyu.console import rule_text
from siyu.console.i18n import STRINGS, fmt_time
from siyu.console.segment_pages import name_of, read, segment_or_404, warehouse
from siyu.console.web import (
    ConsoleExit,
    Ctx,
    authenticated,
    need,
    posted_form,
    redirect,
    render,
)
from siyu.errors import ConflictError, NotFoundError, ValidationError
from siyu.identity.profile import shown_identity
from siyu.orders.models import EVENT_TYPES
from siyu.privacy import Vault
from siyu.segments import evaluate as runs
from siyu.segments import lists
from siyu.segments import stored as service
from siyu.segments import tags as tag_service
from siyu.segments.models import SEGMENT_REFRESHES
from siyu.store.reads import Reader, Sql

router = APIRouter()

FORM_BYTES = 64 * 1024  # a dozen rows of a dozen fields, and the rule's JSON
SAMPLE = 20
SAMPLE_ROWS = Sql(
    "SELECT m.member_id, m.name_masked, m.home_store_id, s.stage FROM members m "
    "LEFT JOIN member_stages s ON s.group_id = m.group_id AND s.member_id = m.member_id "
    "WHERE m.group_id = :g AND m.member_id IN :ids ORDER BY m.member_id"
)
NEW_FIELDS = ("slug", "name_zh", "name_en", "refresh")


@router.get("/builder")
async def builder_page(request: Request) -> Response:
    """A new rule; `?slug=` a segment's rule for its next version; a member list's
    criteria (`?stage=...`) as the first rows ("save as segment")."""
    ctx = await authenticated(request, "builder")
    params = request.query_params
    editing = params.get("slug") or None
    values: dict[str, str] = {"refresh": "nightly"}
    note = None
    built = bf.BuilderForm()
    document: dict[str, Any] | None = None
    if editing is not None:
        segment = await segment_or_404(ctx, editing)
        document = segment.rule
        values.update(name_zh=segment.name_zh, name_en=segment.name_en, refresh=segment.refresh)
        try:
            built = bf.from_rule(segment.rule)
        except bf.NotAForm:
            note = ctx.t("b.json_only")
    else:
        try:
            criteria = lists.parse_criteria(params)
        except ValidationError as exc:
            return await show(ctx, built, None, values, 422, error=str(exc))
        if not criteria.is_empty():
            from_list = bf.from_criteria(criteria)
            if from_list is None:
                note = ctx.t("b.criteria_unmapped")
            else:
                built, document = from_list, bf.to_rule(from_list)
                if criteria.until is not None:
                    note = ctx.t("b.until_dropped", until=fmt_time(criteria.until))
    return await show(ctx, built, editing, values, document=document, note=note)


@router.post("/builder")
async def builder_post(request: Request) -> Response:
    ctx = await authenticated(request, "builder")
    assert ctx.who is not None
    fields = await posted_form(request, FORM_BYTES)
    action = fields.get("action", "preview")
    editing = fields.get("editing") or None
    values = {k: fields.get(k, "").strip() for k in NEW_FIELDS}
    use_json = fields.get("use_json") in ("1", "on")
    try:
        built = bf.read_form(fields)
    except ValidationError as exc:
        return await show(ctx, bf.BuilderForm(), editing, values, 422, error=str(exc))
    if action == "add":
        return await show(ctx, built, editing, values, extra=1, use_json=use_json)
    try:
        if use_json:
            document = _json(fields.get("rule_json", ""))
            # the JSON refills the rows when rows can say it; else the JSON stands alone
            with suppress(bf.NotAForm, ValidationError):
                built = bf.from_rule(document)
        else:
            document = bf.to_rule(built)
    except ValidationError as exc:
        return await refused(ctx, built, editing, values, exc, None, use_json, fields)
    if action == "save":
        need(ctx, "segments:write")
        return await save(ctx, built, editing, values, document, use_json)
    group, svc = ctx.who.group_id, ctx.svc

    def work() -> runs.RulePreview:
        with warehouse(svc, group) as (backend, wh):
            return runs.preview_rule(svc.engine, backend, wh, document, None, SAMPLE)

    try:
        found = await run_in_threadpool(work)
    except ValidationError as exc:
        return await refused(ctx, built, editing, values, exc, document, use_json, fields)
    async with svc.reads.connection() as reader:
        sample = await sample_rows(reader, svc.vault, ctx.who, found.sample)
    return await show(
        ctx,
        built,
        editing,
        values,
        document=document,
        preview=found,
        sample=sample,
        use_json=use_json,
    )


async def save(
    ctx: Ctx,
    built: bf.BuilderForm,
    editing: str | None,
    values: dict[str, str],
    document: dict[str, Any],
    use_json: bool,
) -> Response:
    assert ctx.who is not None
    group, by = ctx.who.group_id, f"key:{ctx.who.key_id}"
    labels = {k: values[k] for k in ("name_zh", "name_en", "refresh") if values.get(k)}

    def work() -> service.StoredSegment:
        with ctx.svc.engine.begin() as conn:
            if editing is not None:
                return service.update_segment(conn, group, editing, by=by, rule=document, **labels)
            return service.define_segment(
                conn,
                group,
                values["slug"],
                name_zh=values["name_zh"],
                name_en=values["name_en"],
                rule=document,
                owner=by,
                refresh=values["refresh"] or "nightly",
            )

    try:
        made = await run_in_threadpool(work)
    except ValidationError as exc:
        return await refused(ctx, built, editing, values, exc, document, use_json, None)
    except ConflictError as exc:
        error = ValidationError("slug", str(exc).removeprefix("slug: "))
        return await refused(ctx, built, editing, values, error, document, use_json, None)
    except NotFoundError:
        raise ConsoleExit(404) from None
    return redirect(ctx, f"/console/segments/{made.slug}?saved={made.version}")


def _json(text: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError("rule_json", f"is not JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(document, dict):
        raise ValidationError("rule_json", "must be an object with version and rule")
    return document


async def refused(
    ctx: Ctx,
    built: bf.BuilderForm,
    editing: str | None,
    values: dict[str, str],
    exc: ValidationError,
    document: dict[str, Any] | None,
    use_json: bool,
    fields: dict[str, str] | None,
) -> Response:
    """The form again, 422, the refusal beside the row or field it names."""
    row = _row_named(exc.field)
    errors = {f"row{row}": str(exc)} if row is not None else {exc.field: str(exc)}
    raw_json = fields.get("rule_json") if fields and use_json else None
    return await show(
        ctx,
        built,
        editing,
        values,
        422,
        error=_message(ctx, exc, row),
        errors=errors,
        document=document,
        use_json=use_json,
        raw_json=raw_json,
    )


def _row_named(name: str) -> int | None:
    if name.startswith("c") and "." in name and name[1 : name.index(".")].isdigit():
        return int(name[1 : name.index(".")])
    return bf.row_of(name)


def _message(ctx: Ctx, exc: ValidationError, row: int | None) -> str:
    """The refusal as the page says it: the row (1-based) or the field's label, then the
    rule broken (the services' words)."""
    if row is not None:
        where = ctx.t("b.condition_n", n=row + 1)
        key = exc.field.split(".", 1)[1] if exc.field.startswith("c") else ""
        if key in bf.FIELDS:
            where = f"{where} · {ctx.t('b.f.' + key)}"
        return f"{where}: {exc}"
    label_key = f"b.{exc.field}"
    return f"{ctx.t(label_key)}: {exc}" if label_key in STRINGS else str(exc)


async def sample_rows(
    reader: Reader, vault: Vault, who: Principal, ids: list[int]
) -> list[dict[str, Any]]:
    """The preview's first members: names masked, phones as the role may see them."""
    if not ids:
        return []
    rows = await reader.all(SAMPLE_ROWS, {"g": who.group_id, "ids": ids})
    phones: dict[int, tuple[str, bool]] = {}
    for p in await reader.all(lists.PHONES, {"g": who.group_id, "ids": ids}):
        if int(p.member_id) not in phones:
            phones[int(p.member_id)] = shown_identity(
                vault, who.sees_personal_data, p.type, p.value, p.value_enc, p.value_masked
            )
    return [
        {
            "member_id": int(r.member_id),
            "name": r.name_masked,
            "phone": phones.get(int(r.member_id), (None, True))[0],
            "phone_masked": phones.get(int(r.member_id), (None, True))[1],
            "stage": r.stage,
            "home_store_id": r.home_store_id,
        }
        for r in rows
    ]


async def show(
    ctx: Ctx,
    built: bf.BuilderForm,
    editing: str | None,
    values: dict[str, str],
    status: int = 200,
    *,
    error: str | None = None,
    errors: dict[str, str] | None = None,
    document: dict[str, Any] | None = None,
    preview: runs.RulePreview | None = None,
    sample: list[dict[str, Any]] | None = None,
    note: str | None = None,
    extra: int = 0,
    use_json: bool = False,
    raw_json: str | None = None,
) -> Response:
    assert ctx.who is not None
    group = ctx.who.group_id
    segments = await read(ctx, service.list_segments, group, False)
    tags = await read(ctx, tag_service.list_tags, group, False)
    async with ctx.svc.reads.connection() as reader:
        life = await latest_snapshot(reader, group, "lifecycle")
        rfm = await latest_snapshot(reader, group, "rfm")
        brands = [(r.brand_id, r.name) for r in await reader.all(BRANDS, {"g": group})]
        stores = [(r.store_id, r.name) for r in await reader.all(STORES, {"g": group})]
    described = None
    if document is not None:
        try:
            described = rule_text.describe(document, ctx.lang)
        except ValidationError:
            described = None
    editing_name = None
    if editing is not None:
        editing_name = next((name_of(s, ctx.lang) for s in segments if s.slug == editing), editing)
    return render(
        ctx,
        "builder.html",
        status=status,
        combine=built.combine,
        rows=built.padded(extra),
        editing=editing,
        editing_name=editing_name,
        values=values,
        error=error,
        errors=errors or {},
        rule_json=raw_json
        if raw_json is not None
        else json.dumps(document, ensure_ascii=False, indent=2)
        if document
        else "",
        described=described,
        preview=preview,
        sample=sample or [],
        note=note,
        use_json=use_json,
        kinds=bf.KINDS,
        attributes=bf.ATTRIBUTES,
        attr_label=lambda name: rule_text.attribute_label(name, ctx.lang),
        event_types=EVENT_TYPES,
        channel_codes=[c.code for c in channels.all()],
        brands=brands,
        stores=stores,
        segments=[(s.slug, name_of(s, ctx.lang)) for s in segments if s.slug != editing],
        tags=[(t.slug, t.name_zh if ctx.lang == "zh" else t.name_en) for t in tags],
        stages=[s["stage"] for s in life.payload.get("stages", [])] if life else [],
        rfm_segments=[s["segment"] for s in rfm.payload.get("segments", [])] if rfm else [],
        refreshes=SEGMENT_REFRESHES,
        may_save=ctx.who.may("segments:write"),
        masked=not ctx.who.sees_personal_data,
    )
