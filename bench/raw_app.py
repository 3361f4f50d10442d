"""The database-bound ceiling for bench_api: the lookup's one query on the same pool and
driver as siyu (psycopg's async pool), with no authentication, scope, masking or
response validation. The distance from here to siyu's lookup is siyu's own cost; the
distance from the bare endpoint to here is the driver's and the database's.

`/asyncpg` runs the same query on asyncpg when it is installed (it is not a siyu
dependency), to show what another driver would buy.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from psycopg.rows import namedtuple_row
from psycopg_pool import AsyncConnectionPool

from siyu.privacy import Vault

URL = os.environ["SIYU_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
GROUP = os.environ.get("SIYU_GROUP", "bench")
VAULT = Vault(bytes.fromhex(os.environ["SIYU_SECRET_KEY"]))
QUERY = """SELECT m.member_id, m.status, j.identity_id, j.type, j.value
  FROM identities i JOIN members m ON m.member_id = i.member_id
  JOIN identities j ON j.group_id = i.group_id AND j.member_id = m.member_id
  WHERE i.group_id = {g} AND i.type = {t} AND i.value_key = {k}
  ORDER BY j.first_seen, j.identity_id LIMIT 500"""
pools: dict[str, Any] = {}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    pool = AsyncConnectionPool(
        URL,
        min_size=8,
        max_size=8,
        open=False,
        kwargs={"autocommit": True, "row_factory": namedtuple_row},
    )
    await pool.open()
    pools["psycopg"] = pool
    try:
        import asyncpg

        pools["asyncpg"] = await asyncpg.create_pool(URL, min_size=8, max_size=8)
    except ImportError:
        pass
    yield
    await pool.close()
    if "asyncpg" in pools:
        await pools["asyncpg"].close()


app = FastAPI(lifespan=lifespan)


def _answer(rows: list[Any]) -> dict[str, Any]:
    return {
        "member_id": rows[0][0],
        "status": rows[0][1],
        "identities": [{"identity_id": r[2], "type": r[3], "value": r[4]} for r in rows],
    }


@app.get("/psycopg")
async def by_psycopg(type: str, value: str) -> dict[str, Any]:
    sql = QUERY.format(g="%(g)s", t="%(t)s", k="%(k)s")
    async with pools["psycopg"].connection() as conn:
        cursor = await conn.execute(sql, {"g": GROUP, "t": type, "k": VAULT.keyed_hash(value)})
        return _answer(await cursor.fetchall())


@app.get("/asyncpg")
async def by_asyncpg(type: str, value: str) -> dict[str, Any]:
    sql = QUERY.format(g="$1", t="$2", k="$3")
    async with pools["asyncpg"].acquire() as conn:
        return _answer(await conn.fetch(sql, GROUP, type, VAULT.keyed_hash(value)))
