"""The one scorer of behaviour: Σ coefficient(behaviour) × (decayed) count, per member,
over the facts of a window (`since`, `now`].

Two readers use it and must never disagree: the tiers' activity score (`ledger.tiers`:
event weights, no decay) and the affinity score (`segments.affinity`: coefficients for
event types, orders and spend, with a half-life). One function computes both, so a
member's tier activity is the affinity score under the same weights.

Behaviours: each event type named, `orders` (non-cancelled orders) and
`spend_per_100_yuan` (their paid amount less refunds, in hundreds of yuan). With a
half-life h, a fact t days old counts 0.5^(t / h) instead of 1, computed in the store's SQL
(one row per member comes back, whatever the number of facts).

Times: the window is bound as typed timestamps, so SQLite compares the text it stores
(`2024-03-01 10:00:00.000000`) with text in the same form; a bare Python datetime would be
sent as `2024-03-01 10:00:00`, which sorts before the stored form of the same instant and
would move the window's edges by one fact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, DateTime, TextClause, bindparam, text

from siyu.store.dialect import dialect_of

ORDERS = "orders"
SPEND = "spend_per_100_yuan"
FEN_PER_100_YUAN = 10_000
DAY_SECONDS = 86_400


@dataclass(frozen=True)
class Weights:
    """What a score counts: a coefficient per event type, optionally per order and per
    hundred yuan spent (None: not scored, and not read), over `window_days`, decayed by
    `half_life_days` (None: every fact in the window counts 1)."""

    events: Mapping[str, float]
    window_days: int
    half_life_days: float | None = None
    orders: float | None = None
    spend_per_100_yuan: float | None = None


@dataclass(frozen=True)
class Part:
    """One behaviour's share of a score. `count` is events or orders (for spend: the net
    spend in hundreds of yuan); `decayed` the same after decay (= count without one)."""

    behaviour: str
    count: float
    decayed: float
    coefficient: float
    points: float


@dataclass(frozen=True)
class Score:
    member_id: int
    total: float
    parts: tuple[Part, ...]


def window(now: datetime, window_days: int) -> tuple[datetime, datetime]:
    """(since, now] as stored times (UTC, no zone, whole seconds)."""
    now = now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now
    return now - timedelta(days=window_days), now


def timed(sql: str) -> TextClause:
    """`sql` with :since and :now bound as timestamps (see the module's note on SQLite)."""
    return text(sql).bindparams(
        bindparam("since", type_=DateTime()), bindparam("now", type_=DateTime())
    )


def score_members(
    conn: Connection,
    group_id: str,
    weights: Weights,
    now: datetime,
    member_ids: Sequence[int] | None = None,
    active_only: bool = False,
) -> dict[int, Score]:
    """Per member with a fact in the window (any event type counts, weighted or not: the
    tiers treat such a member as active), the total and a part per behaviour, as of `now`;
    only the listed members when there is a list. A member without facts is left out
    (`nothing` is its score). `active_only` leaves merged members out."""
    listed = None if member_ids is None else sorted({int(m) for m in member_ids})
    if listed is not None and not listed:
        return {}
    since, now = window(now, weights.window_days)
    params: dict[str, Any] = {"g": group_id, "since": since, "now": now}
    if weights.half_life_days is not None:
        # 0.5^(age / h) = exp(k * age), age in seconds: one multiplication per fact in SQL
        params["k"] = -math.log(2) / (weights.half_life_days * DAY_SECONDS)
        params["now_s"] = int(now.replace(tzinfo=UTC).timestamp())
    types = list(weights.events)
    event_rows: dict[int, Any] = {}
    if types:
        event_rows = _events(conn, types, listed, params, active_only)
    order_rows: dict[int, Any] = {}
    if weights.orders is not None or weights.spend_per_100_yuan is not None:
        order_rows = _orders(conn, listed, params, active_only)
    members = sorted(set(event_rows) | set(order_rows))
    decays = "k" in params
    found: dict[int, Score] = {}
    for member in members:
        parts: list[Part] = []
        o = order_rows.get(member)
        if weights.orders is not None:
            n = int(o.n) if o is not None else 0
            d = float(o.dn) if o is not None and decays else n
            parts.append(_part(ORDERS, n, d, weights.orders))
        if weights.spend_per_100_yuan is not None:
            spend = int(o.spend or 0) / FEN_PER_100_YUAN if o is not None else 0.0
            d = float(o.dspend or 0) / FEN_PER_100_YUAN if o is not None and decays else spend
            parts.append(_part(SPEND, spend, d, weights.spend_per_100_yuan))
        e = event_rows.get(member)
        for i, kind in enumerate(types):
            n = int(getattr(e, f"n{i}") or 0) if e is not None else 0
            d = float(getattr(e, f"d{i}") or 0) if e is not None and decays else n
            parts.append(_part(kind, n, d, weights.events[kind]))
        found[member] = Score(member, sum(p.points for p in parts), tuple(parts))
    return found


def nothing(member_id: int, weights: Weights) -> Score:
    """The score of a member without facts in the window: every part zero."""
    named = [(ORDERS, weights.orders), (SPEND, weights.spend_per_100_yuan)]
    parts = [_part(b, 0, 0, c) for b, c in named if c is not None]
    parts += [_part(kind, 0, 0, c) for kind, c in weights.events.items()]
    return Score(member_id, 0, tuple(parts))


def _part(behaviour: str, count: float, decayed: float, coefficient: float) -> Part:
    return Part(behaviour, count, decayed, coefficient, coefficient * decayed)


def _decay(conn: Connection, column: str) -> str:
    return f"EXP(:k * (:now_s - {dialect_of(conn).epoch_seconds(column)}))"


def _events(
    conn: Connection,
    types: list[str],
    listed: list[int] | None,
    params: dict[str, Any],
    active_only: bool,
) -> dict[int, Any]:
    """One row per member: n<i> events of types[i] in the window and, with decay, d<i>."""
    params = dict(params)
    columns = []
    for i, kind in enumerate(types):
        params[f"t{i}"] = kind
        columns.append(f"SUM(CASE WHEN e.type = :t{i} THEN 1 ELSE 0 END) AS n{i}")
        if "k" in params:
            decayed = _decay(conn, "e.occurred_at")
            columns.append(f"SUM(CASE WHEN e.type = :t{i} THEN {decayed} ELSE 0 END) AS d{i}")
    rows = conn.execute(
        timed(f"""SELECT e.member_id, {", ".join(columns)}
                  FROM {rows_of("events", "e", listed)}
                  WHERE e.group_id = :g AND e.member_id IS NOT NULL
                    AND e.occurred_at > :since AND e.occurred_at <= :now
                    {listed_only("e", listed)} {_active("e", active_only)}
                  GROUP BY e.member_id"""),
        params,
    ).all()
    return {int(r.member_id): r for r in rows}


def _orders(
    conn: Connection, listed: list[int] | None, params: dict[str, Any], active_only: bool
) -> dict[int, Any]:
    """One row per member: n orders and their net spend in fen, with decay dn and dspend."""
    net = "(o.paid_fen - COALESCE(r.refunded, 0))"
    columns = f"COUNT(*) AS n, SUM({net}) AS spend"
    if "k" in params:
        decayed = _decay(conn, "o.ordered_at")
        columns += f", SUM({decayed}) AS dn, SUM({net} * {decayed}) AS dspend"
    rows = conn.execute(
        timed(f"""SELECT o.member_id, {columns}
                  FROM {rows_of("orders", "o", listed)}
                  LEFT JOIN (SELECT order_id, SUM(amount_fen) AS refunded FROM refunds
                             WHERE group_id = :g GROUP BY order_id) r
                    ON r.order_id = o.order_id
                  WHERE o.group_id = :g AND o.member_id IS NOT NULL
                    AND o.status <> 'cancelled'
                    AND o.ordered_at > :since AND o.ordered_at <= :now
                    {listed_only("o", listed)} {_active("o", active_only)}
                  GROUP BY o.member_id"""),
        params,
    ).all()
    return {int(r.member_id): r for r in rows}


def _active(alias: str, active_only: bool) -> str:
    if not active_only:
        return ""
    return f"""AND EXISTS (SELECT 1 FROM members m WHERE m.group_id = {alias}.group_id
               AND m.member_id = {alias}.member_id AND m.status = 'active')"""


def rows_of(table: str, alias: str, member_ids: Sequence[int] | None) -> str:
    """`table alias`, behind the listed ids when there is a list: the ids, as a VALUES
    list, come first in a CROSS JOIN (SQLite keeps that order, so each id looks its rows
    up in the member_id index; PostgreSQL plans it as any join). `listed_only` joins them."""
    if member_ids is None:
        return f"{table} {alias}"
    values = ", ".join(f"({int(m)})" for m in member_ids)
    listed = f"(SELECT column1 AS member_id FROM (VALUES {values}) AS v) listed"
    return f"{listed} CROSS JOIN {table} {alias}"


def listed_only(alias: str, member_ids: Sequence[int] | None) -> str:
    return "" if member_ids is None else f"AND {alias}.member_id = listed.member_id"
