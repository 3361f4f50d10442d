"""The identity moves landing keeps (`siyu.analytics.moves`): reading facts through them gives
exactly what the whole identities snapshot gives, through merges, splits, unlinks,
back-filled days, new buyers, runs stopped half way and warehouses landed before them.

The store is written with plain SQL here, as OneID leaves it (an identity's orders and
events carry its member), so a long random history of moves stays quick; every test runs
on SQLite and PostgreSQL, and lands a DuckDB file and a Parquet directory side by side."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from sqlalchemy import text
from tests.conftest import Store

from siyu.analytics.engines import connect
from siyu.analytics.landing import land
from siyu.analytics.sinks import DuckDBSink, ParquetSink
from siyu.analytics.warehouse import open_warehouse

START = datetime(2024, 3, 1, 10, 0)
FORMATS = ("duckdb", "parquet")


@dataclass
class History:
    """Members, identities and facts written straight into the store."""

    store: Store
    members: list[int] = field(default_factory=list)
    identities: list[int] = field(default_factory=list)
    orders: int = 0
    events: int = 0
    moved: set[int] = field(default_factory=set)  # identities OneID ever moved

    def sql(self, sql: str, **params: Any) -> Any:
        with self.store.engine.begin() as conn:
            return conn.execute(text(sql), {"g": self.store.group_id, **params})

    def member(self) -> int:
        self.sql(
            "INSERT INTO members (group_id, status, registered_at, created_at, updated_at) "
            "VALUES (:g, 'active', :t, :t, :t)",
            t=START,
        )
        found = self.sql("SELECT MAX(member_id) FROM members WHERE group_id = :g").scalar_one()
        self.members.append(int(found))
        return int(found)

    def identity(self, member: int | None) -> int:
        key = f"k{len(self.identities)}"
        self.sql(
            "INSERT INTO identities (group_id, type, value_key, value_masked, verified, "
            "source_channel, first_seen, last_seen, member_id) "
            "VALUES (:g, 'phone', :k, '138****0000', false, 'pos', :t, :t, :m)",
            k=key,
            t=START,
            m=member,
        )
        found = self.sql(
            "SELECT identity_id FROM identities WHERE group_id = :g AND value_key = :k", k=key
        ).scalar_one()
        self.identities.append(int(found))
        return int(found)

    def member_of(self, identity: int) -> int | None:
        found = self.sql(
            "SELECT member_id FROM identities WHERE identity_id = :i", i=identity
        ).scalar_one()
        return None if found is None else int(found)

    def order(self, identity: int, day: int) -> None:
        """An order with one line on day `day` after START, and a view event that day."""
        self.orders += 1
        self.events += 1
        order_id, at, member = (
            f"O{self.orders}",
            START + timedelta(days=day),
            self.member_of(identity),
        )
        self.sql(
            "INSERT INTO orders (group_id, order_id, brand_id, channel, buyer_identity_id, "
            "member_id, status, ordered_at, paid_at, total_fen, discount_fen, paid_fen) "
            "VALUES (:g, :o, 'b1', 'pos', :i, :m, 'paid', :t, :t, 100, 0, 100)",
            o=order_id, i=identity, m=member, t=at,
        )  # fmt: skip
        self.sql(
            "INSERT INTO order_lines (group_id, order_id, line_no, sku, qty, unit_price_fen, "
            "amount_fen) VALUES (:g, :o, 1, 'SKU1', 1, 100, 100)",
            o=order_id,
        )
        self.sql(
            "INSERT INTO events (group_id, event_id, type, channel, identity_id, member_id, "
            "occurred_at) VALUES (:g, :e, 'view', 'mini', :i, :m, :t)",
            e=f"E{self.events}", i=identity, m=member, t=at,
        )  # fmt: skip

    def move(self, identity: int, member: int | None) -> None:
        """What OneID does: the identity and its facts go to `member` (None: unlinked)."""
        self.moved.add(identity)
        self.sql(
            "UPDATE identities SET member_id = :m WHERE identity_id = :i", i=identity, m=member
        )
        for table, key in (("orders", "buyer_identity_id"), ("events", "identity_id")):
            self.sql(
                f"UPDATE {table} SET member_id = :m WHERE group_id = :g AND {key} = :i",
                i=identity,
                m=member,
            )


def _read(location: Path, group_id: str, through_moves: bool = True) -> dict[str, Any]:
    """Every fact's member as the warehouse reads it, and the moved identities it looks up
    (None: it asks the whole snapshot)."""
    con = connect("duckdb")
    try:
        wh = open_warehouse(con, location, group_id)
        moves = None if wh.moves is None else sorted(con.execute(wh.moves.identity_id).tolist())
        assert moves is None or len(moves) == wh.moved
        if not through_moves:
            wh = replace(wh, moves=None, moved=0)
        out: dict[str, Any] = {"moves": moves}
        for name, facts, key in (
            ("orders", wh.orders(), "order_id"),
            ("lines", wh.lines(), "order_id"),
            ("events", wh.events(), "event_id"),
        ):
            df = con.execute(facts.select(key, "member_id").order_by(key))
            out[name] = [(k, None if m != m else int(m)) for k, m in df.itertuples(index=False)]
        return out
    finally:
        con.disconnect()


def _store_members(history: History) -> dict[str, Any]:
    """Every fact's member in the store now (OneID keeps them equal to the identity's)."""
    rows = {
        "orders": "SELECT order_id, member_id FROM orders WHERE group_id = :g ORDER BY order_id",
        "lines": "SELECT l.order_id, o.member_id FROM order_lines l JOIN orders o "
        "ON o.group_id = l.group_id AND o.order_id = l.order_id WHERE l.group_id = :g "
        "ORDER BY l.order_id",
        "events": "SELECT event_id, member_id FROM events WHERE group_id = :g ORDER BY event_id",
    }
    return {
        name: [(k, None if m is None else int(m)) for k, m in history.sql(sql)]
        for name, sql in rows.items()
    }


def _check(history: History, lake: dict[str, Path]) -> list[int]:
    """Both warehouses read every fact's current member through their moves, the same as
    through the whole snapshot and as the store; returns the identities the Parquet one
    looks up (the DuckDB one looks up none: landing gave their facts the member)."""
    want = _store_members(history)
    found: dict[str, list[int]] = {}
    for fmt, location in lake.items():
        got = _read(location, history.store.group_id)
        assert got["moves"] is not None, f"{location}: the moves are not valid after a run"
        assert {k: got[k] for k in want} == want, location
        full = _read(location, history.store.group_id, through_moves=False)
        assert {k: full[k] for k in want} == want, location
        found[fmt] = got["moves"]
    assert found["duckdb"] == []
    # the DuckDB file's own rows name the current member, whoever reads them
    con = duckdb.connect(str(lake["duckdb"]), read_only=True)
    landed = con.execute(
        "SELECT order_id, member_id FROM orders WHERE group_id = ? ORDER BY order_id",
        [history.store.group_id],
    ).fetchall()
    con.close()
    assert [(o, None if m is None else int(m)) for o, m in landed] == want["orders"]
    return found["parquet"]


@pytest.fixture
def lake(tmp_path: Path) -> dict[str, Path]:
    return {"duckdb": tmp_path / "siyu.duckdb", "parquet": tmp_path / "lake"}


def _land(history: History, lake: dict[str, Path], **options: Any) -> dict[str, Any]:
    reports = {
        fmt: land(history.store.engine, history.store.group_id, path, fmt, **options).to_json()
        for fmt, path in lake.items()
    }
    # the DuckDB file gives moved facts their member in place, leaving none to look up
    assert reports["duckdb"]["identity_moves"]["looked_up"] == 0
    assert reports["parquet"]["identity_moves"]["rewritten"] == 0
    return reports["duckdb"]


def _two_buyers(
    store: Store, lake: dict[str, Path], days: tuple[int, int]
) -> tuple[History, tuple[int, int]]:
    """Members a and b, each with one identity and one order (on `days`), landed; returns
    a and b's identity b1."""
    history = History(store)
    a, b = history.member(), history.member()
    a1, b1 = history.identity(a), history.identity(b)
    history.order(a1, days[0])
    history.order(b1, days[1])
    _land(history, lake)
    return history, (a, b1)


def test_a_merge_and_a_split_move_only_their_identities(
    store: Store, lake: dict[str, Path]
) -> None:
    # given three members, the first with two identities, each with orders on two days
    history = History(store)
    a, b, c = history.member(), history.member(), history.member()
    a1, a2, b1, c1 = (
        history.identity(a),
        history.identity(a),
        history.identity(b),
        history.identity(c),
    )
    for day, who in enumerate((a1, a2, b1, c1, a1, b1)):
        history.order(who, day % 3)
    first = _land(history, lake)
    # then the first landing checks every fact and finds nothing moved
    assert first["identity_moves"]["how"] == "full"
    assert _check(history, lake) == []
    # when OneID merges b into a, with no new facts
    history.move(b1, a)
    report = _land(history, lake)
    # then only the snapshot is landed, and b1 alone is looked up
    assert {t for t, r in report["tables"].items() if r["changed"]} == {"identities"}
    assert report["identity_moves"]["how"] == "incremental"
    assert _check(history, lake) == [b1]
    # and the DuckDB file gave b1's two orders, their lines and two events to a in place
    assert report["identity_moves"]["rewritten"] == 6
    # when a review splits a2 off to a member of its own, and b1 buys again on an old day
    d = history.member()
    history.move(a2, d)
    history.order(b1, 0)
    _land(history, lake)
    # then the old day, landed again, names a for b1; b1 stays looked up for its older days
    # until they are landed again, and a2 joins it
    assert _check(history, lake) == sorted([b1, a2])


def test_a_long_random_history_reads_the_same_as_the_whole_snapshot(
    store: Store, lake: dict[str, Path]
) -> None:
    rng = random.Random(20261206)
    history = History(store)
    for _ in range(4):
        history.identity(history.member())
    for step in range(14):
        # a few things happen between two landings
        for _ in range(rng.randint(1, 4)):
            roll = rng.random()
            if roll < 0.45:  # an order, often on a day landed already (late or back-filled)
                history.order(rng.choice(history.identities), rng.randint(0, 6))
            elif roll < 0.6:  # a new buyer, sometimes left unresolved
                who = history.member() if rng.random() < 0.8 else None
                history.order(history.identity(who), rng.randint(0, 6))
            elif roll < 0.85:  # OneID moves an identity: a merge or a split
                history.move(rng.choice(history.identities), rng.choice(history.members))
            else:  # an unlink: the identity has no member for now
                history.move(rng.choice(history.identities), None)
        options: dict[str, Any] = {}
        if step % 5 == 4:
            options["full"] = True  # every day and snapshot landed again
        elif step % 7 == 3:
            options["tables"] = ["orders", "order_lines", "events"]  # no snapshot this time
        _land(history, lake, **options)
        if "tables" not in options:
            moved = _check(history, lake)
            # only identities OneID moved are looked up, never the whole snapshot
            assert set(moved) <= history.moved


def test_a_run_stopped_before_its_moves_are_written_is_never_trusted(
    store: Store, lake: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a landed store
    history, (a, b1) = _two_buyers(store, lake, days=(0, 1))
    # when b1 moves to a and the next run stops after the snapshot, before the moves
    history.move(b1, a)

    def stopped(*_args: Any) -> int:
        raise KeyboardInterrupt

    for sink in (DuckDBSink, ParquetSink):
        monkeypatch.setattr(sink, "update_moves", stopped)
    for fmt, path in lake.items():
        with pytest.raises(KeyboardInterrupt):
            land(store.engine, store.group_id, path, fmt)
    monkeypatch.undo()
    # then the readers ask the whole snapshot, and read the current members
    want = _store_members(history)
    for location in lake.values():
        got = _read(location, store.group_id)
        assert got["moves"] is None
        assert {k: got[k] for k in want} == want
    # and the next run computes the moves again from every fact
    assert _land(history, lake)["identity_moves"]["how"] == "full"
    assert _check(history, lake) == [b1]


def test_a_warehouse_landed_before_the_moves_is_read_whole_then_given_them(
    store: Store, lake: dict[str, Path]
) -> None:
    # given a warehouse whose moves are gone, as an older siyu left it
    history, (a, b1) = _two_buyers(store, lake, days=(0, 0))
    con = duckdb.connect(str(lake["duckdb"]))
    con.execute("DROP TABLE identity_moves")
    con.execute("DROP TABLE identity_moves_state")
    con.close()
    for file in (lake["parquet"] / "identity_moves").rglob("*"):
        if file.is_file():
            file.unlink()
    history.move(b1, a)
    # then it is read through the whole snapshot until landed again
    for location in lake.values():
        assert _read(location, store.group_id)["moves"] is None
    report = _land(history, lake)
    assert report["identity_moves"]["how"] == "full"
    assert _check(history, lake) == [b1]


def test_a_buyer_landed_before_the_snapshot_knows_them_is_followed(
    store: Store, lake: dict[str, Path]
) -> None:
    # given a landed store
    history = History(store)
    a = history.member()
    history.order(history.identity(a), 0)
    _land(history, lake)
    # when a new, unresolved buyer orders and only the facts are landed
    newcomer = history.identity(None)
    history.order(newcomer, 1)
    _land(history, lake, tables=["orders", "order_lines", "events"])
    # and OneID then resolves them into a, and everything is landed
    history.move(newcomer, a)
    _land(history, lake)
    # then their order, landed without a member, is a's
    assert _check(history, lake) == [newcomer]
    assert dict(_read(lake["parquet"], store.group_id)["orders"])["O2"] == a


@pytest.mark.spark
def test_spark_reads_a_parquet_warehouse_through_its_moves(
    store: Store, lake: dict[str, Path], spark: Any
) -> None:
    # given a Parquet warehouse where b1 was merged into a after its facts were landed
    history = History(store)
    a, b = history.member(), history.member()
    a1, b1 = history.identity(a), history.identity(b)
    for day, who in enumerate((a1, b1, b1)):
        history.order(who, day)
    _land(history, lake)
    history.move(b1, a)
    _land(history, lake)
    assert _check(history, lake) == [b1]
    # then Spark, looking up b1 alone, reads every fact's current member
    con = connect("spark", session=spark)
    wh = open_warehouse(con, lake["parquet"], store.group_id)
    assert wh.moves is not None and wh.moved == 1
    want = _store_members(history)
    for name, facts, key in (
        ("orders", wh.orders(), "order_id"),
        ("lines", wh.lines(), "order_id"),
        ("events", wh.events(), "event_id"),
    ):
        got = con.execute(facts.select(key, "member_id").order_by(key))
        assert [(k, int(m)) for k, m in got.itertuples(index=False)] == want[name]
