"""Batch ingestion of orders, refunds and events: the same kinds, rules and loaders as
`siyu import`, with a result per item. Idempotent by order / refund / event id."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse

from siyu.api.deps import Services, require, services
from siyu.api.idempotency import respond_once
from siyu.api.schemas import BatchIn, BatchOut
from siyu.auth.principal import Principal, Role
from siyu.importer.batch import Batch, Scope
from siyu.importer.readers import as_text
from siyu.importer.service import import_rows

router = APIRouter(prefix="/v1", tags=["ingestion"])


@router.post("/orders:batch", response_model=BatchOut)
def orders_batch(
    body: BatchIn,
    request: Request,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
    who: Principal = Depends(require("orders:ingest")),
    svc: Services = Depends(services),
) -> Any:
    """Up to 1,000 orders (fields as in docs/data-format.md). An order id already stored is
    a `duplicate`: nothing is applied again."""
    return _ingest(svc, who, request, body, idempotency_key, "orders", "order_id")


@router.post("/refunds:batch", response_model=BatchOut)
def refunds_batch(
    body: BatchIn,
    request: Request,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
    who: Principal = Depends(require("orders:ingest")),
    svc: Services = Depends(services),
) -> Any:
    """Up to 1,000 refunds of stored orders. An order's refunds never total more than its
    paid_fen; a channel key refunds its channel's orders, a store key its stores'.
    Idempotent by refund id."""
    return _ingest(svc, who, request, body, idempotency_key, "refunds", "refund_id")


@router.post("/events:batch", response_model=BatchOut)
def events_batch(
    body: BatchIn,
    request: Request,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
    who: Principal = Depends(require("events:ingest")),
    svc: Services = Depends(services),
) -> Any:
    """Up to 1,000 behaviour events; idempotent by event id."""
    return _ingest(svc, who, request, body, idempotency_key, "events", "event_id")


def _ingest(
    svc: Services,
    who: Principal,
    request: Request,
    body: BatchIn,
    idem: str | None,
    kind_name: str,
    id_field: str,
) -> JSONResponse:
    def work() -> tuple[int, Any]:
        return 200, _load(svc, who, body.items, kind_name, id_field)

    return respond_once(svc.engine, who.key_id, request, idem, body, work)


def _load(
    svc: Services,
    who: Principal,
    items: list[dict[str, Any]],
    kind_name: str,
    id_field: str,
) -> dict[str, Any]:
    scope = Scope(
        channel=who.channel if who.role == Role.CHANNEL else None,
        stores=tuple(who.stores) if who.role == Role.STORE else None,
    )
    done = import_rows(
        svc.engine, svc.vault, who.group_id, kind_name, items, lambda b: _scope(who, b), scope
    )
    results = []
    for i, item in enumerate(items):
        item_id = _text(item.get(id_field))
        error = done.errors[i]
        if error is not None:
            field, _, rule = error.partition(": ")
            results.append(
                {
                    "index": i,
                    "id": item_id,
                    "status": "rejected",
                    "errors": [{"field": field, "rule": rule}],
                }
            )
        else:
            status = "duplicate" if done.stored[i] else "created"
            results.append({"index": i, "id": item_id, "status": status, "errors": []})
    counts = {
        s: sum(r["status"] == s for r in results) for s in ("created", "duplicate", "rejected")
    }
    return {**counts, "items": results}


def _scope(who: Principal, batch: Batch) -> None:
    """A channel key sends only its channel; a store key only its stores."""
    if who.role == Role.CHANNEL and "channel" in batch.columns:
        bad = np.array([c != who.channel for c in batch.values("channel")])
        batch.reject_where(bad, "channel", f"this key sends {who.channel!r} only")
    if who.role == Role.STORE and "store_id" in batch.columns:
        bad = np.array([s not in who.stores for s in batch.values("store_id")])
        batch.reject_where(bad, "store_id", "this key sends its own stores only")


def _text(value: Any) -> str | None:
    return None if value is None else as_text(value)
