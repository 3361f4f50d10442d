"""Stock over HTTP: set or move a location's stock, read availability, reserve for orders.

A store key touches only its own locations; a channel key reserves for its own channel
and confirms or releases only its own reservations. Out of stock is a 409 problem and
reserves nothing. HQ sets up the locations and which channel ships from which.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from siyu.api.deps import RequiredIdempotencyKey, Services, require, services
from siyu.api.idempotency import Outcome, conflict, respond_once
from siyu.api.problems import Problem
from siyu.api.schemas import (
    MAX_ID,
    ChannelLocationIn,
    ChannelLocationsOut,
    InventoryOut,
    ReservationIn,
    ReservationOut,
    StockIn,
    StockLocationIn,
    StockLocationOut,
    StockOut,
)
from siyu.auth.principal import Principal, Role
from siyu.inventory import reservations
from siyu.inventory.errors import MovementKeyReused
from siyu.inventory.locations import Location, put_channel_location, put_location
from siyu.inventory.queries import LEVELS, LOCATION, RESERVATION
from siyu.inventory.stock import atp, set_stock
from siyu.store.times import as_utc

router = APIRouter(prefix="/v1", tags=["inventory"])
Sku = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f/]*$")]
LocationId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f/]*$")]
ReservationId = Annotated[int, Path(ge=1, le=MAX_ID)]
ChannelName = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[^\x00-\x1f/]*$")]
IdemKey = RequiredIdempotencyKey


@router.put("/inventory/{sku}/locations/{location_id}", response_model=StockOut)
async def put_stock(
    sku: Sku,
    location_id: LocationId,
    body: StockIn,
    request: Request,
    idempotency_key: IdemKey,
    who: Principal = Depends(require("inventory:write")),
    svc: Services = Depends(services),
) -> JSONResponse:
    """Count (`on_hand`) or move (`delta` + `kind`) one SKU at one location, with a
    reason. Refused (409) if it would leave fewer units than are reserved."""
    async with svc.reads.connection() as reader:
        where = await reader.first(LOCATION, {"g": who.group_id, "l": location_id})
    if where is None:
        raise Problem(404, "Not found", f"location_id: no location {location_id!r}", "not_found")
    if who.role == Role.STORE and where.store_id not in who.stores:
        raise Problem(
            403,
            "Forbidden",
            "location_id: this key touches its own stores' stock only",
            "forbidden",
        )
    if (body.on_hand is None) == (body.delta is None):
        raise Problem(
            422,
            "Invalid input",
            "on_hand: give either on_hand (a count) or delta and kind",
            "validation_failed",
            [{"field": "on_hand", "rule": "on_hand or delta"}],
        )
    kind = "count" if body.on_hand is not None else (body.kind or "adjustment")

    def work() -> Outcome:
        try:
            done = set_stock(
                svc.engine,
                who.group_id,
                sku,
                location_id,
                on_hand=body.on_hand,
                delta=body.delta,
                kind=kind,
                reason=body.reason,
                idempotency_key=idempotency_key,
                key_id=who.key_id,
            )
        except MovementKeyReused as reused:
            raise conflict() from reused
        level = done.level
        return 200, StockOut(
            sku=sku,
            location_id=location_id,
            on_hand=level.on_hand,
            reserved=level.reserved,
            available=level.available,
            movement=done.movement,
            delta=done.delta,
        ).model_dump()

    # The key's record (api/idempotency.py) holds the request: the same key with another
    # body is a 409 and a retry answers what the first request was answered. A refusal
    # (out of stock) leaves the key unused, as in the ledger.
    return await run_in_threadpool(
        respond_once, svc.engine, who.key_id, request, idempotency_key, body, work
    )


@router.put("/stock-locations/{location_id}", response_model=StockLocationOut)
async def put_stock_location(
    location_id: LocationId,
    body: StockLocationIn,
    who: Principal = Depends(require("inventory:configure")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Create or change a stock location (HQ): a store's, or a warehouse."""
    where = Location(location_id, body.kind, body.store_id, body.city, body.lat_e6, body.lon_e6)
    done = await run_in_threadpool(put_location, svc.engine, who.group_id, where)
    return vars(done)


@router.put("/channels/{channel}/locations/{location_id}", response_model=ChannelLocationsOut)
async def put_channel_location_route(
    channel: ChannelName,
    location_id: LocationId,
    body: ChannelLocationIn,
    who: Principal = Depends(require("inventory:configure")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Let an online channel ship from a location (HQ), and set the channel's safety
    stock; the channels' new ATP is queued in the outbox."""
    done = await run_in_threadpool(
        put_channel_location, svc.engine, who.group_id, channel, location_id, body.safety_stock
    )
    return vars(done)


@router.get("/inventory/{sku}", response_model=InventoryOut)
async def get_inventory(
    sku: Sku,
    who: Principal = Depends(require("inventory:read")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Availability per location (a store key sees its own) and available to promise per
    online channel (a channel key sees its own)."""
    async with svc.reads.connection() as reader:
        rows = await reader.all(LEVELS, {"g": who.group_id, "s": sku})
    channels = await run_in_threadpool(_atp, svc, who.group_id, sku)
    if who.role == Role.STORE:
        rows = [r for r in rows if r.store_id in who.stores]
    if who.role == Role.CHANNEL:
        channels = {c: n for c, n in channels.items() if c == who.channel}
    return {
        "sku": sku,
        "locations": [
            {
                "location_id": r.location_id,
                "city": r.city,
                "on_hand": int(r.on_hand),
                "reserved": int(r.reserved),
                "available": int(r.on_hand) - int(r.reserved),
            }
            for r in rows
        ],
        "channels": channels,
    }


@router.post("/reservations", response_model=ReservationOut, status_code=201)
async def create_reservation(
    body: ReservationIn,
    who: Principal = Depends(require("reservations:write")),
    svc: Services = Depends(services),
) -> JSONResponse:
    """Reserve an order's lines, all or nothing (409 when any is out of stock). Idempotent
    by order id: the same order again answers the first reservation."""
    channel = who.channel if who.role == Role.CHANNEL else "admin"
    near = (
        (body.lat_e6, body.lon_e6) if body.lat_e6 is not None and body.lon_e6 is not None else None
    )
    order = reservations.Order(
        body.order_id,
        str(channel),
        [(line.sku, line.qty) for line in body.lines],
        city=body.city,
        near=near,
    )
    # Group commit: concurrent reservations share a transaction (inventory/batcher.py).
    made = await svc.reservations.reserve(who.group_id, order, timedelta(seconds=body.ttl_seconds))
    headers = {"Idempotent-Replayed": "true"} if made.replayed else {}
    return JSONResponse(_out(made), status_code=200 if made.replayed else 201, headers=headers)


@router.post("/reservations/{reservation_id}:confirm", response_model=ReservationOut)
async def confirm_reservation(
    reservation_id: ReservationId,
    who: Principal = Depends(require("reservations:write")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Paid: the reserved units are sold. Idempotent; 409 once released or expired."""
    await _own(svc, who, reservation_id)
    made = await run_in_threadpool(reservations.confirm, svc.engine, who.group_id, reservation_id)
    return _out(made)


@router.post("/reservations/{reservation_id}:release", response_model=ReservationOut)
async def release_reservation(
    reservation_id: ReservationId,
    who: Principal = Depends(require("reservations:write")),
    svc: Services = Depends(services),
) -> dict[str, Any]:
    """Cancelled: the units go back on sale. Idempotent; 409 once confirmed."""
    await _own(svc, who, reservation_id)
    made = await run_in_threadpool(reservations.release, svc.engine, who.group_id, reservation_id)
    return _out(made)


async def _own(svc: Services, who: Principal, reservation_id: int) -> None:
    async with svc.reads.connection() as reader:
        row = await reader.first(RESERVATION, {"g": who.group_id, "r": reservation_id})
    if row is None:
        raise Problem(
            404, "Not found", f"reservation_id: no reservation {reservation_id}", "not_found"
        )
    if who.role == Role.CHANNEL and row.channel != who.channel:
        raise Problem(
            403,
            "Forbidden",
            "reservation_id: another channel's reservation, outside this key's scope",
            "forbidden",
        )


def _atp(svc: Services, group_id: str, sku: str) -> dict[str, int]:
    with svc.engine.connect() as conn:
        return atp(conn, group_id, sku)


def _out(made: reservations.Reservation) -> dict[str, Any]:
    expires = made.expires_at
    return {
        "reservation_id": made.reservation_id,
        "order_id": made.order_id,
        "channel": made.channel,
        "status": made.status,
        "expires_at": as_utc(expires).isoformat(),
        "lines": made.lines,
    }
