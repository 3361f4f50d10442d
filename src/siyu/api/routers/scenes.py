"""QR scenes over HTTP: HQ's registry of codes, the scans a channel reports, and the
report of what each scene brought.

HQ defines and archives codes (`scenes:define`); HQ and analysts read them and the
report (`scenes:read`, `scenes:report`); a channel integration (the official account's
scan events, the mini-program's launch scene) or HQ records scans (`scenes:scan`), each
under an `Idempotency-Key` that becomes the scan's own key, so a scan delivered twice is
recorded once. Scene strings travel in bodies and query strings, not paths: WeChat lets a
scene hold `/`. The report's knee is the caller's, or the latest lifecycle snapshot's, or
4; every count opens its members (`/v1/qr-scenes/report/members`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import Field

from siyu.analytics.snapshot import latest_snapshot
from siyu.api.deps import RequiredIdempotencyKey, Services, require, services
from siyu.api.schemas import MAX_ID, Strict
from siyu.auth.principal import Principal
from siyu.campaigns.triggers import on_scan
from siyu.scenes import registry
from siyu.scenes.registry import Scene
from siyu.scenes.report import (
    DEFAULT_KNEE,
    MAX_KNEE,
    acquired_members,
    referred_members,
    scene_report,
    star_members,
)
from siyu.scenes.scans import record_scan
from siyu.store.times import as_utc

router = APIRouter(prefix="/v1", tags=["qr-scenes"])
# WeChat's own rule (1-64 characters) is checked by the registry, which names it.
SceneText = Annotated[str, Field(min_length=1, max_length=200)]
Target = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]*$")]


class SceneIn(Strict):
    scene: SceneText
    kind: Literal["temporary", "permanent"]
    expires_at: datetime | None = Field(
        default=None, description="Temporary codes only: at most 30 days from now."
    )
    store_id: Target | None = None
    guide_id: Target | None = None
    campaign: Target | None = None
    poster: Target | None = None
    counter: Target | None = None


class ArchiveIn(Strict):
    scene: SceneText


class ScanIn(Strict):
    scene: SceneText
    member_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    identity_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    referrer_member_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="The member who shared the code."
    )
    acquired: bool | None = Field(
        default=None,
        description="The scan created the member; omitted: registered within 30 minutes.",
    )
    at: datetime | None = None


def _scene_json(s: Scene) -> dict[str, Any]:
    out = s.as_dict()
    for name in ("expires_at", "created_at", "archived_at"):
        out[name] = None if out[name] is None else as_utc(out[name])
    return out


@router.post("/qr-scenes")
async def create_scene(
    body: SceneIn,
    who: Principal = Depends(require("scenes:define")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Register a code (HQ). The same scene again with the same kind and targets answers
    the code; pointing elsewhere is 409 `scene_exists`; a 100,001st permanent code is 409
    `scene_limit_reached`."""
    targets = body.model_dump(include={"store_id", "guide_id", "campaign", "poster", "counter"})
    made = await run_in_threadpool(
        lambda: registry.create(
            svc.engine,
            who.group_id,
            body.scene,
            body.kind,
            expires_at=body.expires_at,
            key_id=who.key_id,
            **targets,
        )
    )
    return _scene_json(made)


@router.get("/qr-scenes")
async def list_scenes(
    campaign: Annotated[str | None, Query(max_length=64)] = None,
    archived: bool = False,
    after: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    who: Principal = Depends(require("scenes:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Codes in scene order; `after` is the last scene of the previous page."""
    found = await run_in_threadpool(
        lambda: registry.list_scenes(
            svc.engine, who.group_id, campaign=campaign, archived=archived, after=after, limit=limit
        )
    )
    return {"scenes": [_scene_json(s) for s in found]}


@router.post("/qr-scenes:archive")
async def archive_scene(
    body: ArchiveIn,
    who: Principal = Depends(require("scenes:define")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Retire a code: it leaves the list; its later scans are recorded, flagged, and
    acquire no one. A permanent code's slot is not given back (WeChat keeps it)."""
    done = await run_in_threadpool(registry.archive, svc.engine, who.group_id, body.scene)
    return _scene_json(done)


@router.post("/qr-scans")
async def post_scan(
    body: ScanIn,
    idempotency_key: RequiredIdempotencyKey,
    who: Principal = Depends(require("scenes:scan")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Record a scan once per Idempotency-Key (a different scan under the same key is 409
    `idempotency_conflict`); an unknown scene is 404."""
    scan = await run_in_threadpool(
        lambda: record_scan(
            svc.engine,
            who.group_id,
            body.scene,
            f"key:{who.key_id}:{idempotency_key}",
            member_id=body.member_id,
            identity_id=body.identity_id,
            referrer_member_id=body.referrer_member_id,
            acquired=body.acquired,
            at=body.at,
            key_id=who.key_id,
        )
    )
    # a code printed for a running campaign enrols the scanner (its arm, its coupons once)
    enrolled = await run_in_threadpool(
        on_scan,
        svc.engine,
        who.group_id,
        scan.scene,
        scan.member_id,
        scan.flag is not None,
        scan.at,
        who.key_id,
    )
    return {
        "scan_id": scan.scan_id,
        "scene": scan.scene,
        "member_id": scan.member_id,
        "referrer_member_id": scan.referrer_member_id,
        "first_touch": scan.first_touch,
        "flag": scan.flag,
        "at": as_utc(scan.at),
        "replayed": scan.replayed,
        "campaign": None if enrolled is None else vars(enrolled),
    }


async def _knee(svc: Services, group_id: str, asked: int | None) -> int:
    """The caller's knee, else the latest lifecycle snapshot's, else Pagoda's four."""
    if asked is not None:
        return asked
    async with svc.reads.connection() as reader:
        snap = await latest_snapshot(reader, group_id, "lifecycle")
    found = None if snap is None else snap.payload.get("knee")
    return found if isinstance(found, int) and 1 <= found <= MAX_KNEE else DEFAULT_KNEE


@router.get("/qr-scenes/report")
async def report(
    knee: Annotated[int | None, Query(ge=1, le=MAX_KNEE)] = None,
    campaign: Annotated[str | None, Query(max_length=64)] = None,
    who: Principal = Depends(require("scenes:report")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Per code: scans, members acquired, how many reached 1 .. knee+ orders, their
    revenue (paid less refunds, fen) and CLV where the analytics valued them."""
    k = await _knee(svc, who.group_id, knee)
    rows = await run_in_threadpool(
        lambda: scene_report(svc.engine, who.group_id, knee=k, campaign=campaign)
    )
    return {"knee": k, "scenes": [r.as_dict(k) for r in rows]}


@router.get("/qr-scenes/report/members")
async def report_members(
    scene: Annotated[str, Query(min_length=1, max_length=200)],
    min_orders: Annotated[int, Query(ge=0, le=MAX_KNEE)] = 0,
    who: Principal = Depends(require("scenes:report")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """The members behind a scene's `acquired` (or `reached[min_orders]`) count."""
    registry.check_scene(scene)
    ids = await run_in_threadpool(acquired_members, svc.engine, who.group_id, scene, min_orders)
    return {"scene": scene, "min_orders": min_orders, "member_ids": ids}


@router.get("/qr-scenes/stars")
async def stars(
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    who: Principal = Depends(require("scenes:report")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Star members (明星会员): ranked by the members their shared codes acquired; each
    with the members behind the count."""

    def work() -> list[dict[str, Any]]:
        found = star_members(svc.engine, who.group_id, limit)
        return [
            {
                "member_id": s.member_id,
                "brought": s.brought,
                "scans": s.scans,
                "brought_member_ids": referred_members(svc.engine, who.group_id, s.member_id)
                if s.brought
                else [],
            }
            for s in found
        ]

    return {"stars": await run_in_threadpool(work)}
