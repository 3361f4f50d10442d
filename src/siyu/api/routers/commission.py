"""Guides' commission (guides/commission_*.py): HQ sets the rules, runs the accrual and the
release for a period and pays a guide; statements per guide and per store. A guide key
reads only its own commission, a store key its stores' guides, HQ (admin, analyst) all.

The jobs are idempotent by the ledger's keys (a re-run posts nothing twice), so they take
no Idempotency-Key of their own."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy import text

from siyu.api.deps import Services, require, services
from siyu.api.problems import Problem
from siyu.api.schemas import Strict
from siyu.auth.principal import Principal, Role
from siyu.guides import commission_accrual as jobs
from siyu.guides.commission_rules import CommissionRules, save, stored
from siyu.guides.commission_statements import Statement, Totals, statement
from siyu.store.times import as_stored, as_utc

router = APIRouter(prefix="/v1", tags=["commission"])
Ident = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f/]*$")]
Month = Annotated[str, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM")]
HQ = (Role.ADMIN, Role.ANALYST)


class RulesOut(BaseModel):
    version: int = Field(description="0: the defaults (no commission).")
    rules: CommissionRules


class AccrueIn(Strict):
    since: datetime
    until: datetime


class AccrueOut(BaseModel):
    accrued: int
    accrued_fen: int
    already: int
    no_commission: int
    clawbacks: int
    clawed_back_fen: int


class ReleaseIn(Strict):
    at: datetime | None = Field(default=None, description="Default: now.")


class ReleaseOut(BaseModel):
    released: int = Field(description="Orders released by this run.")
    released_fen: int
    postings: int = Field(description="Release postings written: one per guide (and store).")


class PayIn(Strict):
    month: str = Field(pattern=r"^\d{4}-\d{2}$", description="The statement it settles.")


class PayOut(BaseModel):
    guide_id: str
    month: str
    paid_fen: int = Field(description="0: this month was paid already, or nothing payable.")


class TotalsOut(BaseModel):
    accrued_fen: int
    clawed_back_fen: int
    commission_fen: int = Field(description="Accrued less clawed back: the sum of the lines.")
    released_fen: int
    paid_fen: int
    closing: dict[str, int] = Field(description="Each account's balance at the month's end.")


class LineOut(BaseModel):
    posting_id: int = Field(
        description="The ledger posting that carries the line. An accrual posting is one "
        "per guide, store and month of a run, listed as a line per order: its lines share it."
    )
    kind: str
    reference: str | None = Field(
        description="The order (accrual, clawback); 'pay:<month>' (payment); null for a "
        "release, which is one posting per guide and run of `orders` orders."
    )
    store_id: str | None
    business_at: datetime
    commission_fen: int
    frozen_fen: int
    payable_fen: int
    paid_fen: int
    orders: int = Field(description="A release: the orders it released; else 0.")


class StatementOut(BaseModel):
    month: str
    guide_id: str | None
    store_id: str | None
    totals: TotalsOut
    by_guide: dict[str, TotalsOut]
    lines: list[LineOut]


@router.get("/commission/rules", response_model=RulesOut)
async def get_rules(
    who: Principal = Depends(require("commission:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The commission rules in force (rate or fixed fen by brand, channel, category,
    campaign and guide class; the most specific rule wins; the freeze in days)."""
    return await run_in_threadpool(_rules, svc, who.group_id)


@router.put("/commission/rules", response_model=RulesOut)
async def put_rules(
    body: CommissionRules,
    who: Principal = Depends(require("commission:write")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Replace the commission rules (HQ); every version is kept. Orders already accrued
    keep their commission."""
    await run_in_threadpool(save, svc.engine, who.group_id, body, who.key_id)
    return await run_in_threadpool(_rules, svc, who.group_id)


def _rules(svc: Services, group_id: str) -> dict[str, Any]:
    with svc.engine.connect() as conn:
        version, rules = stored(conn, group_id)
    return {"version": version, "rules": rules}


@router.post("/commission:accrue", response_model=AccrueOut)
async def accrue(
    body: AccrueIn,
    who: Principal = Depends(require("commission:write")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Accrue the commission of the orders placed in [since, until) and claw back their
    refunds; safe to re-run."""
    if body.until <= body.since:
        raise Problem(422, "Invalid period", "until: must be after since", "validation_failed")
    run = await run_in_threadpool(
        jobs.accrue, svc.engine, who.group_id, as_stored(body.since), as_stored(body.until)
    )
    return vars(run)


@router.post("/commission:release", response_model=ReleaseOut)
async def release(
    body: ReleaseIn | None = None,
    who: Principal = Depends(require("commission:write")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Make payable what has come out of its freeze by `at`; safe to re-run."""
    at = None if body is None or body.at is None else as_stored(body.at)
    return vars(await run_in_threadpool(jobs.release, svc.engine, who.group_id, at))


@router.post("/guides/{guide_id}/commission:pay", response_model=PayOut)
async def pay(
    guide_id: Ident,
    body: PayIn,
    who: Principal = Depends(require("commission:write")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Pay the guide what is payable, once per statement month."""
    paid = await run_in_threadpool(jobs.pay, svc.engine, who.group_id, guide_id, body.month)
    return {"guide_id": guide_id, "month": body.month, "paid_fen": paid}


@router.get("/guides/{guide_id}/commission", response_model=StatementOut)
async def guide_statement(
    guide_id: Ident,
    month: Month,
    who: Principal = Depends(require("commission:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The guide's statement of `month`: every posting as a line, totals that are their
    sums, the accounts' balances at the month's end."""

    def work() -> Statement:
        with svc.engine.connect() as conn:
            if who.role == Role.GUIDE and who.guide_id != guide_id:
                raise _forbidden("a guide key reads only its own commission")
            if who.role == Role.STORE:
                home = conn.execute(
                    text("SELECT store_id FROM guides WHERE group_id = :g AND guide_id = :i"),
                    {"g": who.group_id, "i": guide_id},
                ).scalar()
                if home not in who.stores:
                    raise _forbidden("a store key reads only its own stores' guides")
            return statement(conn, who.group_id, month, guide_id=guide_id)

    return _out(await run_in_threadpool(work))


@router.get("/stores/{store_id}/commission", response_model=StatementOut)
async def store_statement(
    store_id: Ident,
    month: Month,
    who: Principal = Depends(require("commission:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The store's statement of `month`: its guides' commission (postings made while the
    guide was at the store), per guide and in total."""
    if who.role == Role.GUIDE:
        raise _forbidden("a guide key reads only its own commission")
    if who.role == Role.STORE and store_id not in who.stores:
        raise _forbidden("a store key reads only its own stores")

    def work() -> Statement:
        with svc.engine.connect() as conn:
            return statement(conn, who.group_id, month, store_id=store_id)

    return _out(await run_in_threadpool(work))


def _forbidden(detail: str) -> Problem:
    return Problem(403, "Forbidden", detail, "forbidden")


def _totals(t: Totals) -> dict[str, Any]:
    return vars(t)


def _out(s: Statement) -> dict[str, Any]:
    return {
        "month": s.month,
        "guide_id": s.guide_id,
        "store_id": s.store_id,
        "totals": _totals(s.totals),
        "by_guide": {g: _totals(t) for g, t in s.by_guide.items()},
        "lines": [{**vars(x), "business_at": as_utc(x.business_at)} for x in s.lines],
    }
