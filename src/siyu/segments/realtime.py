"""Real-time segments: re-evaluate, as facts arrive, the members whose facts just changed.

A segment whose refresh is `realtime` (say "carted and did not pay within 24 h") is still
evaluated in full on the warehouse (`segments.evaluate`, nightly). Between those runs,
`run_realtime` (a loop: `siyu segments realtime --every 60`) takes the members with an order
or event since its last pass, reads just their facts from the store, runs the same compiled
rule (one Ibis expression, on an in-memory DuckDB) as of now, and writes only their enters
and leaves (`membership.update_members_within`); nobody else's membership is touched.

Which members: those with a fact at or after the last pass minus the rule's longest
follow-up hold (`event_then_not.within_hours`): a member who carted 24 h ago becomes due
now without any new fact. A rule whose truth changes only with time (no order in 60 days)
is left to the full evaluation; the real-time pass never makes a member leave for a reason
its new facts did not give.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, DateTime, Engine, insert, select, text

from siyu.analytics.engines import connect, load_arrow, to_arrow
from siyu.analytics.schema import ARROW
from siyu.segments.compile import SegmentTables, compile_rule
from siyu.segments.membership import SEGMENT_MEMBERS, update_members_within
from siyu.segments.models import segment_evaluations
from siyu.segments.rules import (
    SLUG,
    TAG_SLUG,
    Condition,
    EventThenNot,
    RuleDocument,
    parse_document,
    references,
)
from siyu.segments.sources import STORE_ATTRIBUTES, quoted_slugs
from siyu.segments.stored import StoredSegment, list_segments, lock_segment
from siyu.store.bulk import stage, unstage
from siyu.store.times import stored_now

FIRST_LOOKBACK = timedelta(days=1)  # a segment never evaluated looks back this far
TIME = pa.timestamp("us")


@dataclass(frozen=True)
class RealtimePass:
    slug: str
    considered: int  # members whose facts changed (or whose hold just closed)
    entered: int
    left: int
    size: int
    seconds: float


def longest_hold(rule: Condition) -> timedelta:
    """The longest follow-up window of the rule's `event_then_not` conditions (0 if none)."""
    hours = 0
    stack: list[Any] = [rule]
    while stack:
        node = stack.pop()
        if isinstance(node, EventThenNot):
            hours = max(hours, node.within_hours)
        stack.extend(getattr(node, "conditions", ()))
        if hasattr(node, "condition"):
            stack.append(node.condition)
    return timedelta(hours=hours)


def run_realtime(
    engine: Engine,
    group_id: str,
    now: datetime | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[RealtimePass]:
    """One pass over every live real-time segment of the group."""
    moment = now or stored_now()
    with engine.connect() as conn:
        live = [s for s in list_segments(conn, group_id) if s.refresh == "realtime"]
    done = []
    for i, segment in enumerate(live):
        if progress is not None:
            progress(segment.slug, i, len(live))
        done.append(_pass(engine, group_id, segment, moment))
    return done


def _pass(engine: Engine, group_id: str, segment: StoredSegment, now: datetime) -> RealtimePass:
    started = time.perf_counter()
    document = parse_document(segment.rule)
    since = (_last_pass(engine, group_id, segment.segment_id) or now - FIRST_LOOKBACK) - (
        longest_hold(document.rule)
    )
    with engine.begin() as conn:
        locked = lock_segment(conn, group_id, segment.slug)
        if locked.version != segment.version:
            segment, document = locked, parse_document(locked.rule)
        considered = _touched(conn, group_id, since, now)
        selected = (
            evaluate_members(conn, group_id, document, considered, now)
            if len(considered)
            else considered
        )
        applied = update_members_within(
            conn,
            SEGMENT_MEMBERS,
            group_id,
            segment.segment_id,
            considered,
            selected,
            "realtime",
            stored_now(),
        )
        size = conn.execute(
            text("SELECT COUNT(*) FROM segment_members WHERE group_id = :g AND segment_id = :s"),
            {"g": group_id, "s": segment.segment_id},
        ).scalar_one()
        seconds = round(time.perf_counter() - started, 3)
        conn.execute(
            insert(segment_evaluations).values(
                group_id=group_id,
                segment_id=segment.segment_id,
                version=segment.version,
                as_of=now,
                trigger="event",
                engine="duckdb",
                size=int(size),
                entered=applied.entered,
                left=applied.left,
                seconds=seconds,
                at=stored_now(),
            )
        )
    return RealtimePass(
        segment.slug, len(considered), applied.entered, applied.left, int(size), seconds
    )


def _last_pass(engine: Engine, group_id: str, segment_id: int) -> datetime | None:
    """The data time the segment was last evaluated as of (any trigger)."""
    with engine.connect() as conn:
        found: datetime | None = conn.execute(
            select(segment_evaluations.c.as_of)
            .where(
                segment_evaluations.c.group_id == group_id,
                segment_evaluations.c.segment_id == segment_id,
            )
            .order_by(segment_evaluations.c.evaluation_id.desc())
            .limit(1)
        ).scalar()
    return found


def _touched(conn: Connection, group_id: str, since: datetime, now: datetime) -> np.ndarray:
    """Active members with an order or an event in [since, now]."""
    rows = conn.execute(
        text("""SELECT DISTINCT m.member_id FROM (
                  SELECT member_id FROM orders WHERE group_id = :g
                    AND ordered_at >= :since AND ordered_at <= :now
                  UNION
                  SELECT member_id FROM events WHERE group_id = :g
                    AND occurred_at >= :since AND occurred_at <= :now) t
                JOIN members m ON m.group_id = :g AND m.member_id = t.member_id
                WHERE m.status = 'active' ORDER BY m.member_id"""),
        {"g": group_id, "since": since, "now": now},
    )
    return np.array([int(r[0]) for r in rows], dtype=np.int64)


def evaluate_members(
    conn: Connection,
    group_id: str,
    document: RuleDocument,
    member_ids: np.ndarray,
    as_of: datetime,
) -> np.ndarray:
    """Which of `member_ids` the rule selects as of `as_of`, from their facts in the store:
    the same compiled rule the warehouse runs, on an in-memory DuckDB."""
    needs = references(document.rule)
    staged = stage(conn, "rt", pa.table({"member_id": pa.array(member_ids, pa.int64())}))
    reader = _Reader(conn, group_id, staged.name)
    backend = connect("duckdb")
    try:
        members = reader.table(
            "SELECT x.member_id, x.status, x.brand_id, x.registered_at FROM members x",
            {"member_id": pa.int64(), "registered_at": TIME},
        )
        for name in sorted(a for a in needs.attributes if a in STORE_ATTRIBUTES):
            attribute = STORE_ATTRIBUTES[name]
            values = reader.table(
                f"SELECT x.member_id AS a_member, x.{attribute.column} AS {name} "
                f"FROM {attribute.source}",
                {"a_member": pa.int64(), name: ARROW[attribute.kind]},
            )
            values = values.set_column(1, name, attribute.compared(values.column(name)))
            members = members.join(values, "member_id", "a_member", join_type="left outer")
            if attribute.missing is not None:
                at = members.schema.get_field_index(name)
                filled = pc.fill_null(members.column(name), attribute.missing)
                members = members.set_column(at, name, filled)
        tables: dict[str, Any] = {"members": load_arrow(backend, members, "rt_members")}
        if {"orders", "order_lines"} & needs.tables:
            orders = reader.table(
                "SELECT x.order_id, x.member_id, x.ordered_at, x.paid_fen AS amount_fen, "
                "x.status, x.brand_id, x.channel, x.store_id, x.guide_id FROM orders x",
                {"member_id": pa.int64(), "ordered_at": TIME, "amount_fen": pa.int64()},
            )
            tables["orders"] = load_arrow(backend, orders, "rt_orders")
        if "order_lines" in needs.tables:
            lines = reader.table(
                "SELECT x.member_id, x.ordered_at, x.status, l.sku FROM orders x "
                "JOIN order_lines l ON l.group_id = x.group_id AND l.order_id = x.order_id",
                {"member_id": pa.int64(), "ordered_at": TIME},
            )
            tables["order_lines"] = load_arrow(backend, lines, "rt_lines")
        if "products" in needs.tables:
            products = reader.table(
                "SELECT DISTINCT p.sku, p.category FROM orders x JOIN order_lines l "
                "ON l.group_id = x.group_id AND l.order_id = x.order_id "
                "JOIN products p ON p.group_id = l.group_id AND p.sku = l.sku",
                {},
            )
            tables["products"] = load_arrow(backend, products, "rt_products")
        if "events" in needs.tables:
            events = reader.table(
                "SELECT x.member_id, x.type, x.occurred_at, x.sku, x.channel FROM events x",
                {"member_id": pa.int64(), "occurred_at": TIME},
            )
            tables["events"] = load_arrow(backend, events, "rt_events")
        if "tags" in needs.tables:
            tags = reader.table(
                "SELECT x.member_id, t.slug AS tag, x.value FROM member_tags x JOIN tags t "
                f"ON t.tag_id = x.tag_id AND t.slug IN ({quoted_slugs(needs.tags, TAG_SLUG)})",
                {"member_id": pa.int64()},
            )
            tables["tags"] = load_arrow(backend, tags, "rt_tags")
        if "memberships" in needs.tables:
            nested = quoted_slugs(needs.segments, SLUG)
            memberships = reader.table(
                "SELECT s.slug AS segment, x.member_id FROM segment_members x JOIN segments s "
                f"ON s.segment_id = x.segment_id AND s.slug IN ({nested})",
                {"member_id": pa.int64()},
            )
            tables["memberships"] = load_arrow(backend, memberships, "rt_memberships")
        selected = to_arrow(backend, compile_rule(document, SegmentTables(**tables), as_of))
    finally:
        backend.disconnect()
        unstage(conn, staged)
    return np.sort(selected.column("member_id").to_numpy().astype(np.int64))


class _Reader:
    """The group's rows of a query restricted to the staged members (`x.member_id`)."""

    def __init__(self, conn: Connection, group_id: str, staged: str) -> None:
        self.conn, self.group_id, self.staged = conn, group_id, staged

    def table(self, sql: str, types: dict[str, pa.DataType]) -> pa.Table:
        """Columns typed by `types` (text when not named); times are typed in the query too,
        so SQLite's ISO text comes back as a datetime like PostgreSQL's."""
        where = f" WHERE x.group_id = :g AND x.member_id IN (SELECT member_id FROM {self.staged})"
        times = {c: DateTime for c, kind in types.items() if kind == TIME}
        query = text(sql + where).columns(**times)
        result = self.conn.execute(query, {"g": self.group_id})
        names = list(result.keys())
        rows = result.all()
        columns: list[Any] = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
        return pa.table(
            {
                name: pa.array(list(values), types.get(name, pa.string()))
                for name, values in zip(names, columns, strict=True)
            }
        )
