"""Members: lookup by any identifier, profile, bind an identity, merge and unmerge."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool

from siyu.api.deps import Services, member_in_scope, require, scoped_member, services
from siyu.api.idempotency import respond_once
from siyu.api.problems import Problem
from siyu.api.schemas import MAX_ID, BindIn, BindOut, MemberOut, MergeIn, MergeOut, UndoIn, UndoOut
from siyu.auth.principal import Principal, Role
from siyu.catalog.models import CHANNELS
from siyu.errors import ValidationError
from siyu.identity.ingest import Encoded
from siyu.identity.profile import LOOKUP, PROFILE, render_profile
from siyu.identity.queries import BRAND_EXISTS, MEMBER_BRAND, anchor_encoded
from siyu.identity.service import attach_identity, merge_members, unmerge
from siyu.identity.types import IDENTITY_TYPES, scope_of
from siyu.ledger.models import ASSETS
from siyu.ledger.queries import BALANCES, TIERS
from siyu.store.reads import Reader
from siyu.store.times import as_utc, stored_now

router = APIRouter(prefix="/v1", tags=["members"])
IdemKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("/members/lookup", response_model=MemberOut)
async def lookup(
    type: Annotated[str, Query(min_length=1, max_length=32, description="identity type")],
    value: Annotated[str, Query(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f]*$")],
    scope: Annotated[
        str | None,
        Query(max_length=64, description="a card's brand, an openid's app, ...; any if left out"),
    ] = None,
    who: Principal = Depends(require("members:lookup")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The member an identifier (phone, card, openid, Tmall ouid, ...) belongs to. Without
    `scope` a scoped identifier is looked up in every scope; when two members hold it (one
    card number in two brands) the answer is a 422 asking for the scope."""
    ident = svc.encoder().encode(type, value)
    wanted = None if scope is None else scope_of(type, scope, field="scope")
    async with svc.reads.connection() as reader:  # one connection for the whole request
        params = {"g": who.group_id, "t": ident.type, "k": ident.key, "s": wanted}
        rows = await reader.all(LOOKUP, params)
        if not rows:
            raise Problem(404, "Not found", "no member has this identifier", "not_found")
        if rows[0].member_id != rows[-1].member_id:
            raise ValidationError(
                "scope", f"members of several scopes hold this {type}: name the scope"
            )
        if rows[0].status == "active" and who.role in GROUP_WIDE:
            return _render(svc, who, rows)  # the common case: one query in all
        member_id = await member_in_scope(reader, who, int(rows[0].member_id))
        return _render(svc, who, await reader.all(PROFILE, {"g": who.group_id, "m": member_id}))


@router.get("/members/{member_id}", response_model=MemberOut)
async def profile(
    member_id: PathId,
    who: Principal = Depends(require("members:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """A member's profile and identities; personal data masked unless the role may see it.
    A merged member id answers with the surviving member."""
    async with svc.reads.connection() as reader:
        member_id = await member_in_scope(reader, who, member_id)
        params = {"g": who.group_id, "m": member_id}
        found = _render(svc, who, await reader.all(PROFILE, params))
        found["tiers"] = [
            {
                "scope": r.scope_key,
                "tier": r.tier_code,
                "since": as_utc(r.since),
                "grace_until": None if r.grace_until is None else as_utc(r.grace_until),
            }
            for r in await reader.all(TIERS, params)
        ]
        # as of now: points past their date never count (the ledger's balances read)
        as_of = {**params, "now": stored_now()}
        held = {r.asset: int(r.balance) for r in await reader.all(BALANCES, as_of)}
        found["balances"] = {asset: held.get(asset, 0) for asset in ASSETS}
        return found


@router.post("/members/{member_id}/identities", response_model=BindOut)
async def bind_identity(
    member_id: PathId,
    body: BindIn,
    request: Request,
    idempotency_key: IdemKey = None,
    who: Principal = Depends(require("identities:bind")),
    svc: Services = Depends(services),
) -> Any:
    """Bind an identifier to a member (incremental OneID): if it already belongs to another
    member, the two merge (the older survives) unless the policy refuses (409)."""
    if body.type not in IDENTITY_TYPES:
        raise Problem(
            422,
            "Invalid input",
            f"type: unknown identity type {body.type!r}",
            "validation_failed",
            [{"field": "type", "rule": "known identity type"}],
        )
    if body.channel not in CHANNELS:
        raise Problem(
            422,
            "Invalid input",
            f"channel: unknown channel {body.channel!r}",
            "validation_failed",
            [{"field": "channel", "rule": "known channel"}],
        )
    if who.role == Role.CHANNEL and body.channel != who.channel:
        raise Problem(
            403, "Forbidden", f"channel: this key binds for {who.channel!r} only", "forbidden"
        )
    target = await scoped_member(svc, who, member_id)
    async with svc.reads.connection() as reader:
        scope = await _bound_scope(reader, who, target, body.type, body.scope)

    def work() -> tuple[int, Any]:
        ident = svc.encoder().encode(body.type, body.value).in_scope(scope)
        anchor = _anchor(svc, who, target)
        observed = body.observed_at or datetime.now(UTC)
        if observed.tzinfo is not None:
            observed = observed.astimezone(UTC).replace(tzinfo=None)
        result = attach_identity(
            svc.engine,
            svc.encoder(),
            who.group_id,
            ident,
            body.channel,
            observed.replace(microsecond=0),
            svc.settings.strong_identity_types,
            body.verified,
            linked=anchor,
        )
        if result.conflicts:
            raise Problem(
                409,
                "Conflict",
                "; ".join(result.conflicts) + ": refused by the "
                "OneID policy and recorded for review",
                "identity_conflict",
            )
        return 200, BindOut(
            member_id=result.member_id,
            identity_id=result.identity_id,
            merges=result.merges,
            conflicts=[],
        ).model_dump()

    return await run_in_threadpool(
        respond_once, svc.engine, who.key_id, request, idempotency_key, body, work
    )


@router.post("/members:merge", response_model=MergeOut)
async def merge(
    body: MergeIn,
    request: Request,
    idempotency_key: IdemKey = None,
    who: Principal = Depends(require("members:merge")),
    svc: Services = Depends(services),
) -> Any:
    """Merge two members by hand (admin); the older survives, and batch OneID keeps the
    decision (an evidence link bridges the two). Two members each holding a unionid of one
    account or a verified phone in use are refused (409 `merge_conflict`): strong
    identifiers win. Undo with /v1/merges/{id}:undo."""
    a, b = [await scoped_member(svc, who, m) for m in body.member_ids]
    if a == b:
        raise Problem(
            422,
            "Invalid input",
            "member_ids: already the same member",
            "validation_failed",
            [{"field": "member_ids", "rule": "two members"}],
        )

    def work() -> tuple[int, Any]:
        merge_id, survivor = merge_members(
            svc.engine,
            who.group_id,
            a,
            b,
            f"manual: {body.reason}",
            strong_types=svc.settings.strong_identity_types,
        )
        return 200, {"merge_id": merge_id, "survivor_id": survivor}

    return await run_in_threadpool(
        respond_once, svc.engine, who.key_id, request, idempotency_key, body, work
    )


@router.post("/merges/{merge_id}:undo", response_model=UndoOut)
def undo_merge(
    merge_id: PathId,
    body: UndoIn,
    request: Request,
    idempotency_key: IdemKey = None,
    who: Principal = Depends(require("members:merge")),
    svc: Services = Depends(services),
) -> Any:
    """Undo a merge (admin): both members come back with their identities."""

    def work() -> tuple[int, Any]:
        result = unmerge(svc.engine, who.group_id, merge_id, body.reason)
        return 200, vars(result)

    return respond_once(svc.engine, who.key_id, request, idempotency_key, body, work)


async def _bound_scope(
    reader: Reader, who: Principal, member_id: int, type_name: str, scope: str | None
) -> str:
    """The scope an identifier bound to a member is stored in: the one given, else its
    type's default, which for a card is the member's brand. A card's brand must exist."""
    if IDENTITY_TYPES[type_name].scope != "brand":
        return scope_of(type_name, scope)
    brand = None
    if scope is None:
        row = await reader.first(MEMBER_BRAND, {"g": who.group_id, "m": member_id})
        brand = None if row is None else row.brand_id
        if not brand:
            raise ValidationError(
                "scope", f"a card is issued per brand and member {member_id} has none: name it"
            )
    resolved = scope_of(type_name, scope, brand)
    if await reader.first(BRAND_EXISTS, {"g": who.group_id, "b": resolved}) is None:
        raise ValidationError("scope", f"no brand {resolved!r} in this brand group")
    return resolved


def _anchor(svc: Services, who: Principal, member_id: int) -> Encoded:
    """The member's oldest strong identifier that is not a phone (whose hash would have to
    be derived from the clear value): the other end of the new link."""
    with svc.engine.connect() as conn:
        found = anchor_encoded(conn, who.group_id, member_id, svc.settings.strong_identity_types)
    if found is None:
        raise Problem(
            409, "Conflict", f"member {member_id} has no identifier to bind to", "no_anchor"
        )
    return found


GROUP_WIDE = frozenset({Role.ADMIN, Role.ANALYST, Role.CHANNEL})


def _render(svc: Services, who: Principal, rows: list[Any]) -> dict[str, Any]:
    return render_profile(svc.vault, who, rows)
