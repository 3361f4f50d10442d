"""Messaging over HTTP (issue #18): HQ writes a send as a draft, plans it (held for review,
or released at once), sends or cancels it, and reads its figures and the recipients
behind each (addresses masked for analysts); the contact policy; consent recorded by HQ
or a store, withdrawn by the member itself; and the delivery callbacks and clicks a
platform or a link redirector reports, once per provider event id.

A callback names the message by the key every transport passes on (`<group>:<send>:
<member>`, the `Idempotency-Key`); a channel key records events for messages on its own
channel only, and each item is answered recorded, duplicate or rejected with the reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from siyu.api.deps import Services, require, scoped_member, services
from siyu.api.problems import Problem, not_the_path
from siyu.api.schemas import MAX_ID, PLAIN, Strict
from siyu.auth.principal import Principal, Role
from siyu.experiments.send_effect import send_effect
from siyu.messaging import consent, lifecycle, outbox, recipients
from siyu.messaging import plan as plans
from siyu.messaging import policy as policies
from siyu.messaging.attribution import send_result
from siyu.messaging.models import ALL_CHANNELS
from siyu.messaging.sends import Send, save
from siyu.messaging.transports.registry import registry
from siyu.store.times import as_utc

router = APIRouter(prefix="/v1", tags=["messaging"])
Code = Annotated[str, Path(min_length=1, max_length=64, pattern=PLAIN)]
MemberId = Annotated[int, Path(ge=1, le=MAX_ID)]
Window = Annotated[int, Query(ge=1, le=90, description="Attribution window in days.")]


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _send(row: lifecycle.SendRow) -> dict[str, Any]:
    return {
        "code": row.send.code,
        "state": row.state,
        "due_at": _utc(row.due_at),
        "planned_at": _utc(row.planned_at),
        "created_at": _utc(row.created_at),
        "send": row.send.model_dump(mode="json"),
    }


def _with_counts(svc: Services, group_id: str, code: str) -> dict[str, Any]:
    with svc.engine.connect() as conn:
        row = lifecycle.one(conn, group_id, code)
        return {**_send(row), "counts": lifecycle.tally(conn, group_id, row.send_id)}


@router.put("/sends/{code}")
async def put_send(
    code: Code,
    body: Send,
    who: Principal = Depends(require("messages:write")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Save a draft; the same document again changes nothing, another under the code is
    409 `send_exists`."""
    if body.code != code:
        raise not_the_path("code", body.code, code)
    await run_in_threadpool(save, svc.engine, who.group_id, body, who.key_id)
    return await run_in_threadpool(_with_counts, svc, who.group_id, code)


@router.get("/sends")
async def list_sends(
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    who: Principal = Depends(require("messages:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The group's sends, newest first, with their state (draft, held, planned,
    cancelled)."""

    def work() -> list[lifecycle.SendRow]:
        with svc.engine.connect() as conn:
            return lifecycle.listed(conn, who.group_id, limit)

    return {"sends": [_send(r) for r in await run_in_threadpool(work)]}


@router.get("/sends/{code}")
async def get_send(
    code: Code,
    who: Principal = Depends(require("messages:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The send, its state and its recipients by status and skip reason."""
    return await run_in_threadpool(_with_counts, svc, who.group_id, code)


@router.post("/sends/{code}:plan")
async def plan_send(
    code: Code,
    hold: Annotated[bool, Query(description="Keep the plan for review; send it later.")] = True,
    who: Principal = Depends(require("messages:write")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Plan the draft: every member of its target planned, deferred out of quiet hours
    or skipped with the reason (the preview). Held for review by default (`:send`
    releases it); `hold=false` releases it at once. Once only (409 `send_state`)."""
    await run_in_threadpool(plans.plan, svc.engine, who.group_id, code, None, hold)
    return await run_in_threadpool(_with_counts, svc, who.group_id, code)


@router.post("/sends/{code}:send")
async def release_send(
    code: Code,
    who: Principal = Depends(require("messages:write")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Release a held plan to the outbox (409 `send_state` unless held)."""
    await run_in_threadpool(lifecycle.release, svc.engine, who.group_id, code)
    return await run_in_threadpool(_with_counts, svc, who.group_id, code)


@router.post("/sends/{code}:cancel")
async def cancel_send(
    code: Code,
    who: Principal = Depends(require("messages:write")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Cancel the send: its messages no worker holds are skipped (`send_cancelled`) and
    free their cap slots (409 `send_state` when cancelled already)."""
    _, skipped = await run_in_threadpool(lifecycle.cancel, svc.engine, who.group_id, code)
    return {**await run_in_threadpool(_with_counts, svc, who.group_id, code), "skipped": skipped}


@router.get("/sends/{code}/figures")
async def send_figures(
    code: Code,
    window_days: Window = 7,
    who: Principal = Depends(require("messages:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Planned, deferred and skipped by reason; sent, delivered, clicked; the buyers,
    orders and revenue (fen) attributed to it, last touch within `window_days`; and
    `against_holdout`: the people it reached against those its planning held out (the
    global holdout), every order of theirs within `window_days` of its due time, with
    the differences' 95% intervals (null when nobody was held out)."""
    result = await run_in_threadpool(send_result, svc.engine, who.group_id, code, window_days)
    found = await run_in_threadpool(_with_counts, svc, who.group_id, code)
    effect = await run_in_threadpool(send_effect, svc.engine, who.group_id, code, window_days)
    return {
        "code": code,
        "state": found["state"],
        "counts": found["counts"],
        "window_days": window_days,
        "recipients": result.recipients,
        "sent": result.sent,
        "delivered": result.delivered,
        "clicked": result.clicked,
        "buyers": result.buyers,
        "orders": result.orders,
        "revenue_fen": result.revenue_fen,
        "against_holdout": None if effect is None else effect.as_dict(),
    }


@router.get("/sends/{code}/recipients")
async def send_recipients(
    code: Code,
    figure: Annotated[str, Query(description=f"One of {', '.join(recipients.FIGURES)}.")] = "all",
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=recipients.MAX_PAGE)] = 100,
    window_days: Window = 7,
    who: Principal = Depends(require("messages:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The recipients behind a figure, by member id after `after`; the address masked
    unless the key's role sees personal data."""

    def work() -> list[recipients.Recipient]:
        with svc.engine.connect() as conn:
            send_id = lifecycle.one(conn, who.group_id, code).send_id
            return recipients.page(
                conn,
                who.group_id,
                send_id,
                figure,
                after=after,
                limit=limit,
                clear=who.sees_personal_data,
                vault=svc.vault,
                window_days=window_days,
            )

    found = await run_in_threadpool(work)
    items = []
    for r in found:
        item = r.as_dict()
        item["due_at"], item["sent_at"] = _utc(r.due_at), _utc(r.sent_at)
        items.append(item)
    return {
        "figure": figure,
        "recipients": items,
        "next_after": found[-1].member_id if len(found) == limit else None,
    }


# --- the contact policy -----------------------------------------------------------------


@router.get("/messaging/policy")
async def get_policy(
    who: Principal = Depends(require("messages:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The policy in force (`version` null: the defaults, never saved)."""

    def work() -> tuple[int | None, policies.Policy]:
        with svc.engine.connect() as conn:
            return policies.current(conn, who.group_id)

    policy_id, found = await run_in_threadpool(work)
    return {"policy_id": policy_id, "policy": found.model_dump(mode="json")}


@router.put("/messaging/policy")
async def put_policy(
    body: policies.Policy,
    who: Principal = Depends(require("messages:policy")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Replace the policy with a new version; plannings from now on apply it."""
    policy_id = await run_in_threadpool(policies.save, svc.engine, who.group_id, body, who.key_id)
    return {"policy_id": policy_id, "policy": body.model_dump(mode="json")}


# --- consent ----------------------------------------------------------------------------


class ConsentIn(Strict):
    action: Literal["grant", "withdraw"]
    purpose: Literal["marketing", "service"] = "marketing"
    channel: str = Field(
        default=ALL_CHANNELS, max_length=32, description="A messaging channel, or * for all."
    )
    source: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=PLAIN,
        description="Where the person said it (mini_program, store, sms_reply).",
    )
    at: datetime | None = Field(default=None, description="When the person said it.")


@router.post("/members/{member_id}/consent")
async def record_consent(
    member_id: MemberId,
    body: ConsentIn,
    who: Principal = Depends(require("consent:record")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Record a grant or withdrawal with its source (HQ, or a store for its members); a
    member key withdraws its own only, at once. A withdrawal cancels the messages to the
    person no worker holds yet (`cancelled`)."""
    if who.role == Role.MEMBER and body.action != "withdraw":
        raise Problem(
            403, "Forbidden", "action: a member key withdraws its own consent only", "forbidden"
        )
    current = await scoped_member(svc, who, member_id)
    source = body.source or ("member" if who.role == Role.MEMBER else f"key:{who.key_id}")
    cancelled = await run_in_threadpool(
        lambda: consent.record(
            svc.engine,
            who.group_id,
            current,
            body.action,
            purpose=body.purpose,
            channel=body.channel,
            source=source,
            at=body.at,
        )
    )
    return {"member_id": current, "cancelled": cancelled, **await _states(svc, who, current)}


@router.get("/members/{member_id}/consent")
async def read_consent(
    member_id: MemberId,
    who: Principal = Depends(require("consent:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The member's consent per channel and purpose (a member key: its own)."""
    current = await scoped_member(svc, who, member_id)
    return {"member_id": current, **await _states(svc, who, current)}


async def _states(svc: Services, who: Principal, member_id: int) -> dict[str, Any]:
    def work() -> list[consent.State]:
        with svc.engine.connect() as conn:
            return [
                consent.state(conn, who.group_id, member_id, c.code, purpose)
                for purpose in ("marketing", "service")
                for c in registry.channels()
            ]

    return {
        "consents": [
            {
                "purpose": s.purpose,
                "channel": s.channel,
                "granted": s.granted,
                "last_grant_at": _utc(s.last_grant_at),
                "last_withdrawal_at": _utc(s.last_withdrawal_at),
            }
            for s in await run_in_threadpool(work)
        ]
    }


# --- delivery callbacks and clicks -------------------------------------------------------


class EventIn(Strict):
    message_key: str = Field(
        min_length=5,
        max_length=200,
        description="The message's key as the transport passed it: <group>:<send_id>:<member_id>.",
    )
    kind: Literal["delivered", "failed", "read", "clicked"]
    event_id: str = Field(min_length=1, max_length=128, description="The provider's event id.")
    at: datetime | None = None
    detail: str | None = Field(default=None, max_length=300)


class EventsIn(Strict):
    items: list[EventIn] = Field(min_length=1, max_length=1000)


def _message(key: str, group_id: str) -> tuple[int, int] | None:
    parts = key.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != group_id or not (parts[1].isdigit() and parts[2].isdigit()):
        return None
    return int(parts[1]), int(parts[2])


@router.post("/message-events:batch")
async def message_events(
    body: EventsIn,
    who: Principal = Depends(require("messages:events")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Record delivery callbacks and clicks, once per provider event id: each item is
    `recorded`, `duplicate` (that event id was recorded before) or `rejected` with the
    reason (an unknown message, one not sent, another channel's message)."""

    def work() -> list[dict[str, Any]]:
        answers = []
        with svc.engine.connect() as conn:
            found = {}
            for item in body.items:
                pair = _message(item.message_key, who.group_id)
                if pair is not None and pair not in found:
                    found[pair] = outbox.message_of(conn, who.group_id, pair[0], pair[1])
        for n, item in enumerate(body.items):
            pair = _message(item.message_key, who.group_id)
            row = None if pair is None else found.get(pair)
            reason = None
            if row is None:
                reason = "message_key: no message of this group has this key"
            elif row.status != "sent":
                reason = f"message_key: the message is {row.status}, not sent"
            elif who.role == Role.CHANNEL and row.channel != who.channel:
                reason = (
                    f"message_key: a {row.channel} message; this key records {who.channel} only"
                )
            if reason is not None or pair is None:
                answers.append({"item": n, "status": "rejected", "reason": reason})
                continue
            new = outbox.record_event(
                svc.engine,
                who.group_id,
                pair[0],
                pair[1],
                item.kind,
                item.event_id,
                at=item.at,
                detail=item.detail,
            )
            answers.append({"item": n, "status": "recorded" if new else "duplicate"})
        return answers

    answers = await run_in_threadpool(work)
    totals = {k: sum(a["status"] == k for a in answers) for k in ("recorded", "duplicate")}
    return {
        "read": len(answers),
        **totals,
        "rejected": [a for a in answers if a["status"] == "rejected"],
    }
