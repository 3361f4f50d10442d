"""Tags: HQ defines them (`tags:define`); HQ and guides set manual tags on members
(`tags:write`, a guide on its own members only: `auth.scope`, 403 out of scope); analysts
read. A merged member's id stands for its survivor, whose tags are answered.

No personal data is in a tag or its history: members are ids, `set_by` is `key:<id>`,
`system`, `import:<batch>` or `merge:<id>`. Writes take an optional Idempotency-Key, like
the other POSTs: a retry with the same key is answered from the first response.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, JsonValue

from siyu.api.deps import Services, require, scoped_member, services
from siyu.api.idempotency import Outcome, respond_once
from siyu.api.schemas import MAX_ID, PLAIN, Document, Strict
from siyu.auth.principal import Principal, Role
from siyu.segments import tags as service
from siyu.segments.models import NAME_MAX, SLUG_PATTERN, VALUE_MAX
from siyu.store.times import as_utc

router = APIRouter(prefix="/v1", tags=["tags"])
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
MemberId = Annotated[int, Path(ge=1, le=MAX_ID)]
Slug = Annotated[str, Path(min_length=1, max_length=64, pattern=rf"^{SLUG_PATTERN}$")]
Kind = Literal["automatic", "manual", "imported"]
Refresh = Literal["nightly", "hourly", "manual", "on_import"]

_TAG: dict[str, JsonValue] = {
    "slug": "vip",
    "name_zh": "贵宾",
    "name_en": "VIP",
    "kind": "manual",
    "definition": {},
    "owner": "key:3",
    "refresh": "manual",
    "members": 120,
    "created_at": "2024-06-01T02:00:00Z",
    "updated_at": "2024-06-01T02:00:00Z",
    "archived_at": None,
}


class TagIn(Strict):
    slug: str = Field(pattern=rf"^{SLUG_PATTERN}$", description="Unique in the brand group.")
    name_zh: str = Field(min_length=1, max_length=NAME_MAX, pattern=PLAIN)
    name_en: str = Field(min_length=1, max_length=NAME_MAX, pattern=PLAIN)
    kind: Kind = "manual"
    refresh: Refresh | None = Field(
        default=None, description="Default: nightly (automatic), on_import, manual."
    )
    definition: Document | None = Field(
        default=None, description="Automatic: the rule or computation; imported: the source."
    )
    owner: str | None = Field(
        default=None,
        max_length=128,
        pattern=PLAIN,
        description="Default: the key defining it, `key:<id>`.",
    )


class TagOut(BaseModel):
    model_config = {"json_schema_extra": {"examples": [_TAG]}}

    slug: str
    name_zh: str
    name_en: str
    kind: Kind
    definition: dict[str, JsonValue]
    owner: str
    refresh: Refresh
    members: int = Field(description="Members holding it now.")
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class TagListOut(BaseModel):
    tags: list[TagOut]


class HolderOut(BaseModel):
    member_id: int
    value: str | None
    set_by: str
    set_at: datetime


class HoldersOut(BaseModel):
    total: int = Field(description="Members holding the tag (a guide: of its own members).")
    members: list[HolderOut]
    next_after: int | None = Field(description="Pass as `after` for the next page.")


class HeldOut(BaseModel):
    slug: str
    kind: Kind
    value: str | None
    set_by: str = Field(description="`key:<id>`, `system`, `import:<batch>`, `merge:<id>`.")
    set_at: datetime


class MemberTagsOut(BaseModel):
    member_id: int = Field(description="The member answered for (a merged id's survivor).")
    tags: list[HeldOut]


class ChangeOut(BaseModel):
    slug: str
    member_id: int
    change: Literal["enter", "leave", "value"]
    value: str | None
    by: str
    at: datetime


class HistoryOut(BaseModel):
    member_id: int
    changes: list[ChangeOut] = Field(description="Newest first.")


class SetIn(Strict):
    value: str | None = Field(default=None, max_length=VALUE_MAX, pattern=r"^[^\x00-\x1f]*$")


class UnsetIn(Strict):
    """No fields: accepted for the idempotency record."""


class SetOut(BaseModel):
    member_id: int
    slug: str
    change: Literal["enter", "value", "leave", "none"] = Field(
        description="What changed; `none`: the member held it so already (or did not hold it)."
    )


def _actor(who: Principal) -> str:
    return f"key:{who.key_id}"


def _tag(t: service.Tag) -> dict[str, Any]:
    return {
        **{
            k: getattr(t, k)
            for k in ("slug", "name_zh", "name_en", "kind", "definition", "owner", "refresh")
        },
        "members": t.members,
        "created_at": as_utc(t.created_at),
        "updated_at": as_utc(t.updated_at),
        "archived_at": None if t.archived_at is None else as_utc(t.archived_at),
    }


def _read(svc: Services, fn: Any, *args: Any, **kwargs: Any) -> Any:
    with svc.engine.connect() as conn:
        return fn(conn, *args, **kwargs)


@router.get("/tags", response_model=TagListOut)
async def list_tags(
    archived: Annotated[bool, Query(description="Include archived tags.")] = False,
    who: Principal = Depends(require("tags:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The brand group's tags by slug, each with how many members hold it."""
    found = await run_in_threadpool(_read, svc, service.list_tags, who.group_id, archived)
    return {"tags": [_tag(t) for t in found]}


@router.post("/tags", response_model=TagOut, status_code=201)
async def define(
    body: TagIn,
    request: Request,
    idempotency_key: IdemKey = None,
    who: Principal = Depends(require("tags:define")),
    svc: Services = Depends(services),
) -> JSONResponse:
    """Define a tag. 422 naming the field when a field breaks a rule or the slug is taken."""

    def work() -> Outcome:
        with svc.engine.begin() as conn:
            made = service.define_tag(
                conn,
                who.group_id,
                body.slug,
                name_zh=body.name_zh,
                name_en=body.name_en,
                kind=body.kind,
                owner=body.owner or _actor(who),
                refresh=body.refresh,
                definition=body.definition,
            )
        return 201, TagOut(**_tag(made)).model_dump(mode="json")

    return await run_in_threadpool(
        respond_once, svc.engine, who.key_id, request, idempotency_key, body, work
    )


@router.get("/tags/{slug}", response_model=TagOut)
async def tag(
    slug: Slug,
    who: Principal = Depends(require("tags:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    return _tag(await run_in_threadpool(_read, svc, service.get_tag, who.group_id, slug))


@router.get("/tags/{slug}/members", response_model=HoldersOut)
async def tag_members(
    slug: Slug,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="next_after of the page before")
    ] = None,
    who: Principal = Depends(require("tags:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The members holding the tag, by member id; a guide key sees its own members only."""
    guide = who.guide_id if who.role == Role.GUIDE else None
    total, page, next_after = await run_in_threadpool(
        _read, svc, service.tag_members, who.group_id, slug, limit, after, guide
    )
    return {
        "total": total,
        "members": [{**h.__dict__, "set_at": as_utc(h.set_at)} for h in page],
        "next_after": next_after,
    }


@router.get("/members/{member_id}/tags", response_model=MemberTagsOut)
async def member_tags(
    member_id: MemberId,
    who: Principal = Depends(require("tags:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The tags the member holds, with who set each and when."""
    target = await scoped_member(svc, who, member_id)
    held = await run_in_threadpool(_read, svc, service.member_tag_list, who.group_id, target)
    return {
        "member_id": target,
        "tags": [{**h.__dict__, "set_at": as_utc(h.set_at)} for h in held],
    }


@router.get("/members/{member_id}/tags/history", response_model=HistoryOut)
async def member_tag_history(
    member_id: MemberId,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    who: Principal = Depends(require("tags:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Every tag the member entered, left or changed value in, newest first."""
    target = await scoped_member(svc, who, member_id)

    def read() -> list[service.Change]:
        with svc.engine.connect() as conn:
            return service.history(conn, who.group_id, member_id=target, limit=limit)

    changes = await run_in_threadpool(read)
    return {
        "member_id": target,
        "changes": [{**c.__dict__, "at": as_utc(c.at)} for c in changes],
    }


@router.put("/members/{member_id}/tags/{slug}", response_model=SetOut)
async def set_tag(
    member_id: MemberId,
    slug: Slug,
    request: Request,
    body: SetIn | None = None,
    idempotency_key: IdemKey = None,
    who: Principal = Depends(require("tags:write")),
    svc: Services = Depends(services),
) -> JSONResponse:
    """Give the member a manual tag (with an optional value). Setting it again is a no-op
    (`change: none`); 422 when the tag is not manual or is archived."""
    target = await scoped_member(svc, who, member_id)
    given = body or SetIn()

    def work() -> Outcome:
        with svc.engine.begin() as conn:
            change = service.set_member_tag(
                conn, who.group_id, slug, target, _actor(who), given.value
            )
        return 200, {"member_id": target, "slug": slug, "change": change}

    return await run_in_threadpool(
        respond_once, svc.engine, who.key_id, request, idempotency_key, given, work
    )


@router.delete("/members/{member_id}/tags/{slug}", response_model=SetOut)
async def unset_tag(
    member_id: MemberId,
    slug: Slug,
    request: Request,
    idempotency_key: IdemKey = None,
    who: Principal = Depends(require("tags:write")),
    svc: Services = Depends(services),
) -> JSONResponse:
    """Take a manual tag from the member; a member without it is a no-op (`change: none`)."""
    target = await scoped_member(svc, who, member_id)

    def work() -> Outcome:
        with svc.engine.begin() as conn:
            gone = service.unset_member_tag(conn, who.group_id, slug, target, _actor(who))
        return 200, {"member_id": target, "slug": slug, "change": "leave" if gone else "none"}

    return await run_in_threadpool(
        respond_once, svc.engine, who.key_id, request, idempotency_key, UnsetIn(), work
    )
