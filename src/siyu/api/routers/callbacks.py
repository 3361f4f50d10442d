"""The platforms' delivery callbacks (issue #18): WeCom / WeChat pushes and Tencent Cloud
SMS status reports, recorded as message events once per report.

No API key here (a platform cannot present one): each request is authenticated by what
the platform can prove (`messaging.callbacks`), before its body is read into anything
else or the store is touched, and answered the way that platform expects (`success`, the
echostr, `{"result": 0}`). The receipts go to the process's group (SIYU_GROUP). Nothing
here logs: the access log names the route template, never the path's secret, and no
openid or mobile number leaves the request.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse

from siyu.api.deps import Services, services
from siyu.api.problems import Problem
from siyu.api.schemas import PLAIN
from siyu.messaging import receipts
from siyu.messaging.callbacks import SmsCallback, WxCallback
from siyu.messaging.transports.sms import status_receipts
from siyu.messaging.transports.wxcrypt import Refused
from siyu.messaging.transports.wxpush import MAX_BODY, echo, open_push

router = APIRouter(prefix="/callbacks", tags=["callbacks"])
Channel = Annotated[str, Path(min_length=1, max_length=32, pattern=PLAIN)]
Secret = Annotated[str, Path(min_length=1, max_length=200)]
MAX_REPORTS_BODY = 1024 * 1024  # a status callback may batch many reports


def _refused(reason: str) -> Problem:
    return Problem(401, "Unauthenticated", reason, "callback_refused")


def _callback(svc: Services, channel: str, kind: type[WxCallback] | type[SmsCallback]) -> Any:
    found = svc.callbacks.get(channel)
    if not isinstance(found, kind):
        raise Problem(
            404, "Not found", f"channel {channel!r}: no such callback configured", "not_found"
        )
    return found


async def _body(request: Request, limit: int) -> bytes:
    """The body, read no further than `limit` bytes (a 413 past it)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise Problem(413, "Too large", f"body: at most {limit} bytes", "validation_failed")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, "Too large", f"body: at most {limit} bytes", "validation_failed")
        chunks.append(chunk)
    return b"".join(chunks)


@router.get("/{channel}", response_class=PlainTextResponse)
async def verify_url(
    channel: Channel, request: Request, svc: Services = Depends(services)
) -> PlainTextResponse:
    """The platform's check of the URL before it pushes (`echostr`): answered with the
    echostr (WeChat) or its decryption (WeCom) when the signature holds."""
    found: WxCallback = _callback(svc, channel, WxCallback)
    try:
        return PlainTextResponse(echo(found.crypt, dict(request.query_params), time.time()))
    except Refused as exc:
        raise _refused(str(exc)) from None


@router.post("/{channel}", response_class=PlainTextResponse)
async def wx_push(
    channel: Channel, request: Request, svc: Services = Depends(services)
) -> PlainTextResponse:
    """A signed, encrypted push (safe mode): its delivery results recorded, `success`
    answered (also for a push that holds none, so the platform does not push it again)."""
    found: WxCallback = _callback(svc, channel, WxCallback)
    body = await _body(request, MAX_BODY)
    try:
        message = open_push(found.crypt, dict(request.query_params), body, time.time())
    except Refused as exc:
        raise _refused(str(exc)) from None
    taken = found.receipts(message)
    if taken:
        group = svc.settings.group_id
        await run_in_threadpool(receipts.record, svc.engine, group, channel, taken)
    return PlainTextResponse("success")


@router.post("/{channel}/{secret}")
async def sms_status(
    channel: Channel, secret: Secret, request: Request, svc: Services = Depends(services)
) -> JSONResponse:
    """Tencent Cloud SMS status reports (a JSON array), the channel's secret in the URL:
    each report recorded once by its `sid`; answered `{"result": 0, "errmsg": "OK"}`."""
    found: SmsCallback = _callback(svc, channel, SmsCallback)
    if not found.admits(secret):
        raise _refused("the URL's secret does not match the channel's callback_secret")
    body = await _body(request, MAX_REPORTS_BODY)
    try:
        taken, unreadable = status_receipts(json.loads(body))
    except ValueError as exc:
        return JSONResponse({"result": 1, "errmsg": f"body: {exc}"[:200]}, status_code=400)
    done = receipts.Recorded(0, 0, 0)
    if taken:
        group = svc.settings.group_id
        done = await run_in_threadpool(receipts.record, svc.engine, group, channel, taken)
    return JSONResponse(
        {
            "result": 0,
            "errmsg": "OK",
            "recorded": done.recorded,
            "duplicate": done.duplicate,
            "parked": done.parked,
            "unreadable": unreadable,
        }
    )
