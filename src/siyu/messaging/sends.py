"""A send as HQ writes it: a validated document (channel, purpose, the template and its
parameters, the target, when), saved as a draft and fixed once planned."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import Connection, Engine, text

from siyu.errors import NotFoundError, ValidationError
from siyu.messaging.errors import SendExists
from siyu.messaging.models import sends
from siyu.messaging.transports.registry import registry
from siyu.store.times import as_stored, stored_now, stored_time

Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Param = Annotated[str, Field(max_length=500)]
STAGES = ("prospect", "loyal", "at_risk", "lapsed")  # and new_1 .. new_{knee-1}


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Target(_Doc):
    """Who it is for: a stored segment, a lifecycle stage, or an experiment's arm (exactly
    one; an experiment target needs the experiments tables, see `plan.TARGETS`)."""

    segment: Code | None = None
    stage: Code | None = None
    experiment: Code | None = None
    variant: Code | None = None

    @model_validator(mode="after")
    def _one(self) -> Target:
        given = [k for k in ("segment", "stage", "experiment") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of segment, stage, experiment")
        if self.stage is not None and not (self.stage in STAGES or self.stage.startswith("new_")):
            raise ValueError(f"stage: one of {', '.join(STAGES)} or new_<n>")
        if (self.experiment is None) != (self.variant is None):
            raise ValueError("an experiment target names its variant, and only then")
        return self


class Content(_Doc):
    """What the platform renders: its template id and the template's parameters."""

    template: Code
    params: dict[Code, Param] = Field(default_factory=dict, max_length=50)


class Send(_Doc):
    code: Code
    channel: str
    purpose: Literal["marketing", "service"] = "marketing"
    content: Content
    target: Target
    scheduled_at: datetime
    sender: Code | None = None  # the guide sending (WeCom group send), capped per day
    # the identity scope that addresses members (an openid's appid, a WeCom corp id);
    # None: any scope of the channel's identity type
    scope: Code | None = None
    # planned held for review whoever plans it (an experiment's start plans its message
    # variants' sends), as `plan(hold=True)` does by hand; `lifecycle.release` sends it
    review: bool = False

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        try:
            registry.channel(value)
        except ValidationError as exc:
            raise ValueError(exc.rule) from None  # names the known channels
        return value


@dataclass(frozen=True)
class Stored:
    send_id: int
    send: Send
    status: str
    due_at: datetime | None


def save(engine: Engine, group_id: str, send: Send, key_id: int | None = None) -> Stored:
    """Save the send as a draft; saving the same document again changes nothing, another
    document under the code is refused (409 `send_exists`)."""
    body = send.model_dump_json()
    with engine.begin() as conn:
        found = conn.execute(
            text("SELECT body FROM sends WHERE group_id = :g AND code = :c"),
            {"g": group_id, "c": send.code},
        ).first()
        if found is None:
            conn.execute(
                sends.insert().values(
                    group_id=group_id,
                    code=send.code,
                    channel=send.channel,
                    purpose=send.purpose,
                    sender=send.sender,
                    body=body,
                    status="draft",
                    scheduled_at=as_stored(send.scheduled_at),
                    key_id=key_id,
                    created_at=stored_now(),
                )
            )
        elif Send.model_validate(json.loads(found.body)) != send:
            raise SendExists(f"code: send {send.code} exists with another body")
        return load(conn, group_id, send.code)


def load(conn: Connection, group_id: str, code: str) -> Stored:
    row = conn.execute(
        text("SELECT send_id, body, status, due_at FROM sends WHERE group_id = :g AND code = :c"),
        {"g": group_id, "c": code},
    ).first()
    if row is None:
        raise NotFoundError(f"send: no send {code!r}")
    due = None if row.due_at is None else stored_time(row.due_at)
    return Stored(int(row.send_id), Send.model_validate(json.loads(row.body)), row.status, due)
