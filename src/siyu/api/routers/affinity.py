"""The affinity score over HTTP: a member's score explained behaviour by behaviour
(`affinity:read`: HQ, a store for its members, a guide for its own; `auth.scope`), and the
group's affinity rules, read and replaced like the loyalty rules (`loyalty:read-rules`,
`loyalty:write-rules`: HQ). A refused document answers 422 naming each field and rule.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from siyu.api.deps import Services, require, scoped_member, services
from siyu.api.schemas import MAX_ID
from siyu.auth.principal import Principal
from siyu.segments.affinity import AffinityRules, affinity_rules, explain, save_rules
from siyu.store.times import as_utc

router = APIRouter(prefix="/v1", tags=["affinity"])
MemberId = Annotated[int, Path(ge=1, le=MAX_ID)]


class PartOut(BaseModel):
    behaviour: str = Field(description="An event type, 'orders' or 'spend_per_100_yuan'.")
    count: float = Field(description="Events or orders in the window; spend: hundreds of yuan")
    decayed: float = Field(description="The count after decay (= count without a half-life)")
    coefficient: float
    points: float = Field(description="coefficient × decayed")


class AffinityOut(BaseModel):
    member_id: int
    as_of: datetime
    rules_version: int = Field(description="0 while the group runs on the default rules")
    window_days: int
    half_life_days: int | None
    score: float
    band: str | None = Field(description="The auto.affinity value this score reads as")
    parts: list[PartOut]


class AffinityRulesOut(BaseModel):
    version: int = Field(description="0 while the group runs on the defaults")
    rules: AffinityRules


@router.get("/members/{member_id}/affinity", response_model=AffinityOut)
async def member_affinity(
    member_id: MemberId,
    who: Principal = Depends(require("affinity:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The member's affinity score now, with what each behaviour adds (a merged member's
    id answers for its survivor)."""
    target = await scoped_member(svc, who, member_id)
    found = await run_in_threadpool(explain, svc.engine, who.group_id, target)
    return {
        "member_id": found.member_id,
        "as_of": as_utc(found.as_of),
        "rules_version": found.version,
        "window_days": found.window_days,
        "half_life_days": found.half_life_days,
        "score": found.score,
        "band": found.band,
        "parts": [vars(p) for p in found.parts],
    }


@router.get("/affinity/rules", response_model=AffinityRulesOut)
async def get_affinity_rules(
    who: Principal = Depends(require("loyalty:read-rules")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The coefficient per behaviour, the window, the half-life and the bands in force."""
    return await run_in_threadpool(_rules, svc, who.group_id)


@router.put("/affinity/rules", response_model=AffinityRulesOut)
async def put_affinity_rules(
    body: AffinityRules,
    who: Principal = Depends(require("loyalty:write-rules")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Replace the affinity rules (HQ): a new version; scores use it at once, and
    `auto.affinity` at the next tag refresh."""
    await run_in_threadpool(save_rules, svc.engine, who.group_id, body, who.key_id)
    return await run_in_threadpool(_rules, svc, who.group_id)


def _rules(svc: Services, group_id: str) -> dict[str, Any]:
    with svc.engine.connect() as conn:
        version, rules = affinity_rules(conn, group_id)
    return {"version": version, "rules": rules}
