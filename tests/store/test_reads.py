"""The async read port answers the same rows on both engines, from one query text."""

from __future__ import annotations

import asyncio

from tests.conftest import Store

from siyu.store.reads import Sql, make_reads

QUERY = Sql(
    "SELECT brand_id, name FROM brands WHERE group_id = :g AND brand_id IN :ids "
    "AND name <> '10:00' AND name LIKE 'brand%' ORDER BY brand_id"
)


def test_the_same_query_on_both_engines(store: Store) -> None:
    with store.engine.begin() as conn:
        for brand in ("A", "B", "C"):
            conn.exec_driver_sql(
                "INSERT INTO brands (group_id, brand_id, name) VALUES "
                f"('{store.group_id}', '{brand}', 'brand {brand}')"
            )

    async def read() -> tuple[list[tuple[str, str]], object]:
        reads = make_reads(store.engine, pool_size=2)
        try:
            async with reads.connection() as reader:
                rows = await reader.all(QUERY, {"g": store.group_id, "ids": ["A", "C", "Z"]})
                none = await reader.first(QUERY, {"g": store.group_id, "ids": ["Z"]})
            return [(r.brand_id, r.name) for r in rows], none
        finally:
            await reads.close()

    rows, none = asyncio.run(read())
    assert rows == [("A", "brand A"), ("C", "brand C")]
    assert none is None


def test_parameters_are_translated_for_psycopg() -> None:
    q = Sql("SELECT x::int FROM t WHERE a = :a AND b IN :bs AND c LIKE 'x%' AND d = '10:00'")
    assert q.pyformat == (
        "SELECT x::int FROM t WHERE a = %(a)s AND b = ANY(%(bs)s) AND c LIKE 'x%%' AND d = '10:00'"
    )


def test_a_list_longer_than_sqlites_parameter_limit(store: Store) -> None:
    """A report's members can be more than SQLite's cap on bound parameters (32,766 by
    default, 250,000 in Debian's build): the list is one parameter on both engines.
    Integers match integers, and an empty list nothing."""
    many = Sql(
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 300000) "
        "SELECT COUNT(*) AS n FROM n WHERE x IN :ids"
    )

    async def read(ids: list[int]) -> int:
        reads = make_reads(store.engine, pool_size=2)
        try:
            async with reads.connection() as reader:
                row = await reader.first(many, {"ids": ids})
                return int(row.n)
        finally:
            await reads.close()

    assert asyncio.run(read(list(range(0, 600_000, 2)))) == 150_000
    assert asyncio.run(read(list(range(1, 300_001)))) == 300_000
    assert asyncio.run(read([])) == 0
