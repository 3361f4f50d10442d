"""Tags in the console: the definitions (kind, owner, refresh, holders), one tag's holders
paged and exported with its history of enters and leaves, and the Member 360 forms that
give or take a manual tag.

Permissions are the API's: `tags:read` to open, `tags:write` to tag a member, a guide only
its own members (`auth.scope.member_in_scope`, as `PUT /v1/members/{id}/tags/{slug}`).
Holders are listed through the member lists (`segments.lists`, criterion `tag`), so the
masks, paging and a guide's row scope are the member list's.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from siyu.auth.principal import Principal, Role
from siyu.auth.scope import member_in_scope
from siyu.console import member_lists
from siyu.console.i18n import STRINGS
from siyu.console.segment_pages import page_number, read
from siyu.console.tag_values import Names, tag_rule, tag_value, value_names
from siyu.console.web import (
    ConsoleExit,
    Ctx,
    authenticated,
    need,
    posted_form,
    redirect,
    render,
)
from siyu.errors import ForbiddenError, NotFoundError, ValidationError
from siyu.segments import lists
from siyu.segments import tags as service
from siyu.segments.lists import ListView, MemberCriteria
from siyu.segments.models import REFRESHES
from siyu.store.reads import Sql

router = APIRouter()

PER_PAGE = 50
# the kinds a person defines and edits here; automatic tags are the nightly refresh's
DEFINABLE_KINDS = ("manual", "imported")
# the definition's texts the form edits (an imported tag's source, any tag's description)
DEFINITION_TEXTS = ("description", "source")
HISTORY_SHOWN = 50
HOLDINGS = Sql(
    "SELECT mt.member_id, mt.value, mt.set_by, mt.set_at FROM member_tags mt "
    "JOIN tags t ON t.tag_id = mt.tag_id WHERE mt.group_id = :g AND t.group_id = :g "
    "AND t.slug = :s AND mt.member_id IN :ids"
)


def tag_name(tag: service.Tag, lang: str) -> str:
    return tag.name_zh if lang == "zh" else tag.name_en


def set_by(by: str, t: Any) -> str:
    """Who set a tag, as people read it: a key, the system, an import, a merge."""
    kind, _, rest = by.partition(":")
    if kind == "key" and rest:
        return str(t("tag.by_key", id=rest))
    if kind == "import" and rest:
        return str(t("tag.by_import", batch=rest))
    if kind == "merge" and rest:
        return str(t("tag.by_merge", id=rest))
    if by == "system":
        return str(t("tag.by_system"))
    return by


def guide_of(who: Principal) -> str | None:
    return who.guide_id if who.role == Role.GUIDE else None


async def tag_or_404(ctx: Ctx, slug: str) -> service.Tag:
    assert ctx.who is not None
    try:
        found: service.Tag = await read(ctx, service.get_tag, ctx.who.group_id, slug)
    except (NotFoundError, ValidationError):
        raise ConsoleExit(404) from None
    return found


@router.get("/tags")
async def tag_list(request: Request) -> Response:
    ctx = await authenticated(request, "tags")
    return await show_tags(ctx)


async def show_tags(
    ctx: Ctx,
    status: int = 200,
    values: dict[str, str] | None = None,
    refused: ValidationError | None = None,
) -> Response:
    """The tag list, and for `tags:define` the form that defines one (`values` and the
    service's refusal when a definition was refused)."""
    assert ctx.who is not None
    found: list[service.Tag] = await read(ctx, service.list_tags, ctx.who.group_id, False)
    pages = max(1, -(-len(found) // PER_PAGE))
    page_no = min(page_number(ctx.request.query_params.get("page")), pages)
    return render(
        ctx,
        "tags.html",
        status=status,
        tags=found[(page_no - 1) * PER_PAGE : page_no * PER_PAGE],
        total=len(found),
        page_no=page_no,
        pages=pages,
        link=lambda n: f"/console/tags?page={n}",
        name_of=lambda tag: tag_name(tag, ctx.lang),
        by=lambda owner: set_by(owner, ctx.t),
        may_define=ctx.who.may("tags:define"),
        form=values or {"kind": "manual", "owner": f"key:{ctx.who.key_id}"},
        **refusal(ctx, refused),
        kinds=DEFINABLE_KINDS,
        refreshes=REFRESHES,
    )


def refusal(ctx: Ctx, refused: ValidationError | None) -> dict[str, Any]:
    """A refused definition as the form shows it: the message above the form (the field's
    label, then the service's words) and, by field, beside the field it names."""
    if refused is None:
        return {"form_error": None, "form_errors": {}}
    field = refused.field
    named = ctx.t(f"tf.{field}") if f"tf.{field}" in STRINGS else field
    return {
        "form_error": f"{ctx.t('tf.refused')} {named}: {refused}",
        "form_errors": {field: str(refused)},
    }


@router.get("/tags/{slug}")
async def tag_page(slug: str, request: Request) -> Response:
    ctx = await authenticated(request, "tags")
    return await show_tag(ctx, slug)


async def show_tag(
    ctx: Ctx,
    slug: str,
    status: int = 200,
    values: dict[str, str] | None = None,
    refused: ValidationError | None = None,
) -> Response:
    """A tag's page: its definition (and, for `tags:define`, the form that edits a manual
    or imported one), its holders paged, its history."""
    assert ctx.who is not None
    tag = await tag_or_404(ctx, slug)
    who = ctx.who
    request = ctx.request
    error = None
    try:
        view = lists.parse_view({"sort": "member_id", **request.query_params})
    except ValidationError as exc:
        view, error = ListView("member_id", False), f"{ctx.t('list.bad_input')} {exc}"

    def history() -> list[service.Change]:
        with ctx.svc.engine.connect() as conn:
            return service.history(
                conn, who.group_id, slug=tag.slug, limit=HISTORY_SHOWN, guide_id=guide_of(who)
            )

    changes = await run_in_threadpool(history)
    async with ctx.svc.reads.connection() as reader:
        found = await lists.member_page(
            reader, ctx.svc.vault, who, MemberCriteria(tag=tag.slug), view
        )
        ids = [r.member_id for r in found.rows]
        held = (
            {
                int(h.member_id): h
                for h in await reader.all(HOLDINGS, {"g": who.group_id, "s": tag.slug, "ids": ids})
            }
            if ids
            else {}
        )
    shown = [*(h.value for h in held.values()), *(c.value for c in changes)]

    def names() -> Names:
        with ctx.svc.engine.connect() as conn:
            return value_names(conn, who.group_id, ((tag.slug, v) for v in shown))

    named = await run_in_threadpool(names)
    base = f"/console/tags/{tag.slug}"

    def link(**change: Any) -> str:
        return f"{base}?{urlencode({**found.view.query(), **change})}"

    def sort_link(key: str) -> str:
        desc = not found.view.desc if found.view.sort == key else key != "member_id"
        return link(sort=key, dir="desc" if desc else "asc", page=1)

    csv_query = {"sort": found.view.sort, "dir": "desc" if found.view.desc else "asc"}
    return render(
        ctx,
        "tag.html",
        status=422 if error else status,
        error=error,
        tag=tag,
        name=tag_name(tag, ctx.lang),
        found=found,
        held=held,
        changes=changes,
        link=link,
        sort_link=sort_link,
        csv_url=f"{base}/members.csv?{urlencode(csv_query)}",
        by=lambda value: set_by(value, ctx.t),
        value=lambda value: tag_value(tag.slug, value, ctx.lang, named),
        rule=tag_rule(tag.definition, ctx.lang),
        masked=not who.sees_personal_data,
        may_edit=who.may("tags:define") and tag.kind in DEFINABLE_KINDS,
        form=values or edit_values(tag),
        **refusal(ctx, refused),
        refreshes=REFRESHES,
        notice=_notice(ctx, tag.slug),
    )


def edit_values(tag: service.Tag) -> dict[str, str]:
    """The edit form's fields as the tag holds them now."""
    described = tag.definition if isinstance(tag.definition, dict) else {}
    return {
        "name_zh": tag.name_zh,
        "name_en": tag.name_en,
        "owner": tag.owner,
        "refresh": tag.refresh,
        **{k: str(described.get(k) or "") for k in DEFINITION_TEXTS},
    }


def _notice(ctx: Ctx, slug: str) -> str | None:
    done = ctx.request.query_params.get("done")
    return ctx.t(f"tf.{done}", slug=slug) if done in ("defined", "updated") else None


@router.get("/tags/{slug}/members.csv")
async def tag_csv(slug: str, request: Request) -> Response:
    """The holders as CSV, in the page's order, masks and scope."""
    ctx = await authenticated(request, "tags")
    assert ctx.who is not None
    tag = await tag_or_404(ctx, slug)
    return await member_lists.export_of(ctx, MemberCriteria(tag=tag.slug), f"tag-{tag.slug}.csv")


# --- Member 360: give or take a manual tag -----------------------------------------------------


async def _member_action(request: Request, member_id: int) -> tuple[Ctx, int, dict[str, str]]:
    """The context, the member (current, in the principal's scope) and the form, once the
    page, `tags:write` and the CSRF token are checked."""
    ctx = await authenticated(request, "members")
    need(ctx, "tags:write")
    assert ctx.who is not None
    fields = await posted_form(request)
    if not 1 <= member_id < 2**62:
        raise ConsoleExit(404)
    async with ctx.svc.reads.connection() as reader:
        try:
            current = await member_in_scope(reader, ctx.who, member_id)
        except NotFoundError:
            raise ConsoleExit(404) from None
        except ForbiddenError:
            raise ConsoleExit(403) from None
    return ctx, current, fields


def _back(member_id: int, **query: str) -> str:
    return f"/console/members/{member_id}?{urlencode(query)}#tags"


@router.post("/members/{member_id}/tags")
async def give_tag(member_id: int, request: Request) -> Response:
    ctx, current, fields = await _member_action(request, member_id)
    assert ctx.who is not None
    slug, value = fields.get("slug", "").strip(), fields.get("value", "").strip() or None
    group, by = ctx.who.group_id, f"key:{ctx.who.key_id}"

    def work() -> str:
        with ctx.svc.engine.begin() as conn:
            return service.set_member_tag(conn, group, slug, current, by, value)

    try:
        change = await run_in_threadpool(work)
    except (ValidationError, NotFoundError) as exc:
        return redirect(ctx, _back(current, tag_error=str(exc)[:300]))
    return redirect(ctx, _back(current, tagged=slug, change=change))


@router.post("/members/{member_id}/tags/{slug}/remove")
async def take_tag(member_id: int, slug: str, request: Request) -> Response:
    ctx, current, _ = await _member_action(request, member_id)
    assert ctx.who is not None
    group, by = ctx.who.group_id, f"key:{ctx.who.key_id}"

    def work() -> bool:
        with ctx.svc.engine.begin() as conn:
            return service.unset_member_tag(conn, group, slug, current, by)

    try:
        gone = await run_in_threadpool(work)
    except (ValidationError, NotFoundError) as exc:
        return redirect(ctx, _back(current, tag_error=str(exc)[:300]))
    return redirect(ctx, _back(current, untagged=slug, change="leave" if gone else "none"))
