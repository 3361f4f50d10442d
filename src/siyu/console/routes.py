"""The console's routes: login and logout, the static bundle, and one route per page.

Pages are thin: aggregate pages read the latest snapshot (`analytics.snapshot`), member
pages read the store live through the async read port, scoped by `auth.scope` as the API is.
"""

from __future__ import annotations

import hashlib
import html
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from siyu.auth.errors import AuthenticationError
from siyu.auth.keys import authenticate_async
from siyu.auth.principal import Role
from siyu.auth.scope import member_in_scope
from siyu.console import (
    access,
    analytics_pages,
    attribution_pages,
    builder,
    campaign_pages,
    commission_pages,
    experiment_pages,
    guide_class_pages,
    guide_own_pages,
    guide_programme_pages,
    guide_task_pages,
    holdout_pages,
    lottery_pages,
    member_lists,
    message_pages,
    people_pages,
    receipt_pages,
    review_pages,
    scene_pages,
    segment_pages,
    tag_forms,
    tag_pages,
)
from siyu.console.member360 import (
    behaviour_label,
    decimal,
    find_member,
    load_affinity,
    load_groups,
    load_member,
)
from siyu.console.segment_pages import page_number
from siyu.console.session import CSRF_COOKIE, Signer, csrf_ok
from siyu.console.web import (
    BUNDLE,
    STATIC,
    Console,
    ConsoleExit,
    authenticated,
    clear_session,
    context,
    form,
    posted_form,
    redirect,
    render,
    secure,
    set_session,
)
from siyu.errors import ForbiddenError, NotFoundError, ValidationError
from siyu.identity.types import IDENTITY_TYPES

router = APIRouter(prefix="/console", include_in_schema=False)
router.include_router(analytics_pages.router)
router.include_router(people_pages.router)
router.include_router(guide_task_pages.router)
router.include_router(member_lists.router)
router.include_router(review_pages.router)
router.include_router(segment_pages.router)
router.include_router(builder.router)
router.include_router(tag_pages.router)
router.include_router(tag_forms.router)
router.include_router(campaign_pages.router)
router.include_router(holdout_pages.router)  # the global holdout's long-run report
router.include_router(experiment_pages.router)
router.include_router(scene_pages.router)
router.include_router(lottery_pages.router)
router.include_router(receipt_pages.router)
router.include_router(message_pages.router)
# HQ's guide pages (issue #19): commission statements, classes, attributions
router.include_router(commission_pages.router)
router.include_router(guide_class_pages.router)
router.include_router(attribution_pages.router)
router.include_router(guide_own_pages.router)  # a guide's own pages, a store's guides
router.include_router(guide_programme_pages.router)  # HQ's programme report for guides

SEARCH_TYPES = ("member_id", *IDENTITY_TYPES)


def mount(app: FastAPI, secret_key: bytes, bundle: Path = BUNDLE) -> None:
    """Add the console to the service: its routes, state and error pages; or, without its
    chart bundle (a plain install has no Node to build it), a page saying so at every
    console path while the API is served as ever."""
    app.state.console_bundle = bundle
    missing = bundle_missing(bundle)
    if missing is not None:
        app.include_router(_off_router(missing))
        return
    app.state.console = Console(Signer(secret_key))
    app.include_router(router)
    app.add_exception_handler(ConsoleExit, _exit)  # type: ignore[arg-type]


def bundle_path(configured: str = "") -> Path:
    """Where the chart bundle is: SIYU_CONSOLE_BUNDLE, else inside the package."""
    return Path(configured) if configured else BUNDLE


def bundle_missing(bundle: Path = BUNDLE) -> str | None:
    """Why the console cannot be served, or None: the chart bundle is built from web/."""
    if bundle.is_file():
        return None
    return (
        f"the console's chart bundle {bundle} is missing; build it with `make console-assets` "
        "(Node.js and npm: npm ci && npm run build in web/), then restart siyu serve"
    )


_OFF_PAGE = """<!doctype html>
<html lang="zh-CN">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>运营台未启用 · The console is off · siyu</title>
<link rel="icon" href="data:,"></head>
<body>
<h1>运营台未启用 · The console is off</h1>
<p>{why}.</p>
<p>构建方法：在 siyu 的源码目录运行 <code>make console-assets</code>（需要 Node.js 和 npm），
然后重启 <code>siyu serve</code>。</p>
<p>To turn it on, run <code>make console-assets</code> in siyu's source tree (it needs Node.js
and npm), then restart <code>siyu serve</code>.</p>
<p>API 照常服务 · The API is served:
<a href="/docs">/docs</a>, <a href="/openapi.json">/openapi.json</a>.</p>
</body>
</html>
"""


def _off_router(why: str) -> APIRouter:
    """Every console path answers 503 with the reason and the remedy."""
    off = APIRouter(include_in_schema=False)
    page = _OFF_PAGE.format(why=html.escape(why))

    @off.api_route("/console", methods=["GET", "HEAD", "POST"])
    @off.api_route("/console/{rest:path}", methods=["GET", "HEAD", "POST"])
    async def console_off(request: Request) -> Response:
        return secure(HTMLResponse(page, status_code=503))

    return off


async def _exit(request: Request, exc: ConsoleExit) -> Response:
    ctx = context(request)
    if exc.location is not None:
        return redirect(ctx, exc.location)
    key = "error.403" if exc.status == 403 else "error.404" if exc.status == 404 else "error.400"
    return render(ctx, "error.html", status=exc.status, title=ctx.t(key), text=ctx.t(f"{key}.text"))


@router.get("")
@router.get("/")
async def root(request: Request) -> Response:
    ctx = await authenticated(request, "members")
    assert ctx.who is not None
    return redirect(ctx, access.home(ctx.who.role))


@router.get("/login")
async def login_page(request: Request) -> Response:
    ctx = context(request)
    ended = request.query_params.get("ended") == "1"
    return render(ctx, "login.html", error=ctx.t("login.expired") if ended else None)


@router.post("/login")
async def login(request: Request) -> Response:
    ctx = context(request)
    fields = await form(request)
    if not csrf_ok(request.cookies.get(CSRF_COOKIE), fields.get("csrf")):
        return render(ctx, "login.html", status=403, error=ctx.t("login.csrf"))
    client = request.client.host if request.client else "?"
    limiter = ctx.console.limiter
    wait = limiter.blocked(client)
    if wait > 0:
        message = ctx.t("login.too_many", minutes=int(wait // 60) + 1)
        response = render(ctx, "login.html", status=429, error=message)
        response.headers["Retry-After"] = str(int(wait) + 1)
        return response
    try:
        who = await authenticate_async(ctx.svc.reads, ctx.svc.vault, fields.get("key", "").strip())
    except AuthenticationError:
        limiter.failed(client)
        return render(ctx, "login.html", status=401, error=ctx.t("login.bad_key"))
    if who.group_id != ctx.svc.settings.group_id:
        limiter.failed(client)
        return render(ctx, "login.html", status=401, error=ctx.t("login.bad_key"))
    if who.role not in access.CONSOLE_ROLES:
        message = ctx.t("login.role_refused", role=ctx.t(f"role.{who.role.value}"))
        return render(ctx, "login.html", status=403, error=message)
    limiter.succeeded(client)
    response = redirect(ctx, access.home(who.role))
    set_session(ctx, response, who.key_id)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    ctx = context(request)
    await posted_form(request)
    response = redirect(ctx, "/console/login")
    clear_session(response)
    return response


_ASSETS: dict[str, tuple[bytes, str, str]] = {}
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",  # the tab's icon: declared by every page, so no /favicon.ico 404
}


@router.get("/static/{name}")
async def static(name: str, request: Request) -> Response:
    """The bundle, the style sheet and the icon, from the package (no CDN at run time)."""
    if name not in _ASSETS:
        bundle: Path = request.app.state.console_bundle
        path = bundle if name == BUNDLE.name else STATIC / name
        if Path(name).name != name or path.suffix not in _TYPES or not path.is_file():
            return secure(Response(status_code=404))
        body = path.read_bytes()
        _ASSETS[name] = (body, _TYPES[path.suffix], hashlib.sha256(body).hexdigest()[:16])
    body, media, etag = _ASSETS[name]
    if request.headers.get("if-none-match") == etag:
        response = Response(status_code=304)
    else:
        response = Response(body, media_type=media)
    secure(response)
    # not personal and the same for everyone: revalidated by ETag instead of refetched
    response.headers["Cache-Control"] = "no-cache"
    response.headers["ETag"] = etag
    return response


# --- Member 360 -------------------------------------------------------------------------


@router.post("/members/search")
async def members_find(request: Request) -> Response:
    """A search is a POST: the identifier (a phone) stays out of URLs and so out of
    every log (siyu's, a proxy's, the browser's history)."""
    ctx = await authenticated(request, "members")
    assert ctx.who is not None
    fields = await posted_form(request)
    kind, value = fields.get("type", ""), fields.get("value", "").strip()
    error = None
    member_id: int | None = None
    if kind == "member_id":
        member_id = int(value) if value.isdigit() and len(value) < 19 else None
        if member_id is None:
            error = f"{ctx.t('members.member_id')}: 1, 2, 3 …"
    else:
        try:
            ident = ctx.svc.encoder().encode(kind, value)
        except ValidationError as exc:
            error = str(exc)  # names the field and the rule, never the value
        else:
            async with ctx.svc.reads.connection() as reader:
                found = await find_member(reader, ctx.who.group_id, ident.type, ident.key)
            if len(found) == 1:
                member_id = found[0]
            else:
                error = ctx.t("members.search.several" if found else "members.search.none")
    if member_id is None:
        return render(
            ctx,
            "members_search.html",
            status=404 if not error else 422,
            types=SEARCH_TYPES,
            search_error=error,
        )
    return redirect(ctx, f"/console/members/{member_id}")


@router.get("/members/{member_id}")
async def member_page(member_id: int, request: Request) -> Response:
    ctx = await authenticated(request, "members")
    assert ctx.who is not None
    if not 1 <= member_id < 2**62:
        raise ConsoleExit(404)
    async with ctx.svc.reads.connection() as reader:
        try:
            current = await member_in_scope(reader, ctx.who, member_id)
        except NotFoundError:
            raise ConsoleExit(404) from None
        except ForbiddenError:
            raise ConsoleExit(403) from None
        member = await load_member(reader, ctx.svc.vault, ctx.who, current, ctx.lang)
    params = request.query_params
    asked_pages = (page_number(params.get("tags_page")), page_number(params.get("segments_page")))
    groups = await run_in_threadpool(
        load_groups, ctx.svc.engine, ctx.who, current, ctx.lang, *asked_pages
    )
    affinity = await run_in_threadpool(load_affinity, ctx.svc.engine, ctx.who, current)
    shown = {
        "tags_page": groups.tags.page if groups.tags else 1,
        "segments_page": groups.segments.page if groups.segments else 1,
    }

    def paging(key: str, anchor: str) -> Callable[..., str]:
        """A page of one of the member's lists, the other list staying on its page."""
        return lambda page: f"/console/members/{current}?{urlencode({**shown, key: page})}#{anchor}"

    done = None
    if params.get("change") in ("enter", "value", "leave", "none"):
        slug = params.get("tagged") or params.get("untagged") or ""
        done = ctx.t(f"m360.tag.{params['change']}", slug=slug[:64])
    return render(
        ctx,
        "member.html",
        asked=member_id,
        m=member,
        groups=groups,
        tag_done=done,
        tag_error=params.get("tag_error", "")[:300] or None,
        may_tag=ctx.who.may("tags:write"),
        affinity=affinity,
        decimal=decimal,
        behaviour=lambda code: behaviour_label(code, ctx.lang),
        tags_link=paging("tags_page", "tags"),
        segments_link=paging("segments_page", "segments"),
        set_by=lambda by: tag_pages.set_by(by, ctx.t),
        masked=not ctx.who.sees_personal_data,
        is_admin=ctx.who.role == Role.ADMIN,
    )
