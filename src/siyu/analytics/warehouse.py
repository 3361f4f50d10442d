"""Reading the warehouse as Ibis tables, on DuckDB or Spark.

A DuckDB warehouse (one file) is attached read-only to a DuckDB backend; a Parquet
warehouse (a directory, `sinks.ParquetSink`) is read by either engine. Facts keep the
buyer's identity; `orders()` and `events()` give each row the member its identity belongs
to now (from the identities snapshot), so OneID merges and splits after a fact was landed
are seen without landing it again. Where landing left valid identity moves (`moves`), only
those few identities are looked up: every other row already names its current member (and
in a DuckDB warehouse, where landing rewrites the moved facts in place, none is).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
from ibis import BaseBackend

from siyu.analytics.engines import attach_duckdb, connect, engine_name
from siyu.analytics.moves import MOVES
from siyu.analytics.schema import ALL, PARTITION
from siyu.analytics.sinks import MOVES_STATE, RUNS_FILE, SNAPSHOT_FILE
from siyu.errors import ValidationError

ATTACHED = "siyu_warehouse"


@dataclass(frozen=True)
class Warehouse:
    """One brand group's landed tables."""

    con: BaseBackend
    group_id: str
    location: str
    tables: dict[str, ir.Table]
    # identity_id -> member_id of the identities whose facts may name another member than
    # the snapshot's (`moves`); None: not known, so the whole snapshot is asked
    moves: ir.Table | None = None
    moved: int = 0  # rows of `moves`: none, and every fact already names its member

    def table(self, name: str) -> ir.Table:
        return self.tables[name]

    def orders(self) -> ir.Table:
        """Orders with `member_id` = the buyer identity's current member."""
        return self._current(self.tables["orders"], "buyer_identity_id")

    def lines(self) -> ir.Table:
        """Order lines with `member_id` = the buyer identity's current member (each line
        carries its order's buyer, `ordered_at` and `status`)."""
        return self._current(self.tables["order_lines"], "buyer_identity_id")

    def events(self) -> ir.Table:
        """Events with `member_id` = the identity's current member."""
        return self._current(self.tables["events"], "identity_id")

    def members(self) -> ir.Table:
        """Members that are not merged into another (OneID's survivors and singles)."""
        m = self.tables["members"]
        return m.filter(m.status == "active")

    def purchases(self) -> ir.Table:
        """Orders as the member analytics read them (`orders.REQUIRED` plus dimensions):
        paid and refunded orders of resolved members, `amount_fen` = what was paid. One row
        per order (the store's key, and a day is landed whole), so analyses may be told
        `distinct=True`; materialise it once (`.cache()`) when several read it."""
        o = self.orders()
        o = o.filter((o.status != "cancelled") & o.member_id.notnull())
        return o.select(
            "order_id",
            "member_id",
            "ordered_at",
            amount_fen=o.paid_fen.cast("int64"),
            status=o.status,
            brand_id=o.brand_id,
            channel=o.channel,
            store_id=o.store_id,
            guide_id=o.guide_id,
        )

    def data_end(self) -> datetime | None:
        """The time the landed data reaches: its newest fact (an order of any status, an
        event, a member's registration). Every page of one snapshot is as of this time, so
        a member who joined after the last order is counted on every page or on none,
        and "the latest month" is the data's, not the calendar's. None when empty."""
        times = (
            self.tables["orders"].ordered_at,
            self.tables["events"].occurred_at,
            self.tables["members"].registered_at,
        )
        found = [self.con.execute(t.max()) for t in times]
        latest = [pd.Timestamp(v).to_pydatetime() for v in found if not pd.isna(v)]
        return max(latest) if latest else None

    def _current(self, facts: ir.Table, key: str) -> ir.Table:
        if self.moves is not None and not self.moved:
            return facts
        ids = self.tables["identities"] if self.moves is None else self.moves
        ids = ids.select(wh_identity=ids.identity_id, wh_member=ids.member_id)
        joined = facts.left_join(ids, facts[key] == ids.wh_identity)
        # an identity looked up has its member there, none included (OneID unlinked it);
        # one the snapshot does not hold yet keeps the member it was landed with
        member = joined.wh_identity.notnull().ifelse(joined.wh_member, joined.member_id)
        return joined.select(
            *(member.name("member_id") if c == "member_id" else joined[c] for c in facts.columns)
        )


def open_warehouse(con: BaseBackend, location: Path, group_id: str) -> Warehouse:
    """The landed tables of `group_id` at `location` (a DuckDB file or a Parquet
    directory), as Ibis tables of `con`."""
    if not location.exists():
        raise ValidationError(
            "warehouse", f"{location} does not exist; land it first with `siyu warehouse land`"
        )
    tables: dict[str, ir.Table] = {}
    moves: ir.Table | None = None
    if location.is_dir():
        landed_moves = location / MOVES / group_id / SNAPSHOT_FILE
        if landed_moves.is_file():
            moves = con.read_parquet(str(landed_moves))
            moves = moves.filter(moves.known)
        for spec in ALL:
            files = sorted((location / spec.name / group_id).glob("*.parquet"))
            if files:
                table = con.read_parquet(str(location / spec.name / group_id / "*.parquet"))
            else:  # nothing landed yet: an empty table of the right shape
                table = ibis.memtable(spec.schema().empty_table())
            tables[spec.name] = table
    else:
        if engine_name(con) != "duckdb":
            raise ValidationError(
                "warehouse",
                f"{location} is a DuckDB file, which only the duckdb engine reads; for Spark "
                "land a Parquet warehouse (`siyu warehouse land --format parquet --out DIR`)",
            )
        try:
            attach_duckdb(con, location, ATTACHED)
        except Exception as exc:  # DuckDB's IOException for a file of another kind
            raise ValidationError(
                "warehouse", f"{location} is not a DuckDB file ({exc}); give a warehouse"
            ) from exc
        for spec in ALL:
            try:
                table = con.table(spec.name, database=(ATTACHED, "main"))
            except Exception as exc:  # Ibis raises backend-specific errors here
                raise ValidationError(
                    "warehouse",
                    f"{location} has no table {spec.name!r}; is it a siyu warehouse? "
                    "(`siyu warehouse land` makes one)",
                ) from exc
            tables[spec.name] = table.filter(table.group_id == group_id)
        moves = _valid_moves(con, group_id)
    for spec in ALL:
        missing = [c for c in spec.schema().names if c not in tables[spec.name].columns]
        if missing:
            raise ValidationError(
                "warehouse",
                f"{location}'s {spec.name} has no column {missing[0]!r}: it was landed by an "
                "older siyu; land it again (`siyu warehouse land`), which lands that table whole",
            )
    moved = 0 if moves is None else int(con.execute(moves.count()))
    return Warehouse(con, group_id, str(location), tables, moves, moved)


def _valid_moves(con: BaseBackend, group_id: str) -> ir.Table | None:
    """The attached DuckDB warehouse's identity moves of the group the snapshot holds, when
    the last landing run finished writing them (a warehouse landed by an older siyu has
    none). Landing rewrites their facts in place, so there are none to look up."""
    try:
        state = con.table(MOVES_STATE, database=(ATTACHED, "main"))
        moves = con.table(MOVES, database=(ATTACHED, "main"))
    except Exception:  # Ibis raises backend-specific errors for a missing table
        return None
    if not int(con.execute(state.filter(state.group_id == group_id).count())):
        return None
    return moves.filter((moves.group_id == group_id) & moves.known)


def warehouse_status(location: Path, group_id: str) -> dict[str, Any]:
    """What the warehouse holds for a group: rows and day range per table, the last run."""
    con = connect("duckdb")
    try:
        wh = open_warehouse(con, location, group_id)
        tables: dict[str, Any] = {}
        for name, table in wh.tables.items():
            entry: dict[str, Any] = {"rows": int(con.execute(table.count()))}
            if PARTITION in table.columns:
                first, latest = (
                    con.execute(table[PARTITION].min()),
                    con.execute(table[PARTITION].max()),
                )
                entry["first_day"] = None if first is None or pd.isna(first) else str(first)[:10]
                entry["latest_day"] = (
                    None if latest is None or pd.isna(latest) else str(latest)[:10]
                )
            tables[name] = entry
        # None: not written by a finished run, so readers join the whole snapshot
        moves = None if wh.moves is None else wh.moved
        last_run = _last_run(con, location, group_id)
    finally:
        con.disconnect()
    return {
        "warehouse": str(location),
        "group": group_id,
        "tables": tables,
        "identity_moves": moves,
        "last_run": last_run,
    }


def _last_run(con: BaseBackend, location: Path, group_id: str) -> dict[str, Any] | None:
    if location.is_dir():
        runs = location / RUNS_FILE
        lines = runs.read_text(encoding="utf-8").splitlines() if runs.is_file() else []
        mine = [json.loads(line) for line in lines if line.strip()]
        mine = [r for r in mine if r.get("group_id") == group_id]
        return mine[-1] if mine else None
    rows = con.raw_sql(
        f"SELECT report FROM {ATTACHED}.land_runs WHERE group_id = ? "
        "ORDER BY started_at DESC, rowid DESC LIMIT 1",
        parameters=[group_id],
    ).fetchall()
    return json.loads(rows[0][0]) if rows else None
