"""What every console request shares: who is asking (the session), in which language, the
CSRF token, rendering a template, and the headers every answer carries."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from siyu.auth.errors import AuthenticationError
from siyu.auth.keys import principal_by_id
from siyu.auth.principal import Principal
from siyu.console import access, i18n
from siyu.console.session import (
    CSRF_COOKIE,
    LANG_COOKIE,
    SESSION_COOKIE,
    LoginLimiter,
    Signer,
    csrf_ok,
    new_csrf_token,
)
from siyu.services import Services

STATIC = Path(__file__).parent / "static"
BUNDLE = STATIC / "console.js"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
MAX_FORM_BYTES = 4096


@dataclass
class Console:
    """The console's per-process state, kept on `app.state.console`."""

    signer: Signer
    limiter: LoginLimiter = field(default_factory=LoginLimiter)


class ConsoleExit(Exception):
    """Ends a console request early with a redirect or an error page."""

    def __init__(self, status: int, location: str | None = None) -> None:
        self.status, self.location = status, location


@dataclass
class Ctx:
    """One request's view: language, CSRF token, the principal once logged in."""

    request: Request
    svc: Services
    lang: str
    csrf: str
    set_lang: bool
    new_csrf: bool
    who: Principal | None = None

    @property
    def console(self) -> Console:
        state: Console = self.request.app.state.console
        return state

    def t(self, key: str, **values: Any) -> str:
        return i18n.tr(key, self.lang, **values)


def context(request: Request) -> Ctx:
    svc: Services = request.app.state.services
    asked = request.query_params.get("lang")
    cookie = request.cookies.get(LANG_COOKIE)
    lang = next(
        (x for x in (asked, cookie) if x in i18n.LANGS),
        svc.settings.lang if svc.settings.lang in i18n.LANGS else "zh",
    )
    token = request.cookies.get(CSRF_COOKIE) or ""
    fresh = len(token) < 32
    return Ctx(
        request,
        svc,
        lang,
        new_csrf_token() if fresh else token,
        set_lang=asked in i18n.LANGS,
        new_csrf=fresh,
    )


def need(ctx: Ctx, permission: str) -> None:
    """A 403 page unless the principal holds the API permission an action needs (a page
    opens for a role; an action on it may need more, as its API endpoint does)."""
    if ctx.who is None or not ctx.who.may(permission):
        raise ConsoleExit(403)


async def authenticated(request: Request, page: str) -> Ctx:
    """The context of a logged-in principal allowed to open `page`: otherwise a redirect to
    the login page (no or ended session) or a 403 page."""
    ctx = context(request)
    session = ctx.console.signer.check(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise ConsoleExit(303, "/console/login")
    try:
        ctx.who = await principal_by_id(ctx.svc.reads, session.key_id)
    except AuthenticationError:
        raise ConsoleExit(303, "/console/login?ended=1") from None
    if ctx.who.group_id != ctx.svc.settings.group_id or ctx.who.role not in access.CONSOLE_ROLES:
        raise ConsoleExit(303, "/console/login?ended=1")
    request.state.key_id = ctx.who.key_id  # the access log names the key, as the API's does
    if not access.may_open(ctx.who.role, page):
        raise ConsoleExit(403)
    return ctx


async def form(request: Request, limit: int = MAX_FORM_BYTES) -> dict[str, str]:
    """A small url-encoded form body (the console's forms are a few fields; the segment
    builder's, a few dozen, passes a larger `limit`)."""
    body = await request.body()
    if len(body) > limit:
        return {}
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


async def posted_form(request: Request, limit: int = MAX_FORM_BYTES) -> dict[str, str]:
    """A form POSTed by a console page, its CSRF token checked (403 otherwise): every
    form that changes something comes through here."""
    fields = await form(request, limit)
    if not csrf_ok(request.cookies.get(CSRF_COOKIE), fields.get("csrf")):
        raise ConsoleExit(403)
    return fields


@lru_cache(maxsize=1)
def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("siyu.console", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        fmt_int=i18n.fmt_int,
        fmt_cny=i18n.fmt_cny,
        fmt_pct=i18n.fmt_pct,
        fmt_time=i18n.fmt_time,
        fmt_date=i18n.fmt_date,
        members_url=members_url,
    )
    return env


def members_url(**criteria: Any) -> str:
    """A link to the member list (`member_lists`) with these criteria (None left out): what
    every count on an aggregate page links to."""
    query = {k: str(v) for k, v in criteria.items() if v is not None and v != ""}
    return f"/console/members?{urlencode(query)}" if query else "/console/members"


def render(ctx: Ctx, template: str, status: int = 200, **values: Any) -> Response:
    started = time.perf_counter()
    nav = access.navigation(ctx.who.role) if ctx.who is not None else []
    html = (
        _env()
        .get_template(template)
        .render(
            t=ctx.t,
            lang=ctx.lang,
            other_lang="en" if ctx.lang == "zh" else "zh",
            csrf=ctx.csrf,
            who=ctx.who,
            nav=nav,
            path=ctx.request.url.path,
            # the language link of a search result goes back to the search form (GET)
            lang_path=ctx.request.url.path.removesuffix("/search"),
            stage_label=lambda s: i18n.stage_label(s, ctx.lang),
            label=lambda kind, code: i18n.label(kind, code, ctx.lang),
            channel_label=lambda c: i18n.channel_label(c, ctx.lang),
            **values,
        )
    )
    response = HTMLResponse(html, status_code=status)
    response.headers["Server-Timing"] = f"render;dur={(time.perf_counter() - started) * 1000:.1f}"
    return finish(ctx, response)


def redirect(ctx: Ctx, location: str) -> Response:
    return finish(ctx, RedirectResponse(location, status_code=303))


def finish(ctx: Ctx, response: Response) -> Response:
    """The security headers, and the language and CSRF cookies when they are new."""
    secure(response)
    https = ctx.request.url.scheme == "https"
    if ctx.set_lang:
        response.set_cookie(
            LANG_COOKIE, ctx.lang, max_age=365 * 86400, samesite="strict", secure=https
        )
    if ctx.new_csrf:
        response.set_cookie(
            CSRF_COOKIE, ctx.csrf, httponly=True, samesite="strict", secure=https, path="/console"
        )
    return response


def secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


def set_session(ctx: Ctx, response: Response, key_id: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        ctx.console.signer.issue(key_id),
        max_age=12 * 3600,
        httponly=True,
        samesite="strict",
        secure=ctx.request.url.scheme == "https",
        path="/console",
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/console")
