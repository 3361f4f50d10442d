"""A campaign as HQ writes it: a validated document, like coupon templates and the loyalty
rules. Saved as a draft, editable until launched; launching fixes it.

Its incentives are coupons, a points bonus and a lottery: a prize pool (lotteries) whose
entry is this campaign, so its treated members who were granted their incentives may
draw and nobody else (the holdout least of all)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, Engine, text

from siyu.campaigns.errors import CampaignState
from siyu.campaigns.models import campaigns
from siyu.errors import NotFoundError, ValidationError
from siyu.ledger.program import Code
from siyu.lotteries import pools
from siyu.store.times import as_stored, stored_now, stored_time

Name = Annotated[str, Field(min_length=1, max_length=128)]
STAGES = ("prospect", "loyal", "at_risk", "lapsed")  # and new_1 .. new_{knee-1}


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Target(_Doc):
    """Who the campaign is for: the members of a stored segment, or of a lifecycle stage
    (exactly one)."""

    segment: Code | None = None
    stage: Code | None = None

    @model_validator(mode="after")
    def _one(self) -> Target:
        if (self.segment is None) == (self.stage is None):
            raise ValueError("give either segment or stage")
        if self.stage is not None and not (self.stage in STAGES or self.stage.startswith("new_")):
            raise ValueError(f"stage: one of {', '.join(STAGES)} or new_<n>")
        return self


class Plan(_Doc):
    code: Code
    name_zh: Name
    name_en: Name
    target: Target
    starts_at: datetime
    ends_at: datetime
    coupons: list[Code] = Field(default_factory=list, max_length=10)  # template codes
    points_bonus: int = Field(default=0, ge=0, le=1_000_000)  # points to each treated member
    # the most the campaign may cost: coupons issued × their cost (as if every one were
    # redeemed), so it is never overrun whatever the redemption rate
    budget_fen: int | None = Field(default=None, ge=1, le=10**13)
    holdout_bp: int = Field(default=1000, ge=0, le=5000)  # basis points kept out
    # a prize pool with entry `campaign` naming this campaign: its granted members draw
    lottery: Code | None = None

    @model_validator(mode="after")
    def _period(self) -> Plan:
        if as_stored(self.ends_at) <= as_stored(self.starts_at):
            raise ValueError("ends_at must be after starts_at")
        if not self.coupons and not self.points_bonus and self.lottery is None:
            raise ValueError("coupons or points_bonus or lottery: a campaign gives something")
        return self


@dataclass(frozen=True)
class Stored:
    campaign_id: int
    plan: Plan
    status: str
    launched_at: datetime | None


def save(engine: Engine, group_id: str, plan: Plan, key_id: int | None) -> Stored:
    """Create the campaign as a draft, or replace a draft's plan; a launched campaign's
    plan is fixed (409 `campaign_state`)."""
    now = stored_now()
    body = plan.model_dump_json()
    with engine.begin() as conn:
        check_lottery(conn, group_id, plan)
        found = conn.execute(
            text("SELECT campaign_id, status FROM campaigns WHERE group_id = :g AND code = :c"),
            {"g": group_id, "c": plan.code},
        ).first()
        if found is None:
            conn.execute(
                campaigns.insert().values(
                    group_id=group_id,
                    code=plan.code,
                    body=body,
                    status="draft",
                    key_id=key_id,
                    created_at=now,
                    updated_at=now,
                )
            )
        elif (
            conn.execute(
                text("""UPDATE campaigns SET body = :b, updated_at = :now, key_id = :k
                    WHERE campaign_id = :i AND status = 'draft'"""),
                {"b": body, "now": now, "k": key_id, "i": found.campaign_id},
            ).rowcount
            != 1
        ):
            raise CampaignState(f"code: campaign {plan.code} is {found.status}; its plan is fixed")
        return load(conn, group_id, plan.code)


def check_lottery(conn: Connection, group_id: str, plan: Plan) -> None:
    """The plan's prize pool exists (404 naming `lottery`) and is this campaign's: entry
    `campaign` naming it (422), as a pool anyone may enter would reach the holdout too."""
    if plan.lottery is None:
        return
    try:
        pool = pools.load(conn, group_id, plan.lottery)
    except NotFoundError:
        raise NotFoundError(f"lottery: no prize pool {plan.lottery!r}") from None
    if pool.entry != "campaign" or pool.campaign != plan.code:
        given = f"campaign {pool.campaign}" if pool.entry == "campaign" else repr(pool.entry)
        raise ValidationError(
            "lottery",
            f"pool {pool.code} must have entry 'campaign' naming campaign {plan.code}; "
            f"it has entry {given}",
        )


_COLUMNS = "campaign_id, body, status, launched_at"


def load(conn: Connection, group_id: str, code: str) -> Stored:
    row = conn.execute(
        text(f"SELECT {_COLUMNS} FROM campaigns WHERE group_id = :g AND code = :c"),
        {"g": group_id, "c": code},
    ).first()
    if row is None:
        raise NotFoundError(f"campaign: no campaign {code!r}")
    return _stored(row)


def listed(conn: Connection, group_id: str) -> list[Stored]:
    rows = conn.execute(
        text(f"""SELECT {_COLUMNS} FROM campaigns WHERE group_id = :g
                 ORDER BY created_at DESC, code"""),
        {"g": group_id},
    )
    return [_stored(row) for row in rows]


def _stored(row: Any) -> Stored:
    launched = None if row.launched_at is None else stored_time(row.launched_at)
    return Stored(
        int(row.campaign_id), Plan.model_validate(json.loads(row.body)), row.status, launched
    )
