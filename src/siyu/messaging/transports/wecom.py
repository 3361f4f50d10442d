"""WeCom customer group sends (企业微信客户群发): POST
/cgi-bin/externalcontact/add_msg_template creates a task for one guide (`sender`) over a
list of their customers (`external_userid`); the guide confirms it in the WeCom app, and
only then do the customers receive it.

The messages of a batch are grouped per (guide, send) into one task each (at most 10,000
customers a task). `content.params` gives `text` (the message) and optional attachments:
`image_media_id`; `link_title`, `link_url`, `link_picurl`, `link_desc`;
`miniprogram_title`, `miniprogram_pic_media_id`, `miniprogram_appid`, `miniprogram_page`.
A created task is "sent" in the outbox with the task's `msgid` as provider reference: it
is now the guide's to confirm. A customer in the answer's `fail_list` (not the guide's
customer, or not reachable) fails permanently. `task_status` later reads
`get_groupmsg_send_result` and records what happened to each customer as message events:
1 sent (`delivered`); 2 not a friend and 3 already received another group message (the
platform's own per-customer limit), both `failed` with the reason. 0 (the guide has not
confirmed yet) records nothing.

Errors: 40003 / 60111 unknown sender userid, 41048 no sendable customer, 40058 bad
parameter, 48002 no API permission (permanent); 45009 rate limit, -1 busy and any other
code are tried again later. Company broadcasts per customer per month (4) and per guide
per day (1) are capped by siyu's contact policy before planning, not here.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text

from siyu.errors import ValidationError
from siyu.messaging import outbox
from siyu.messaging.transports.base import Message, Outcome
from siyu.messaging.transports.tokens import PlatformUnreachable, WxApi, outcome, wecom_api

ADD = "/cgi-bin/externalcontact/add_msg_template"
RESULT = "/cgi-bin/externalcontact/get_groupmsg_send_result"
MAX_CUSTOMERS = 10_000
PERMANENT = {
    40003: "sender userid invalid (40003)",
    60111: "sender userid not found (60111)",
    41048: "no sendable customer (41048)",
    40058: "invalid parameter (40058)",
    48002: "API not permitted for this secret (48002)",
}
STATUS = {
    1: ("delivered", None),
    2: ("failed", "not the guide's customer (2)"),
    3: ("failed", "customer already received another group message (3)"),
}
ATTACHMENTS = {
    "image": ("media_id",),
    "link": ("title", "url", "picurl", "desc"),
    "miniprogram": ("title", "pic_media_id", "appid", "page"),
}
REQUIRED = {"link": ("title", "url"), "miniprogram": ("title", "pic_media_id", "appid", "page")}


def task_body(sender: str, customers: Sequence[str], params: Mapping[str, Any]) -> dict[str, Any]:
    """One task's request body; raises ValidationError naming a bad or missing param."""
    given = dict(params)
    content = given.pop("text", None)
    attachments = []
    for kind, fields in ATTACHMENTS.items():
        found = {f: str(given.pop(f"{kind}_{f}")) for f in fields if f"{kind}_{f}" in given}
        if not found:
            continue
        for f in REQUIRED.get(kind, fields):
            if f not in found:
                raise ValidationError(f"params.{kind}_{f}", f"a {kind} attachment needs it")
        attachments.append({"msgtype": kind, kind: found})
    if given:
        raise ValidationError(f"params.{sorted(given)[0]}", "not a WeCom group-send param")
    if content is None and not attachments:
        raise ValidationError("params.text", "a group send needs text or an attachment")
    body: dict[str, Any] = {
        "chat_type": "single",
        "external_userid": list(customers),
        "sender": sender,
    }
    if content is not None:
        body["text"] = {"content": str(content)}
    if attachments:
        body["attachments"] = attachments
    return body


class WecomGroupSendTransport:
    code = "wecom_group_send"

    def __init__(self, api: WxApi) -> None:
        self.api = api

    def deliver(self, messages: Sequence[Message]) -> list[Outcome]:
        answers: dict[int, Outcome] = {}
        tasks: dict[tuple[str, int], list[int]] = defaultdict(list)
        for i, message in enumerate(messages):
            if not message.sender:
                answers[i] = Outcome(
                    False, error="sender: a WeCom group send names the guide", permanent=True
                )
            else:
                tasks[(message.sender, message.send_id)].append(i)
        for (sender, _), indexes in tasks.items():
            for start in range(0, len(indexes), MAX_CUSTOMERS):
                chunk = indexes[start : start + MAX_CUSTOMERS]
                for i, answer in zip(
                    chunk, self._task(sender, [messages[i] for i in chunk]), strict=True
                ):
                    answers[i] = answer
        return [answers[i] for i in range(len(messages))]

    def _task(self, sender: str, messages: Sequence[Message]) -> list[Outcome]:
        try:
            body = task_body(
                sender, [m.address for m in messages], messages[0].content.get("params", {})
            )
        except ValidationError as exc:
            return [Outcome(False, error=f"{exc.field}: {exc.rule}", permanent=True)] * len(
                messages
            )
        try:
            answer = self.api.call(ADD, body)
        except PlatformUnreachable as exc:
            return [Outcome(False, error=str(exc))] * len(messages)
        task = outcome(answer, PERMANENT)
        if not task.ok:
            return [task] * len(messages)
        refused = set(answer.get("fail_list") or [])
        not_sendable = Outcome(
            False, error="in fail_list: not the guide's customer or unreachable", permanent=True
        )
        return [not_sendable if m.address in refused else task for m in messages]


@dataclass(frozen=True)
class TaskStatus:
    waiting: int  # the guide has not confirmed yet (status 0)
    delivered: int
    failed: int
    recorded: int  # events new to the store (a repeated call records none again)


def task_status(
    engine: Engine, group_id: str, transport: WecomGroupSendTransport, msgid: str
) -> TaskStatus:
    """Read a task's per-customer results and record them as message events, once each."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("""SELECT r.send_id, r.member_id, r.sender, i.value FROM send_recipients r
                    LEFT JOIN identities i ON i.identity_id = r.identity_id
                    WHERE r.group_id = :g AND r.provider_ref = :ref
                      AND r.channel = 'wecom_group_send' AND r.status = 'sent'"""),
            {"g": group_id, "ref": msgid},
        ).all()
    if not rows:
        raise ValidationError("msgid", "no sent WeCom group-send message has this task id")
    members = {r.value: (int(r.send_id), int(r.member_id)) for r in rows}
    counts = {"waiting": 0, "delivered": 0, "failed": 0, "recorded": 0}
    cursor = ""
    while True:
        body = {"msgid": msgid, "userid": rows[0].sender, "limit": 1000, "cursor": cursor}
        answer = transport.api.call(RESULT, body)
        if int(answer.get("errcode", 0)) != 0:
            raise PlatformUnreachable(f"get_groupmsg_send_result: errcode {answer['errcode']}")
        for item in answer.get("send_list") or []:
            found = members.get(item.get("external_userid"))
            status = int(item.get("status", 0))
            if found is None:
                continue  # a customer of the task that is not in this store's outbox
            if status not in STATUS:
                counts["waiting"] += 1
                continue
            kind, detail = STATUS[status]
            counts[kind] += 1
            sent_at = item.get("send_time")
            at = None if not sent_at else datetime.fromtimestamp(int(sent_at), UTC)
            counts["recorded"] += outbox.record_event(
                engine,
                group_id,
                found[0],
                found[1],
                kind,
                _event_id(msgid, str(item["external_userid"])),
                at=at,
                detail=detail,
            )
        cursor = str(answer.get("next_cursor") or "")
        if not cursor:
            return TaskStatus(**counts)


def sent_tasks(engine: Engine, group_id: str, send: str | None = None) -> list[str]:
    """The task ids (`msgid`) of sent WeCom group-send messages, of one send if named,
    for `task_status` to read (a task read before is read again: its events are kept
    once, and customers not yet confirmed are recorded when they are)."""
    only = "AND r.send_id IN (SELECT send_id FROM sends WHERE group_id = :g AND code = :c)"
    with engine.connect() as conn:
        rows = conn.execute(
            text(f"""SELECT DISTINCT r.provider_ref FROM send_recipients r
                     WHERE r.group_id = :g AND r.channel = 'wecom_group_send'
                       AND r.status = 'sent' AND r.provider_ref IS NOT NULL
                       {only if send is not None else ""}
                     ORDER BY r.provider_ref"""),
            {"g": group_id, "c": send},
        ).all()
    return [str(ref) for (ref,) in rows]


def _event_id(msgid: str, customer: str) -> str:
    raw = f"wecom:{msgid}:{customer}"
    return raw if len(raw) <= 128 else "wecom:" + hashlib.sha256(raw.encode()).hexdigest()


def build(settings: Mapping[str, Any]) -> WecomGroupSendTransport:
    """Settings: corpid, corpsecret (the customer-contact secret), base_url, timeout."""
    return WecomGroupSendTransport(wecom_api(settings))
