"""The member list page and its CSV export: any `segments.lists.MemberCriteria` from the
URL, paged, sorted and filtered, in the principal's row scope. Every count on an aggregate
page links here (`members_url`); the guide's "My members" and a store's members are this
page with their criteria."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from siyu.analytics.snapshot import latest_snapshot
from siyu.auth.principal import Role
from siyu.console.access import may_open
from siyu.console.builder_form import from_criteria
from siyu.console.i18n import STRINGS, channel_label, stage_label, tr
from siyu.console.web import ConsoleExit, Ctx, authenticated, need, render, secure
from siyu.errors import ValidationError
from siyu.identity.types import IDENTITY_TYPES
from siyu.segments import lists
from siyu.segments.lists import ListView, MemberCriteria

router = APIRouter()

SEARCH_TYPES = ("member_id", *IDENTITY_TYPES)
# the criteria the form shows in its first row; the others under "more criteria"
MAIN_FIELDS = ("stage", "rfm", "store", "guide", "channel", "cohort")


@router.get("/members")
async def members(request: Request) -> Response:
    """Search a member by an identifier, and every member matching the criteria."""
    ctx = await authenticated(request, "members")
    return await show_list(ctx, "/console/members", ctx.t("list.title"), search=True)


@router.get("/my-members")
async def my_members(request: Request) -> Response:
    """A guide's own members (its row scope is the criterion)."""
    ctx = await authenticated(request, "my_members")
    return await show_list(ctx, "/console/my-members", ctx.t("my.title"))


@router.get("/guides/{guide_id}")
async def guide_members(guide_id: str, request: Request) -> Response:
    """A guide's members, with the guide's other HQ pages one click away: its commission
    statement (each order on it opens why the order is the guide's) and its class."""
    ctx = await authenticated(request, "guide_members")
    assert ctx.who is not None
    guide = guide_id[:64]
    quoted = quote(guide, safe="")
    related = [
        (page, href, ctx.t(label))
        for page, href, label in (
            ("commission", f"/console/commission/{quoted}", "guides.commission_link"),
            ("guide_classes", f"/console/guide-classes/{quoted}", "guides.class_link"),
        )
        if may_open(ctx.who.role, page)
    ]
    return await show_list(
        ctx,
        f"/console/guides/{guide}",
        ctx.t("guides.members", guide=guide),
        fixed={"guide": guide},
        related=related,
    )


@router.get("/stores/{store_id}")
async def store_members(store_id: str, request: Request) -> Response:
    ctx = await authenticated(request, "store_members")
    assert ctx.who is not None
    if ctx.who.role == Role.STORE and store_id not in ctx.who.stores:
        raise ConsoleExit(403)
    return await show_list(
        ctx,
        f"/console/stores/{store_id[:64]}",
        ctx.t("stores.members", store=store_id[:64]),
        fixed={"store": store_id[:64]},
    )


@router.get("/members.csv")
async def members_csv(request: Request) -> Response:
    """The list as CSV, streamed: every member matching, in the page's order, with the
    page's masks and scope (a role that sees masked phones exports masked phones)."""
    ctx = await authenticated(request, "members")
    return await export(ctx)


async def export(
    ctx: Ctx, among: Collection[int] | None = None, filename: str = "members.csv"
) -> Response:
    """The URL's criteria (and `among`, a report's members) as CSV, streamed."""
    assert ctx.who is not None
    try:
        criteria = lists.parse_criteria(ctx.request.query_params)
        view = lists.parse_view(ctx.request.query_params)
    except ValidationError as exc:
        return _refused(exc)
    need_for(ctx, criteria, export=True)
    return _csv(ctx, criteria, view, among, filename)


async def export_of(ctx: Ctx, criteria: MemberCriteria, filename: str) -> Response:
    """A segment's or a tag's members (`criteria`) as CSV, for its own page's export: in the
    page's order (by member id unless the URL sorts), masks and scope. The caller has
    checked the permission its page asks."""
    try:
        view = lists.parse_view({"sort": "member_id", **ctx.request.query_params})
    except ValidationError as exc:
        return _refused(exc)
    return _csv(ctx, criteria, view, None, filename)


def _refused(exc: ValidationError) -> Response:
    return secure(Response(f"{exc}\n", status_code=422, media_type="text/plain"))


def _csv(
    ctx: Ctx,
    criteria: MemberCriteria,
    view: ListView,
    among: Collection[int] | None,
    filename: str,
) -> Response:
    """The members as CSV, streamed from the read connection in the principal's masks."""
    assert ctx.who is not None
    who, svc = ctx.who, ctx.svc

    async def rows() -> AsyncIterator[bytes]:
        async with svc.reads.connection() as reader:
            async for chunk in lists.export_csv(reader, svc.vault, who, criteria, view, among):
                yield chunk.encode("utf-8")

    response = StreamingResponse(rows(), media_type="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return secure(response)


def need_for(ctx: Ctx, criteria: MemberCriteria, export: bool) -> None:
    """A list by segment or tag is that segment's or tag's members: the permissions their
    own pages and the API ask (segments:read, and segments:export for the CSV; tags:read)
    hold here too, or the generic list would be a way around them."""
    if criteria.segment is not None:
        need(ctx, "segments:export" if export else "segments:read")
    if criteria.tag is not None:
        need(ctx, "tags:read")


async def show_list(
    ctx: Ctx,
    path: str,
    title: str,
    fixed: Mapping[str, str] | None = None,
    search: bool = False,
    among: Collection[int] | None = None,
    keep: Mapping[str, str] | None = None,
    csv_path: str = "/console/members.csv",
    back: tuple[str, str] | None = None,
    related: list[tuple[str, str, str]] | None = None,
) -> Response:
    """Render the list at `path`: the URL's criteria (and `fixed` ones, which the page's
    path already says), sorted and paged as asked; a bad value is a 422 naming it.

    A report's figure that is not a criterion (a campaign arm's buyers, a QR scene's
    members) is its member ids, `among`; `keep` is the query that names the figure (kept
    in every link, the filter form and the CSV at `csv_path`), `back` the report's link,
    `related` the pages about the same subject (id, href, label) shown under the title."""
    assert ctx.who is not None
    keep = dict(keep or {})
    params = {**ctx.request.query_params, **(fixed or {})}
    error = None
    try:
        criteria = lists.parse_criteria(params)
        view = lists.parse_view(params)
    except ValidationError as exc:
        error = f"{ctx.t('list.bad_input')} {exc}"
        criteria, view = MemberCriteria(), ListView()
    need_for(ctx, criteria, export=False)
    async with ctx.svc.reads.connection() as reader:
        found = await lists.member_page(reader, ctx.svc.vault, ctx.who, criteria, view, among)
        stages, segments = await _options(ctx, reader)
    query = criteria.query()
    shown = {k: v for k, v in query.items() if k not in (fixed or {})}

    def link(**change: Any) -> str:
        """This list with the view changed (sort, dir, page, per)."""
        asked = {**keep, **shown, **found.view.query(), **{k: str(v) for k, v in change.items()}}
        return f"{path}?{urlencode(asked)}"

    def sort_link(key: str) -> str:
        desc = not found.view.desc if found.view.sort == key else key != "member_id"
        return link(sort=key, dir="desc" if desc else "asc", page=1)

    csv_query = {
        **keep,
        **query,
        "sort": found.view.sort,
        "dir": "desc" if found.view.desc else "asc",
    }
    return render(
        ctx,
        "member_list.html",
        status=422 if error else 200,
        title=title,
        found=found,
        criteria=criteria,
        fields=lists.CRITERIA_FIELDS,
        main_fields=MAIN_FIELDS,
        fixed=fixed or {},
        values=query,
        error=error,
        link=link,
        sort_link=sort_link,
        sorts=lists.SORTS,
        per_page=lists.PER_PAGE,
        csv_url=f"{csv_path}?{urlencode(csv_query)}",
        list_path=path,
        clear_url=f"{path}?{urlencode(keep)}" if keep else path,
        keep=keep,
        back=back,
        related=related or [],
        stages=stages,
        segments=segments,
        search=search,
        types=SEARCH_TYPES,
        search_error=None,
        masked=not ctx.who.sees_personal_data,
        # a report's members are not a rule: no segment is saved from them
        save_as_segment=None if among is not None else _save_as_segment(ctx, criteria),
        crit_value=lambda k, value: criterion_value(k, value, ctx.lang),
    )


def _save_as_segment(ctx: Ctx, criteria: MemberCriteria) -> str | None:
    """A link to the segment builder with these criteria as its rule, when the role may
    build one and every criterion has a rule (`console.builder_form.from_criteria`)."""
    assert ctx.who is not None
    if not ctx.who.may("segments:preview") or from_criteria(criteria) is None:
        return None
    return f"/console/builder?{urlencode(criteria.query())}"


def criterion_value(name: str, value: str, lang: str) -> str:
    """A criterion's value as the page names it: labels for codes that have one."""
    if name == "stage":
        return stage_label(value, lang)
    if name in ("funnel", "channel"):
        return channel_label(value, lang)
    key = {"rfm": "segment.", "step": "step."}.get(name, "") + value
    return tr(key, lang) if name in ("rfm", "step") and key in STRINGS else value


async def _options(ctx: Ctx, reader: Any) -> tuple[list[str], list[str]]:
    """The stages and RFM segments the latest snapshots name, for the form's choices
    (HQ roles only: the snapshots are group-wide)."""
    assert ctx.who is not None
    if ctx.who.role not in (Role.ADMIN, Role.ANALYST):
        life = await latest_snapshot(reader, ctx.who.group_id, "lifecycle")
        return [s["stage"] for s in life.payload.get("stages", [])] if life else [], []
    life = await latest_snapshot(reader, ctx.who.group_id, "lifecycle")
    rfm = await latest_snapshot(reader, ctx.who.group_id, "rfm")
    stages = [s["stage"] for s in life.payload.get("stages", [])] if life else []
    segments = [s["segment"] for s in rfm.payload.get("segments", [])] if rfm else []
    return stages, segments
