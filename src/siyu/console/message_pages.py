"""Messages in the console (issue #18): the sends, a compose form that saves a draft and
plans it held for review, the preview (who will be reached, who is deferred by quiet
hours and until when, who is skipped and why) with Send and Cancel, and a send's results
(sent, delivered, clicked, buyers, revenue). Every count opens its members
(`member_lists.show_list` among them: paged, sorted, masked, CSV).

The page opens for the roles `GET /v1/sends` serves (`messages:read`); composing,
sending and cancelling need `messages:write` (HQ admins), checked again on each POST, so
an analyst reads without the form or the buttons. The domain refuses what is wrong (a
field and its rule) and the form shows it with what was typed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from siyu.console import member_lists
from siyu.console.campaign_pages import paged
from siyu.console.segment_pages import coded_or_404, read
from siyu.console.web import (
    ConsoleExit,
    Ctx,
    authenticated,
    need,
    posted_form,
    redirect,
    render,
)
from siyu.errors import NotFoundError, ValidationError, parse_document
from siyu.experiments.send_effect import send_effect
from siyu.messaging import lifecycle, recipients
from siyu.messaging import plan as plans
from siyu.messaging import policy as policies
from siyu.messaging.attribution import SendResult, send_result
from siyu.messaging.errors import SendExists, SendState
from siyu.messaging.sends import STAGES, Send, save
from siyu.messaging.transports.registry import registry
from siyu.store.times import as_stored

router = APIRouter()

PAGE = "messages"
FORM_BYTES = 32 * 1024
WINDOW_DAYS = 7
FIELDS = ("code", "channel", "purpose", "target_kind", "target", "template", "params",
          "scheduled_at", "sender")  # fmt: skip


def send_path(code: str) -> str:
    return f"/console/messages/{quote(code, safe='')}"


def figure_label(ctx: Ctx, figure: str) -> str:
    if figure in recipients.REASONS:
        return ctx.t(f"reason.{figure}")
    if figure == "deferred":
        return ctx.t("msg.deferred")
    if figure == "skipped":
        return ctx.t("msg.skipped")
    return ctx.t(f"msg.fig.{figure}") if figure != "all" else ctx.t("msg.members")


def channel_name(ctx: Ctx, code: str) -> str:
    for c in registry.channels():
        if c.code == code:
            return c.label_zh if ctx.lang == "zh" else c.label_en
    return code


async def _policy(ctx: Ctx) -> policies.Policy:
    assert ctx.who is not None

    def work() -> policies.Policy:
        with ctx.svc.engine.connect() as conn:
            return policies.current(conn, ctx.who.group_id)[1]  # type: ignore[union-attr]

    return await run_in_threadpool(work)


async def _list_page(
    ctx: Ctx, typed: dict[str, str] | None = None, error: str | None = None, status: int = 200
) -> Response:
    assert ctx.who is not None
    found: list[lifecycle.SendRow] = await read(ctx, lifecycle.listed, ctx.who.group_id)
    shown, page_no, pages = paged(found, ctx.request.query_params.get("page"))
    policy = await _policy(ctx)
    return render(
        ctx,
        "messages.html",
        status=status,
        sends=shown,
        total=len(found),
        page_no=page_no,
        pages=pages,
        link=lambda page: f"/console/messages?{urlencode({'page': page})}",
        path_of=send_path,
        channel_name=lambda c: channel_name(ctx, c),
        channels=registry.channels(),
        stages=STAGES,
        may_write=ctx.who.may("messages:write"),
        typed=typed or {"purpose": "marketing", "target_kind": "stage"},
        error=error,
        tz=policy.timezone,
    )


@router.get("/messages")
async def message_list(request: Request) -> Response:
    ctx = await authenticated(request, PAGE)
    return await _list_page(ctx)


def parse_params(ctx: Ctx, raw: str) -> dict[str, str]:
    """`key=value` lines (blank lines skipped); a line without `=` is refused by number."""
    found: dict[str, str] = {}
    for n, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise ValidationError("params", ctx.t("msg.bad_params", line=n))
        found[key.strip()] = value.strip()
    return found


def compose_document(ctx: Ctx, fields: dict[str, str], policy: policies.Policy) -> Send:
    """The form as a send document (the scheduled time read in the policy's zone)."""
    raw_time = fields.get("scheduled_at", "").strip().replace("T", " ")
    try:
        local = datetime.strptime(raw_time, "%Y-%m-%d %H:%M")
    except ValueError:
        raise ValidationError("scheduled_at", ctx.t("msg.bad_time")) from None
    kind = fields.get("target_kind", "stage")
    if kind not in ("segment", "stage"):
        raise ValidationError("target_kind", "segment or stage", kind)
    doc = {
        "code": fields.get("code", "").strip(),
        "channel": fields.get("channel", ""),
        "purpose": fields.get("purpose", "marketing"),
        "content": {
            "template": fields.get("template", "").strip(),
            "params": parse_params(ctx, fields.get("params", "")),
        },
        "target": {kind: fields.get("target", "").strip()},
        "scheduled_at": local.replace(tzinfo=policy.zone),
        "sender": fields.get("sender", "").strip() or None,
    }
    return parse_document(Send, doc, "send")


@router.post("/messages")
async def compose(request: Request) -> Response:
    """Save the composed draft and plan it held for review, then show its preview; a
    refusal shows the form again with what was typed and the field's rule."""
    ctx = await authenticated(request, PAGE)
    assert ctx.who is not None
    fields = await posted_form(request, FORM_BYTES)
    need(ctx, "messages:write")
    typed = {k: fields.get(k, "") for k in FIELDS}
    group, engine = ctx.who.group_id, ctx.svc.engine
    try:
        send = compose_document(ctx, fields, await _policy(ctx))
        await run_in_threadpool(save, engine, group, send, ctx.who.key_id)
        await run_in_threadpool(plans.plan, engine, group, send.code, None, True)
    except (ValidationError, NotFoundError) as exc:
        return await _list_page(ctx, typed, str(exc), 422)
    except (SendExists, SendState) as exc:
        return await _list_page(ctx, typed, str(exc), 409)
    return redirect(ctx, f"{send_path(send.code)}?done=planned")


@router.post("/messages/{code:path}/{action}")
async def act(code: str, action: str, request: Request) -> Response:
    """Preview (plan a draft, held), Send (release a held plan) or Cancel."""
    ctx = await authenticated(request, PAGE)
    assert ctx.who is not None
    await posted_form(request)
    if action not in ("plan", "send", "cancel"):
        raise ConsoleExit(404)
    need(ctx, "messages:write")
    found = await coded_or_404(ctx, lifecycle.one, code)
    group, engine, real = ctx.who.group_id, ctx.svc.engine, found.send.code
    try:
        if action == "plan":
            await run_in_threadpool(plans.plan, engine, group, real, None, True)
            return redirect(ctx, f"{send_path(real)}?done=planned")
        if action == "send":
            await run_in_threadpool(lifecycle.release, engine, group, real)
            return redirect(ctx, f"{send_path(real)}?done=sent")
        _, n = await run_in_threadpool(lifecycle.cancel, engine, group, real)
        return redirect(ctx, f"{send_path(real)}?{urlencode({'done': 'cancelled', 'n': n})}")
    except (SendState, ValidationError, NotFoundError) as exc:
        return await _show(ctx, found, error=str(exc), status=409)


async def _figure_ids(ctx: Ctx, code: str) -> tuple[lifecycle.SendRow, str, list[int]]:
    assert ctx.who is not None
    found = await coded_or_404(ctx, lifecycle.one, code)
    figure = ctx.request.query_params.get("figure", "")
    if figure not in recipients.FIGURES:
        raise ConsoleExit(404)
    ids = await run_in_threadpool(
        recipients.member_ids,
        ctx.svc.engine,
        ctx.who.group_id,
        found.send.code,
        figure,
        WINDOW_DAYS,
    )
    return found, figure, ids


@router.get("/messages/{code:path}/members.csv")
async def message_members_csv(code: str, request: Request) -> Response:
    ctx = await authenticated(request, PAGE)
    found, figure, ids = await _figure_ids(ctx, code)
    return await member_lists.export(ctx, ids, f"send-{found.send.code}-{figure}.csv")


@router.get("/messages/{code:path}/members")
async def message_members(code: str, request: Request) -> Response:
    """The members behind one count of the preview or the results."""
    ctx = await authenticated(request, PAGE)
    found, figure, ids = await _figure_ids(ctx, code)
    path = send_path(found.send.code)
    title = ctx.t("msg.members_title", code=found.send.code, figure=figure_label(ctx, figure))
    return await member_lists.show_list(
        ctx,
        f"{path}/members",
        title,
        among=ids,
        keep={"figure": figure},
        csv_path=f"{path}/members.csv",
        back=(path, found.send.code),
    )


async def _show(
    ctx: Ctx, found: lifecycle.SendRow, error: str | None = None, status: int = 200
) -> Response:
    assert ctx.who is not None
    group, code = ctx.who.group_id, found.send.code
    counts: dict[str, int] = await read(ctx, lifecycle.tally, group, found.send_id)
    result: SendResult = await run_in_threadpool(
        send_result, ctx.svc.engine, group, code, WINDOW_DAYS
    )
    vs = await run_in_threadpool(send_effect, ctx.svc.engine, group, code, WINDOW_DAYS)
    path = send_path(code)
    params = ctx.request.query_params
    skipped = [(r, counts[r]) for r in recipients.REASONS if counts.get(r)]
    policy = await _policy(ctx)

    def local_time(at: datetime | None) -> str:
        """A stored (UTC) time in the policy's zone, as people there read it."""
        if at is None:
            return "-"
        return (
            f"{at.replace(tzinfo=UTC).astimezone(policy.zone):%Y-%m-%d %H:%M} ({policy.timezone})"
        )

    return render(
        ctx,
        "message.html",
        status=status,
        s=found,
        send=found.send,
        counts=counts,
        skipped=skipped,
        r=result,
        vs=vs,
        members_link=lambda figure: f"{path}/members?{urlencode({'figure': figure})}",
        send_url=path,
        channel_name=channel_name(ctx, found.send.channel),
        may_write=ctx.who.may("messages:write"),
        done=params.get("done", ""),
        cancelled_n=params.get("n", "0"),
        error=error,
        window_days=WINDOW_DAYS,
        label_of=lambda figure: figure_label(ctx, figure),
        local_time=local_time,
        scheduled=as_stored(found.send.scheduled_at),
        skipped_total=sum(n for _, n in skipped),
    )


@router.get("/messages/{code:path}")
async def message_page(code: str, request: Request) -> Response:
    ctx = await authenticated(request, PAGE)
    found = await coded_or_404(ctx, lifecycle.one, code)
    return await _show(ctx, found)
