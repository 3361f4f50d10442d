"""Tag definitions in the console: the tags list's form defines a manual or imported tag,
a tag's page edits its labels, owner, refresh, description and source.

The permission is the API's for `POST /v1/tags`: `tags:define` (HQ admins). The service
(`segments.tags.define_tag`, `update_tag`) checks every field before it writes, inside one
transaction, so a refused form writes nothing; its refusal names the field, and the form
shows it beside that field. Automatic tags (`auto.*`) belong to the nightly refresh
(`segments.automatic`): neither defined nor edited here.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from siyu.console.tag_pages import (
    DEFINABLE_KINDS,
    DEFINITION_TEXTS,
    show_tag,
    show_tags,
    tag_or_404,
)
from siyu.console.web import ConsoleExit, Ctx, authenticated, need, posted_form, redirect
from siyu.errors import NotFoundError, ValidationError
from siyu.segments import tags as service

router = APIRouter()

FORM_BYTES = 16 * 1024  # two labels and two texts in Chinese, percent-encoded
FIELDS = ("slug", "name_zh", "name_en", "kind", "owner", "refresh", *DEFINITION_TEXTS)
TEXT_MAX = 500
# The refresh defines the automatic tags under this prefix and refuses a slug there that
# holds another kind (`automatic.refresh.ensure_tags`): a manual `auto.x` would stop it.
_CONTROL = re.compile(r"[\x00-\x1f]")


async def _posted(request: Request) -> tuple[Ctx, dict[str, str]]:
    """The context and the form's fields, once `tags:define` and the CSRF token are checked."""
    ctx = await authenticated(request, "tags")
    need(ctx, "tags:define")
    fields = await posted_form(request, FORM_BYTES)
    return ctx, {k: fields.get(k, "").strip() for k in FIELDS}


def definition(values: dict[str, str], held: Any) -> dict[str, Any]:
    """The tag's definition with the form's description and source: what else it holds is
    kept (an API client may have stored more), an emptied text is taken out."""
    out = dict(held) if isinstance(held, dict) else {}
    for name in DEFINITION_TEXTS:
        text = values.get(name, "")
        if len(text) > TEXT_MAX or _CONTROL.search(text):
            raise ValidationError(name, f"text of at most {TEXT_MAX} characters on one line")
        if text:
            out[name] = text
        else:
            out.pop(name, None)
    return out


@router.post("/tags")
async def define_tag(request: Request) -> Response:
    """Define a manual or imported tag; the list again (422) with the refusal, or the new
    tag's page."""
    ctx, values = await _posted(request)
    assert ctx.who is not None
    group, key = ctx.who.group_id, f"key:{ctx.who.key_id}"

    def work() -> service.Tag:
        if values["kind"] not in DEFINABLE_KINDS:
            raise ValidationError("kind", "manual or imported: automatic tags are the system's")
        described = definition(values, {})
        with ctx.svc.engine.begin() as conn:
            return service.define_tag(
                conn,
                group,
                values["slug"],
                name_zh=values["name_zh"],
                name_en=values["name_en"],
                kind=values["kind"],
                owner=values["owner"] or key,
                refresh=values["refresh"] or None,
                definition=described or None,
            )

    try:
        made = await run_in_threadpool(work)
    except ValidationError as exc:
        return await show_tags(ctx, 422, values, exc)
    return redirect(ctx, f"/console/tags/{made.slug}?done=defined")


@router.post("/tags/{slug}")
async def edit_tag(slug: str, request: Request) -> Response:
    """Change a manual or imported tag's labels, owner, refresh, description or source (its
    slug and kind stay: the service's rule)."""
    ctx, values = await _posted(request)
    assert ctx.who is not None
    tag = await tag_or_404(ctx, slug)
    if tag.kind not in DEFINABLE_KINDS:
        refused = ValidationError("kind", "an automatic tag is the system's: not edited here")
        return await show_tag(ctx, tag.slug, 422, None, refused)
    group = ctx.who.group_id

    def work() -> service.Tag:
        fields = {k: values[k] for k in ("name_zh", "name_en", "owner", "refresh")}
        described = definition(values, tag.definition)
        with ctx.svc.engine.begin() as conn:
            return service.update_tag(conn, group, tag.slug, definition=described, **fields)

    try:
        await run_in_threadpool(work)
    except ValidationError as exc:
        return await show_tag(ctx, tag.slug, 422, values, exc)
    except NotFoundError:
        raise ConsoleExit(404) from None
    return redirect(ctx, f"/console/tags/{tag.slug}?done=updated")
