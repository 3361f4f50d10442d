"""Idempotency-Key: the same key and body return the first response and apply nothing
again; the same key with another body (or on another endpoint) is a 409
`idempotency_conflict`, the code the ledger answers for a reused posting key: one rule for
every endpoint that takes the header.

The record is claimed (inserted) before the work runs, so two concurrent retries cannot
both run it: the unique key makes the database choose one, and the other is told the
first is still in progress. A claim left by a crashed worker expires after a minute.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.exc import IntegrityError

from siyu.api.problems import Problem
from siyu.auth.models import idempotency_records
from siyu.store.reads import Reader, Sql

STALE_CLAIM = timedelta(minutes=1)
KEY_RECORD = Sql("SELECT 1 FROM idempotency_records WHERE key_id = :k AND idempotency_key = :i")
Outcome = tuple[int, Any]  # (HTTP status, JSON body)


def run_once(
    engine: Engine,
    key_id: int,
    idem_key: str | None,
    method: str,
    path: str,
    body: bytes,
    work: Callable[[], Outcome],
) -> tuple[Outcome, bool]:
    """Run `work` at most once per (API key, Idempotency-Key). Returns (outcome, replayed)."""
    if not idem_key:
        return work(), False
    if len(idem_key) > 200:
        raise Problem(
            422,
            "Invalid input",
            "Idempotency-Key: must be at most 200 characters",
            "validation_failed",
            [{"field": "Idempotency-Key", "rule": "max 200"}],
        )
    digest = hashlib.sha256(body).hexdigest()
    claimed = _claim(engine, key_id, idem_key, method, path, digest)
    if not claimed:
        return _replay(engine, key_id, idem_key, method, path, digest), True
    try:
        status, payload = work()
    except Problem as problem:
        if problem.status >= 500:
            _release(engine, key_id, idem_key)
            raise
        _finish(
            engine,
            key_id,
            idem_key,
            problem.status,
            {"problem": [problem.title, problem.detail, problem.code, problem.errors]},
        )
        raise
    except Exception:
        _release(engine, key_id, idem_key)
        raise
    _finish(engine, key_id, idem_key, status, payload)
    return (status, payload), False


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _claim(engine: Engine, key_id: int, idem_key: str, method: str, path: str, digest: str) -> bool:
    table = idempotency_records
    try:
        with engine.begin() as conn:
            conn.execute(
                table.insert().values(
                    key_id=key_id,
                    idempotency_key=idem_key,
                    method=method,
                    path=path,
                    body_sha256=digest,
                    status=0,
                    created_at=_now(),
                )
            )
        return True
    except IntegrityError:
        pass
    with engine.begin() as conn:  # take over a claim abandoned by a crashed worker
        taken = conn.execute(
            update(table)
            .where(
                table.c.key_id == key_id,
                table.c.idempotency_key == idem_key,
                table.c.status == 0,
                table.c.created_at < _now() - STALE_CLAIM,
                table.c.body_sha256 == digest,
            )
            .values(created_at=_now())
        ).rowcount
    return bool(taken)


def _replay(
    engine: Engine, key_id: int, idem_key: str, method: str, path: str, digest: str
) -> Outcome:
    table = idempotency_records
    with engine.connect() as conn:
        row = conn.execute(
            select(table).where(table.c.key_id == key_id, table.c.idempotency_key == idem_key)
        ).one()
    if row.body_sha256 != digest or row.method != method or row.path != path:
        raise conflict()
    if row.status == 0:
        raise Problem(
            409,
            "Conflict",
            "a request with this Idempotency-Key is still in progress",
            "idempotency_in_progress",
            headers={"Retry-After": "1"},
        )
    payload = json.loads(row.response)
    if isinstance(payload, dict) and "problem" in payload:
        title, detail, code, errors = payload["problem"]
        raise Problem(int(row.status), title, detail, code, errors)
    return int(row.status), payload


def conflict() -> Problem:
    """The answer to a key already used for a different request: nothing was applied."""
    return Problem(
        409,
        "Conflict",
        "Idempotency-Key: already used for a different request; use a new key",
        "idempotency_conflict",
    )


async def refuse_if_recorded(reader: Reader, key_id: int, idem_key: str) -> None:
    """409 when this API key already used `idem_key` on an endpoint answered through
    `run_once`: for endpoints whose writes carry the key themselves (ledger postings), so
    that a key means one request whichever endpoint it was first sent to."""
    if await reader.first(KEY_RECORD, {"k": key_id, "i": idem_key}) is not None:
        raise conflict()


def _finish(engine: Engine, key_id: int, idem_key: str, status: int, payload: Any) -> None:
    table = idempotency_records
    with engine.begin() as conn:
        conn.execute(
            update(table)
            .where(table.c.key_id == key_id, table.c.idempotency_key == idem_key)
            .values(status=status, response=json.dumps(payload, default=str))
        )


def _release(engine: Engine, key_id: int, idem_key: str) -> None:
    table = idempotency_records
    with engine.begin() as conn:
        conn.execute(
            delete(table).where(table.c.key_id == key_id, table.c.idempotency_key == idem_key)
        )


def respond_once(
    engine: Engine,
    key_id: int,
    request: Request,
    idem_key: str | None,
    body: BaseModel,
    work: Callable[[], Outcome],
) -> JSONResponse:
    """`run_once` for a route: the request's method, path and validated body identify it;
    answered as JSON with `Idempotent-Replayed: true` on a replay."""
    (status, payload), replayed = run_once(
        engine,
        key_id,
        idem_key,
        request.method,
        request.url.path,
        body.model_dump_json().encode(),
        work,
    )
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    return JSONResponse(payload, status_code=status, headers=headers)
