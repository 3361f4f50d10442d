"""The group's contact policy, a validated document kept in every version: how often a
member may be touched by marketing, and when not.

Caps count every marketing touch planned or sent, across sends and channels:
- `per_week`: touches in any 7 days (a touch exactly 7 days before or after no longer
  counts);
- `per_channel_month`: touches on a channel in a calendar month of the group's time zone
  (WeCom: a customer receives at most 4 company broadcasts a month);
- `per_guide_day`: touches sent by one guide in a local day (WeCom: one a day).
Quiet hours are local to the group (Asia/Shanghai by default): a marketing send scheduled
inside them goes at their end.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import Connection, Engine

from siyu.errors import NotFoundError, parse_document
from siyu.messaging.models import messaging_policies
from siyu.messaging.transports.registry import registry
from siyu.store.times import as_stored
from siyu.store.versions import Versions

Cap = Annotated[int, Field(ge=0, le=1000)]
CODE = "default"


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = "Asia/Shanghai"
    per_week: Cap = 2
    per_channel_month: dict[str, Cap] = Field(default_factory=lambda: {"wecom_group_send": 4})
    per_guide_day: Cap = 1
    quiet_start: time = time(21, 0)
    quiet_end: time = time(9, 0)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name: Asia/Shanghai)") from None
        return value

    @field_validator("per_channel_month")
    @classmethod
    def _channels(cls, value: dict[str, int]) -> dict[str, int]:
        known = {c.code for c in registry.channels()}
        for code in value:
            if code not in known:
                raise ValueError(f"unknown channel {code!r}; known: {', '.join(sorted(known))}")
        return value

    @model_validator(mode="after")
    def _whole_minutes(self) -> Policy:
        for name in ("quiet_start", "quiet_end"):
            t = getattr(self, name)
            if t.second or t.microsecond or t.tzinfo is not None:
                raise ValueError(f"{name}: a local time in whole minutes (21:00)")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def quiet(self, local: time) -> bool:
        start, end = self.quiet_start, self.quiet_end
        if start == end:
            return False  # no quiet hours
        if start < end:
            return start <= local < end
        return local >= start or local < end  # across midnight

    def out_of_quiet(self, at: datetime) -> datetime:
        """`at` (stored UTC) if outside quiet hours, else the end of the quiet hours it is
        in, as stored UTC."""
        local = at.replace(tzinfo=UTC).astimezone(self.zone)
        if not self.quiet(local.time()):
            return at
        end = datetime.combine(local.date(), self.quiet_end, tzinfo=self.zone)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self.quiet_end, self.zone)
        return as_stored(end)

    def local_day(self, at: datetime) -> tuple[datetime, datetime]:
        """The local day holding `at`, as stored UTC [start, end)."""
        local = at.replace(tzinfo=UTC).astimezone(self.zone).date()
        start = datetime.combine(local, time(0), tzinfo=self.zone)
        end = datetime.combine(local + timedelta(days=1), time(0), tzinfo=self.zone)
        return as_stored(start), as_stored(end)

    def local_month(self, at: datetime) -> tuple[datetime, datetime]:
        """The local calendar month holding `at`, as stored UTC [start, end)."""
        local = at.replace(tzinfo=UTC).astimezone(self.zone)
        first = local.date().replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        start = datetime.combine(first, time(0), tzinfo=self.zone)
        return as_stored(start), as_stored(datetime.combine(following, time(0), self.zone))


VERSIONS = Versions(messaging_policies, "policy_id", Policy, "policy", "messaging policy")


def parse(doc: object) -> Policy:
    """A policy document, or a ValidationError naming the field and the rule."""
    return parse_document(Policy, doc, "policy")


def save(engine: Engine, group_id: str, policy: Policy, key_id: int | None = None) -> int:
    """Store the policy as the group's next version; returns its id."""
    with engine.begin() as conn:
        return VERSIONS.save_in(conn, group_id, CODE, policy, key_id)[0]


def current(conn: Connection, group_id: str) -> tuple[int | None, Policy]:
    """The group's policy in force and its id (None: the defaults, never saved)."""
    try:
        policy_id, _, policy = VERSIONS.current(conn, group_id, CODE)
    except NotFoundError:
        return None, Policy()
    return policy_id, policy
