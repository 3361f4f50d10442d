"""Each dialect's spellings run on a real engine and do what their names say."""

from __future__ import annotations

import hashlib
from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    DateTime,
    LargeBinary,
    MetaData,
    Table,
    select,
    text,
)
from sqlalchemy.exc import OperationalError
from tests.conftest import Store

from siyu.catalog.models import brands
from siyu.errors import ConfigError
from siyu.store.dialect import PostgresDialect, SqliteDialect, dialect_of

LOCKED_GROUP = "SELECT group_id FROM brand_groups WHERE group_id = :g"


def test_one_shared_dialect_per_engine(store: Store) -> None:
    # given an engine of either dialect
    expected = PostgresDialect if store.dialect == "postgresql" else SqliteDialect
    # when the engine and one of its connections are asked
    with store.engine.connect() as conn:
        found = dialect_of(conn)
    # then both answer the same instance of that dialect's class
    assert isinstance(found, expected)
    assert found is dialect_of(store.engine)
    assert found.name == store.dialect
    assert found.supports_copy == found.one_statement_per_batch == (store.dialect == "postgresql")


def test_an_unknown_dialect_is_refused() -> None:
    fake = cast(Any, SimpleNamespace(dialect=SimpleNamespace(name="mysql")))
    with pytest.raises(ConfigError, match="'mysql'"):
        dialect_of(fake)


def test_expressions_agree_on_both_engines(store: Store) -> None:
    # given a row with a time, a boolean and bytes
    table = Table(
        "dialect_values",
        MetaData(),
        Column("at", DateTime),
        Column("flag", Boolean),
        Column("blob", LargeBinary),
        prefixes=["TEMPORARY"],
    )
    with store.engine.begin() as conn:
        table.create(conn)
        conn.execute(
            table.insert(),
            [
                {"at": datetime(2024, 1, 2, 3, 4, 5), "flag": True, "blob": b"\x01"},
                {"at": datetime(2024, 1, 2, 3, 4, 5), "flag": False, "blob": b"\x01"},
            ],
        )
        d = dialect_of(conn)
        # when they are read through the dialect's expressions
        row = conn.execute(
            text(
                f"SELECT MIN({d.epoch_seconds('at')}), SUM({d.as_int('flag')}), "
                f"{d.any_value('blob')} FROM dialect_values"
            )
        ).one()
        table.drop(conn)
    # then every engine answers the same values
    assert int(row[0]) == 1704164645  # 2024-01-02 03:04:05 UTC
    assert int(row[1]) == 1
    assert bytes(row[2]) == b"\x01"


def test_insert_ignore_skips_what_exists(store: Store) -> None:
    # given a brand
    row = {"group_id": store.group_id, "brand_id": "A", "name": "first"}
    with store.engine.begin() as conn:
        d = dialect_of(conn)
        conn.execute(d.insert_ignore(brands), row)
        # when it is inserted again, with or without naming the key
        conn.execute(d.insert_ignore(brands), {**row, "name": "second"})
        conn.execute(d.insert_ignore(brands, ["group_id", "brand_id"]), {**row, "name": "third"})
    # then the first row stays, alone
    with store.engine.connect() as conn:
        names = conn.execute(
            select(brands.c.name).where(brands.c.group_id == store.group_id)
        ).scalars()
        assert list(names) == ["first"]


def test_new_ids_are_unused_and_increasing(store: Store) -> None:
    # (Other tests insert members with explicit ids, which PostgreSQL's sequence does not
    # see: "unused" is checked against the table, not against its maximum.)
    with store.engine.begin() as conn:
        d = dialect_of(conn)
        first = d.new_ids(conn, "members", "member_id", 3)
        assert d.new_ids(conn, "members", "member_id", 0).size == 0
        taken = conn.execute(
            text("SELECT COUNT(*) FROM members WHERE member_id IN (:a, :b, :c)"),
            dict(zip("abc", (int(i) for i in first), strict=True)),
        ).scalar_one()
    assert first.dtype.name == "int64"
    assert list(first) == sorted(set(first.tolist()))
    assert len(first) == 3 and taken == 0


def test_lock_rows_in_order_orders_and_locks(store: Store) -> None:
    d = dialect_of(store.engine)
    clause = d.lock_rows_in_order("group_id", "name")
    assert clause == "ORDER BY group_id, name" + d.row_lock
    with store.engine.begin() as conn:
        found = conn.execute(
            text(f"SELECT group_id FROM brand_groups WHERE group_id = :g {clause}"),
            {"g": store.group_id},
        ).scalars()
        assert list(found) == [store.group_id]


def test_row_locks_execute_on_both_engines(store: Store) -> None:
    # SQLite: the spellings are empty (BEGIN IMMEDIATE holds the one write lock) and the
    # statements still read the row.
    d = dialect_of(store.engine)
    with store.engine.begin() as conn:
        for suffix in (d.row_lock, d.row_lock_skip_locked):
            rows = conn.execute(text(LOCKED_GROUP + suffix), {"g": store.group_id}).all()
            assert len(rows) == 1
        core = d.with_row_lock(select(brands.c.name).where(brands.c.group_id == store.group_id))
        assert conn.execute(core).all() == []
    if store.dialect == "sqlite":
        assert d.row_lock == d.row_lock_skip_locked == ""


@pytest.mark.postgres
def test_postgres_row_lock_blocks_and_skip_locked_passes_over(pg_engine: Any) -> None:
    # given a row locked by one transaction
    store_group = "dialect-lock"
    d = dialect_of(pg_engine)
    with pg_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO brand_groups (group_id, name, created_at) "
                "VALUES (:g, 'lock test', now()) ON CONFLICT DO NOTHING"
            ),
            {"g": store_group},
        )
    with pg_engine.begin() as holder:
        assert holder.execute(text(LOCKED_GROUP + d.row_lock), {"g": store_group}).all()
        with pg_engine.begin() as other:
            # when another transaction asks for it with SKIP LOCKED, it gets nothing
            skipped = other.execute(text(LOCKED_GROUP + d.row_lock_skip_locked), {"g": store_group})
            assert skipped.all() == []
        with pytest.raises(OperationalError, match="lock timeout"), pg_engine.begin() as other:
            # and with the plain row lock it waits (here: gives up after 100 ms)
            other.exec_driver_sql("SET LOCAL lock_timeout = '100ms'")
            other.execute(text(LOCKED_GROUP + d.row_lock), {"g": store_group})
    # then once the holder commits, the row is free again
    with pg_engine.begin() as other:
        assert other.execute(text(LOCKED_GROUP + d.row_lock_skip_locked), {"g": store_group}).all()


def _try(conn: Any, key: str, shared: bool) -> bool:
    function = "pg_try_advisory_xact_lock_shared" if shared else "pg_try_advisory_xact_lock"
    return bool(
        conn.execute(
            text(f"SELECT {function}(hashtext('siyu.test:' || :g))"), {"g": key}
        ).scalar_one()
    )


@pytest.mark.postgres
def test_postgres_advisory_lock_shared_and_exclusive(pg_engine: Any) -> None:
    d = dialect_of(pg_engine)
    # given the shared side held by one transaction
    with pg_engine.begin() as holder:
        d.advisory_lock(holder, "siyu.test", "g1", shared=True)
        with pg_engine.begin() as other:
            # then another shares it, the exclusive side waits, other keys are free
            assert _try(other, "g1", shared=True)
        with pg_engine.begin() as other:
            assert not _try(other, "g1", shared=False)
            assert _try(other, "g2", shared=False)
    # given the exclusive side held
    with pg_engine.begin() as holder:
        d.advisory_lock(holder, "siyu.test", "g1")
        with pg_engine.begin() as other:
            assert not _try(other, "g1", shared=True)
    # then it ends with the transaction
    with pg_engine.begin() as other:
        assert _try(other, "g1", shared=False)


def test_advisory_lock_and_bulk_settings_run_on_both_engines(store: Store) -> None:
    pg = store.dialect == "postgresql"
    if pg:
        with store.engine.connect() as conn:
            before = conn.exec_driver_sql("SHOW synchronous_commit").scalar_one()
    with store.engine.begin() as conn:
        d = dialect_of(conn)
        d.advisory_lock(conn, "siyu.test", store.group_id, shared=True)
        d.advisory_lock(conn, "siyu.test", store.group_id)
        d.tune_for_bulk_load(conn)
        if pg:
            assert conn.exec_driver_sql("SHOW work_mem").scalar_one() == "64MB"
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar_one() == "off"
    if pg:  # SET LOCAL: gone with the transaction
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar_one() == before


def test_grouping_by_sort_holds_inside_and_ends_with_its_block(store: Store) -> None:
    # given a GROUP BY the PostgreSQL planner hashes (14,286 groups, estimated 200)
    query = "EXPLAIN SELECT g / 7, COUNT(*) FROM generate_series(1, 100000) g GROUP BY g / 7"
    grouped = "SELECT n / 2, COUNT(*) FROM (SELECT 1 AS n UNION ALL SELECT 3) t GROUP BY n / 2"
    pg = store.dialect == "postgresql"

    def planned(conn: Connection) -> str:
        return " ".join(conn.exec_driver_sql(query).scalars().all()) if pg else ""

    with store.engine.begin() as conn:
        d = dialect_of(conn)
        # when it is planned before, inside and after the block
        plans = [planned(conn)]
        with d.grouping_by_sort(conn):
            plans.append(planned(conn))
            answer = sorted(tuple(r) for r in conn.exec_driver_sql(grouped).all())
        plans.append(planned(conn))
    # then the statements inside group by sorting, those after by hashing again, and
    # the grouping's answer is the same (SQLite: the block changes nothing)
    assert answer == [(0, 1), (1, 1)]
    if pg:
        assert ["HashAggregate" in p for p in plans] == [True, False, True], plans
        assert "GroupAggregate" in plans[1]


def test_advisory_lock_names_are_literals() -> None:
    with pytest.raises(ValueError, match="no quotes"):
        PostgresDialect().advisory_lock(cast(Any, None), "it's", "g")


def test_a_staged_batch_is_joined_to_stored_rows_batch_first(store: Store) -> None:
    # given a staged batch of order ids (a temporary table without statistics)
    from sqlalchemy import Column, MetaData, String, Table, and_, select

    from siyu.orders.models import orders
    from siyu.store.dialect import join_staged

    staged = Table(
        "tmp_staged_orders", MetaData(), Column("order_id", String), prefixes=["TEMPORARY"]
    )
    query = select(staged.c.order_id).select_from(
        join_staged(
            staged,
            orders,
            and_(orders.c.group_id == store.group_id, orders.c.order_id == staged.c.order_id),
        )
    )
    with store.engine.begin() as conn:
        staged.create(conn)
        assert conn.execute(query).all() == []
        if store.dialect == "sqlite":
            # then SQLite loops over the batch and looks each row up by the primary key,
            # rather than scanning the batch once per stored order of the group
            plan = [
                r[-1]
                for r in conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN "
                    + str(query.compile(conn, compile_kwargs={"literal_binds": True}))
                )
            ]
            assert plan[0].startswith("SCAN tmp_staged_orders")
            assert "(group_id=? AND order_id=?)" in plan[1]
        staged.drop(conn)


def test_the_hash_bucket_in_sql_is_pythons(store: Store) -> None:
    # given texts whose digests cover both halves' high bits, and several moduli
    texts = [f"salt-{n}:{m}" for n in range(3) for m in (0, 1, 7, 2**31, 2**53 + 1, 10**18)]
    texts += [f"s:{m}" for m in range(200)]
    with store.engine.connect() as conn:
        d = dialect_of(conn)
        for buckets in (10_000, 7, 2**31 - 1):
            # when each is bucketed by the store
            found = [
                conn.execute(
                    text(f"SELECT {d.hash_bucket('CAST(:t AS TEXT)', buckets)}"), {"t": t}
                ).scalar_one()
                for t in texts
            ]
            # then each answer is Python's
            expected = [
                int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "big") % buckets
                for t in texts
            ]
            assert found == expected, buckets
