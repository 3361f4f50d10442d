"""Segments: HQ defines and evaluates them (`segments:write`); analysts and guides read
them; analysts preview rules while editing (`segments:preview`) and export members for ad
audiences (`segments:export`, CSV in the role's masks).

Members are read from the store (`segment_members`, written by the last evaluation), never
from the warehouse per request; only a preview and an evaluation run on the warehouse
(DuckDB, SIYU_WAREHOUSE), in the thread pool. A guide key lists only its own members of a
segment (the row rule of `segments.lists`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from siyu.analytics.engines import connect
from siyu.analytics.warehouse import Warehouse, open_warehouse
from siyu.api.deps import Services, require, scoped_member, services
from siyu.api.idempotency import Outcome, respond_once
from siyu.api.schemas import MAX_ID, PLAIN, Document, Strict
from siyu.auth.principal import Principal
from siyu.segments import evaluate as runs
from siyu.segments import lists
from siyu.segments import stored as service
from siyu.segments.lists import ListView, MemberCriteria
from siyu.segments.models import NAME_MAX
from siyu.store.times import as_stored, as_utc

router = APIRouter(prefix="/v1", tags=["segments"])
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
MemberId = Annotated[int, PathParam(ge=1, le=MAX_ID)]
SLUG = r"^[a-z0-9][a-z0-9_-]{0,63}$"
Slug = Annotated[str, PathParam(min_length=1, max_length=64, pattern=SLUG)]
Refresh = Literal["nightly", "hourly", "manual", "realtime"]
Rule = Document

_RULE: dict[str, JsonValue] = {
    "version": 1,
    "rule": {
        "all": [
            {"orders": {"within_days": 365, "count": {"gte": 3}}},
            {"not": {"last_order": {"within_days": 60}}},
        ]
    },
}


class SegmentIn(Strict):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "slug": "lapsing-regulars",
                    "name_zh": "流失中的常客",
                    "name_en": "Lapsing regulars",
                    "rule": _RULE,
                }
            ]
        }
    )

    slug: str = Field(pattern=SLUG, description="Unique in the brand group.")
    name_zh: str = Field(min_length=1, max_length=NAME_MAX, pattern=PLAIN)
    name_en: str = Field(min_length=1, max_length=NAME_MAX, pattern=PLAIN)
    rule: Rule = Field(description="A rule document (docs/segments.md).")
    refresh: Refresh = "nightly"
    owner: str | None = Field(
        default=None,
        max_length=128,
        pattern=PLAIN,
        description="Default: the key defining it, `key:<id>`.",
    )


class SegmentChange(Strict):
    name_zh: str | None = Field(default=None, min_length=1, max_length=NAME_MAX, pattern=PLAIN)
    name_en: str | None = Field(default=None, min_length=1, max_length=NAME_MAX, pattern=PLAIN)
    rule: Rule | None = Field(default=None, description="A new rule adds a version.")
    refresh: Refresh | None = None
    owner: str | None = Field(default=None, min_length=1, max_length=128, pattern=PLAIN)


class SegmentOut(BaseModel):
    slug: str
    name_zh: str
    name_en: str
    owner: str
    refresh: Refresh
    version: int = Field(description="The current rule's version.")
    rule: Rule
    size: int | None = Field(description="Members at the last evaluation; null before one.")
    evaluated_at: datetime | None
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class SegmentListOut(BaseModel):
    segments: list[SegmentOut]


class VersionOut(BaseModel):
    version: int
    rule: Rule
    created_by: str
    created_at: datetime


class VersionsOut(BaseModel):
    slug: str
    versions: list[VersionOut]


class PreviewIn(Strict):
    rule: Rule
    as_of: datetime | None = Field(
        default=None, description="Default: the warehouse's newest fact."
    )
    sample: int = Field(default=20, ge=0, le=runs.MAX_SAMPLE)
    exact: bool = Field(
        default=False,
        description="Count every member even past a million (slow); by default larger "
        "brands get an estimate from one member in a hundred.",
    )


class PreviewOut(BaseModel):
    size: int
    sample: list[int] = Field(description="The first member ids, ascending.")
    as_of: datetime
    seconds: float
    estimated: bool = Field(description="size is estimated from a sample of members.")
    size_low: int | None = Field(default=None, description="95% interval of an estimated size.")
    size_high: int | None = None
    sampled_members: int | None = None


class EvaluateIn(Strict):
    as_of: datetime | None = Field(
        default=None, description="Default: the warehouse's newest fact."
    )


class EvaluationOut(BaseModel):
    slug: str
    version: int
    as_of: datetime
    size: int
    entered: int
    left: int
    seconds: float


class EvaluationsOut(BaseModel):
    evaluations: list[EvaluationOut] = Field(
        description="The segment and those it nests, nested first."
    )


class MemberOut(BaseModel):
    member_id: int
    name: str | None = Field(description="Masked whatever the role.")
    phone: str | None = Field(description="Masked unless the role may see it.")
    stage: str | None
    orders: int
    spend_fen: int
    last_order_at: datetime | None
    home_store_id: str | None


class MembersOut(BaseModel):
    total: int = Field(description="Members in the segment (a guide: of its own members).")
    page: int
    per: int
    members: list[MemberOut]


class DayOut(BaseModel):
    day: date
    size: int = Field(description="At the day's last evaluation.")
    entered: int
    left: int


class HistoryOut(BaseModel):
    slug: str
    days: list[DayOut]


class MemberSegmentOut(BaseModel):
    slug: str
    since: datetime


class MemberSegmentsOut(BaseModel):
    member_id: int
    segments: list[MemberSegmentOut]


def _segment(s: service.StoredSegment) -> dict[str, Any]:
    times = {
        k: None if getattr(s, k) is None else as_utc(getattr(s, k))
        for k in ("evaluated_at", "created_at", "updated_at", "archived_at")
    }
    fields = ("slug", "name_zh", "name_en", "owner", "refresh", "version", "rule", "size")
    return {**{k: getattr(s, k) for k in fields}, **times}


def _read(svc: Services, fn: Any, *args: Any, **kwargs: Any) -> Any:
    with svc.engine.connect() as conn:
        return fn(conn, *args, **kwargs)


def _naive(value: datetime | None) -> datetime | None:
    """A time as the store keeps it (naive UTC), or none."""
    return None if value is None else as_stored(value)


@contextmanager
def _warehouse(svc: Services, group_id: str) -> Iterator[tuple[Any, Warehouse]]:
    backend = connect("duckdb")
    try:
        yield backend, open_warehouse(backend, Path(svc.settings.warehouse), group_id)
    finally:
        backend.disconnect()


@router.get("/segments", response_model=SegmentListOut)
async def list_segments(
    archived: Annotated[bool, Query(description="Include archived segments.")] = False,
    who: Principal = Depends(require("segments:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The brand group's segments by slug, with the size at each one's last evaluation."""
    found = await run_in_threadpool(_read, svc, service.list_segments, who.group_id, archived)
    return {"segments": [_segment(s) for s in found]}


@router.post("/segments", response_model=SegmentOut, status_code=201)
async def define(
    body: SegmentIn,
    request: Request,
    idempotency_key: IdemKey = None,
    who: Principal = Depends(require("segments:write")),
    svc: Services = Depends(services),
) -> JSONResponse:
    """Define a segment (version 1). 422 naming the rule's field (`rule.all[1].orders`)
    when the rule is wrong; 409 when the slug is taken."""

    def work() -> Outcome:
        with svc.engine.begin() as conn:
            made = service.define_segment(
                conn,
                who.group_id,
                body.slug,
                name_zh=body.name_zh,
                name_en=body.name_en,
                rule=body.rule,
                owner=body.owner or f"key:{who.key_id}",
                refresh=body.refresh,
            )
        return 201, SegmentOut(**_segment(made)).model_dump(mode="json")

    return await run_in_threadpool(
        respond_once, svc.engine, who.key_id, request, idempotency_key, body, work
    )


@router.post("/segments:preview", response_model=PreviewOut)
async def preview(
    body: PreviewIn,
    who: Principal = Depends(require("segments:preview")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """A rule's size and a sample of member ids now, on the warehouse; writes nothing."""

    def work() -> runs.RulePreview:
        with _warehouse(svc, who.group_id) as (backend, wh):
            return runs.preview_rule(
                svc.engine, backend, wh, body.rule, _naive(body.as_of), body.sample, body.exact
            )

    found = await run_in_threadpool(work)
    return {**found.__dict__, "as_of": as_utc(found.as_of)}


@router.get("/segments/{slug}", response_model=SegmentOut)
async def segment(
    slug: Slug,
    who: Principal = Depends(require("segments:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    return _segment(await run_in_threadpool(_read, svc, service.get_segment, who.group_id, slug))


@router.patch("/segments/{slug}", response_model=SegmentOut)
async def change(
    slug: Slug,
    body: SegmentChange,
    who: Principal = Depends(require("segments:write")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Change labels, owner or refresh; a different rule adds a version."""
    fields = body.model_dump(exclude_none=True)

    def work() -> service.StoredSegment:
        with svc.engine.begin() as conn:
            return service.update_segment(
                conn, who.group_id, slug, by=f"key:{who.key_id}", **fields
            )

    return _segment(await run_in_threadpool(work))


@router.delete("/segments/{slug}", response_model=SegmentOut)
async def archive(
    slug: Slug,
    who: Principal = Depends(require("segments:write")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Archive: members and history stay readable, no more evaluations. 409 while another
    live segment nests it."""

    def work() -> service.StoredSegment:
        with svc.engine.begin() as conn:
            return service.archive_segment(conn, who.group_id, slug)

    return _segment(await run_in_threadpool(work))


@router.get("/segments/{slug}/versions", response_model=VersionsOut)
async def versions(
    slug: Slug,
    who: Principal = Depends(require("segments:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    found = await run_in_threadpool(_read, svc, service.segment_versions_of, who.group_id, slug)
    return {
        "slug": slug,
        "versions": [{**v.__dict__, "created_at": as_utc(v.created_at)} for v in found],
    }


@router.post("/segments/{slug}:evaluate", response_model=EvaluationsOut)
async def evaluate(
    slug: Slug,
    body: EvaluateIn | None = None,
    who: Principal = Depends(require("segments:write")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Evaluate now on the warehouse and write the members back (and those of the
    segments it nests, first)."""
    as_of = _naive((body or EvaluateIn()).as_of)

    def work() -> list[runs.Evaluation]:
        with _warehouse(svc, who.group_id) as (backend, wh):
            return runs.evaluate_segments(svc.engine, backend, wh, [slug], as_of, "manual")

    done = await run_in_threadpool(work)
    return {
        "evaluations": [
            {
                **{k: v for k, v in e.__dict__.items() if k != "evaluation_id"},
                "as_of": as_utc(e.as_of),
            }
            for e in done
        ]
    }


@router.get("/segments/{slug}/members", response_model=MembersOut)
async def members(
    slug: Slug,
    page: Annotated[int, Query(ge=1, le=10**7)] = 1,
    per: Annotated[int, Query(ge=1, le=200)] = 50,
    sort: Annotated[Literal["last_order", "orders", "spend", "member_id"], Query()] = "member_id",
    direction: Annotated[Literal["asc", "desc"], Query(alias="dir")] = "asc",
    who: Principal = Depends(require("segments:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The segment's members now (its last evaluation), paged and sorted as every member
    list is; names masked, phones as the role may see them."""
    await run_in_threadpool(_read, svc, service.get_segment, who.group_id, slug)  # 404
    view = ListView(sort, direction == "desc", page, per)
    async with svc.reads.connection() as reader:
        found = await lists.member_page(reader, svc.vault, who, MemberCriteria(segment=slug), view)
    return {
        "total": found.total,
        "page": page,
        "per": per,
        "members": [
            {
                **{k: v for k, v in r.__dict__.items() if k != "phone_masked"},
                "last_order_at": None if r.last_order_at is None else as_utc(r.last_order_at),
            }
            for r in found.rows
        ],
    }


@router.get(
    "/segments/{slug}/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "The members as CSV."}},
)
async def export(
    slug: Slug,
    who: Principal = Depends(require("segments:export")),
    svc: Services = Depends(services),
) -> StreamingResponse:
    """The segment's members as CSV (UTF-8 with BOM, for spreadsheets), in the role's
    masks: the file an ad platform's audience upload takes member ids from."""
    await run_in_threadpool(_read, svc, service.get_segment, who.group_id, slug)  # 404
    criteria = MemberCriteria(segment=slug)

    async def rows() -> AsyncIterator[bytes]:
        async with svc.reads.connection() as reader:
            async for chunk in lists.export_csv(reader, svc.vault, who, criteria, ListView()):
                yield chunk.encode("utf-8")

    response = StreamingResponse(rows(), media_type="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="segment-{slug}.csv"'
    return response


@router.get("/segments/{slug}/history", response_model=HistoryOut)
async def history(
    slug: Slug,
    days: Annotated[int, Query(ge=1, le=3660)] = 90,
    who: Principal = Depends(require("segments:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Size per day (the day's last evaluation) with the day's enters and leaves."""
    found = await run_in_threadpool(runs.size_history, svc.engine, who.group_id, slug, days)
    return {"slug": slug, "days": [d.__dict__ for d in found]}


@router.get("/members/{member_id}/segments", response_model=MemberSegmentsOut)
async def member_segments(
    member_id: MemberId,
    who: Principal = Depends(require("segments:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The live segments the member is in now, and since when."""
    target = await scoped_member(svc, who, member_id)
    found = await run_in_threadpool(runs.member_segments, svc.engine, who.group_id, target)
    return {
        "member_id": target,
        "segments": [{"slug": s, "since": as_utc(t)} for s, t in found],
    }
