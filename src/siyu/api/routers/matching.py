"""OneID's review queue: the member pairs probabilistic matching was unsure of, for HQ to
accept (the pair merges, undoable with /v1/merges/{id}:undo) or reject (the pair is never
proposed again). Analysts read the queue with personal data masked; admins decide."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from siyu.api.deps import Services, require, services
from siyu.api.idempotency import Outcome, respond_once
from siyu.api.schemas import MAX_ID, MemberOut, Strict
from siyu.auth.principal import Principal
from siyu.identity.matching.review import (
    Decision,
    Review,
    accept_review,
    actor,
    get_review,
    list_reviews,
    reject_review,
)
from siyu.store.times import as_utc

router = APIRouter(prefix="/v1/oneid", tags=["oneid"])
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
ReviewId = Annotated[int, Path(ge=1, le=MAX_ID)]
Status = Literal["pending", "accepted", "rejected", "merged", "undone"]

_FIELDS: list[JsonValue] = [
    {"field": "name", "level": "exact", "weight": 6.5},
    {"field": "phone", "level": "one digit off", "weight": 4.2},
    {"field": "city", "level": "different", "weight": -1.3},
]
_REVIEW: dict[str, JsonValue] = {
    "review_id": 12,
    "member_a": 1001,
    "member_b": 2077,
    "name_a": "王*明",
    "name_b": "王*明",
    "match_weight": 9.4,
    "match_probability": 0.9985,
    "status": "pending",
    "model_id": 3,
    "merge_id": None,
    "detected_at": "2024-06-01T02:00:00Z",
    "decided_at": None,
    "decided_by": None,
    "fields": _FIELDS,
}


class FieldWeightOut(BaseModel):
    field: str = Field(description="The field compared (name, birth_date, phone, city, ...).")
    level: str = Field(description="How the two values compared: a label, never a value.")
    weight: float = Field(
        description="The match weight this field added: log2 of its Bayes factor; "
        "negative weighs against the match."
    )


class ReviewOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_REVIEW]})

    review_id: int
    member_a: int = Field(description="The lower member id of the pair, as scored.")
    member_b: int
    name_a: str | None = Field(description="Masked, whoever reads.")
    name_b: str | None = Field(description="Masked, whoever reads.")
    match_weight: float = Field(description="Sum of the field weights and the prior, log2.")
    match_probability: float
    status: Status
    model_id: int | None = Field(description="The trained model that scored the pair.")
    merge_id: int | None = Field(description="The merge an acceptance (or auto-merge) made.")
    detected_at: datetime
    decided_at: datetime | None
    decided_by: str | None = Field(description="`key:<id>`: the API key that decided.")
    fields: list[FieldWeightOut]


class ReviewListOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"total": 1, "reviews": [_REVIEW], "next_after": None}]}
    )

    total: int = Field(description="Reviews in this status.")
    reviews: list[ReviewOut]
    next_after: int | None = Field(description="Pass as `after` for the next page.")


class ReviewSideOut(BaseModel):
    member_id: int = Field(description="The member as scored.")
    current_id: int = Field(
        description="The member holding it now: itself, or the member it was merged into."
    )
    postcode: str | None
    member: MemberOut = Field(description="The current member's profile, masked per role.")


class ReviewDetailOut(ReviewOut):
    same_member: bool = Field(description="One member already: accepting changes nothing.")
    members: list[ReviewSideOut] = Field(description="Both members, side by side (a, b).")


class DecideIn(Strict):
    """No fields: the decision is the path; a body is accepted for the idempotency record."""


class DecisionOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"review_id": 12, "status": "accepted", "merge_id": 77, "survivor_id": 1001}
            ]
        }
    )

    review_id: int
    status: Literal["accepted", "rejected"]
    merge_id: int | None = Field(
        description="Undo with /v1/merges/{merge_id}:undo; null: rejected, or one member already."
    )
    survivor_id: int | None


@router.get("/reviews", response_model=ReviewListOut)
async def reviews(
    status: Annotated[Status, Query(description="pending (the queue) or a decided status")] = (
        "pending"
    ),
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    after: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="next_after of the page before")
    ] = None,
    who: Principal = Depends(require("reviews:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The review queue (or decided reviews), strongest match first."""
    async with svc.reads.connection() as reader:
        page = await list_reviews(reader, who.group_id, status, limit, after)
    return {
        "total": page.total,
        "reviews": [_review(r) for r in page.reviews],
        "next_after": page.next_after,
    }


@router.get("/reviews/{review_id}", response_model=ReviewDetailOut)
async def review(
    review_id: ReviewId,
    who: Principal = Depends(require("reviews:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """One pair, both members side by side (personal data masked unless the role may see
    it), with the match weight of each field compared."""
    async with svc.reads.connection() as reader:
        found = await get_review(reader, svc.vault, who, review_id)
    return {
        **_review(found.review),
        "same_member": found.same_member,
        "members": [
            {
                "member_id": side.member_id,
                "current_id": side.current_id,
                "postcode": side.postcode,
                "member": side.profile,
            }
            for side in found.sides
        ],
    }


@router.post("/reviews/{review_id}:accept", response_model=DecisionOut)
async def accept(
    review_id: ReviewId,
    request: Request,
    idempotency_key: IdemKey = None,
    body: DecideIn | None = None,
    who: Principal = Depends(require("reviews:decide")),
    svc: Services = Depends(services),
) -> JSONResponse:
    """Accept the pair: the two members merge (the older survives; balances follow), an
    evidence link keeps them one member in later OneID runs. 409 if already decided or if
    a strong identifier (two unionids) refuses the pair."""

    def work() -> Outcome:
        decided = accept_review(
            svc.engine, who.group_id, review_id, actor(who), svc.settings.strong_identity_types
        )
        return 200, _decision(decided)

    return await _once(svc, who, request, idempotency_key, body, work)


@router.post("/reviews/{review_id}:reject", response_model=DecisionOut)
async def reject(
    review_id: ReviewId,
    request: Request,
    idempotency_key: IdemKey = None,
    body: DecideIn | None = None,
    who: Principal = Depends(require("reviews:decide")),
    svc: Services = Depends(services),
) -> JSONResponse:
    """Reject the pair: both stay as they are, and no later run proposes them again."""

    def work() -> Outcome:
        return 200, _decision(reject_review(svc.engine, who.group_id, review_id, actor(who)))

    return await _once(svc, who, request, idempotency_key, body, work)


async def _once(
    svc: Services,
    who: Principal,
    request: Request,
    key: str | None,
    body: DecideIn | None,
    work: Any,
) -> JSONResponse:
    given = body or DecideIn()
    return await run_in_threadpool(respond_once, svc.engine, who.key_id, request, key, given, work)


def _review(r: Review) -> dict[str, Any]:
    return {
        **{
            k: getattr(r, k)
            for k in (
                "review_id",
                "member_a",
                "member_b",
                "name_a",
                "name_b",
                "match_weight",
                "match_probability",
                "status",
                "model_id",
                "merge_id",
                "decided_by",
            )
        },
        "detected_at": as_utc(r.detected_at),
        "decided_at": None if r.decided_at is None else as_utc(r.decided_at),
        "fields": [asdict(f) for f in r.fields],
    }


def _decision(d: Decision) -> dict[str, Any]:
    return asdict(d)
