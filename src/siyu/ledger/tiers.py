"""Member tiers: earned on spend, order count and activity in a rolling window.

Upgrades happen at once, when an order or an activity makes a member qualify
(`evaluate`). Downgrades wait for the periodic review (`review`): a member found below
its tier gets a grace period first, and is moved down only if it still falls short when
the grace period ends. Every change is appended to `tier_changes` with the metrics that
decided it.

With `scope = "group"` a member has one tier across the brands of the group (scope key
`*`) and every brand's orders count; with `scope = "brand"` it has one per brand.

Benefits: the tier's points multiplier applies to earnings (ledger/orders.py); the
coupon pack of a tier reached by an upgrade is handed to the functions registered in
`UPGRADE_HOOKS`, which the campaigns capability uses to issue coupons.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any, Literal

from sqlalchemy import Connection, Engine, text

from siyu.ledger.program import TierRules, tier_rules
from siyu.orders.scoring import Weights, listed_only, rows_of, score_members, timed, window
from siyu.store.times import stored_now, stored_time


@dataclass(frozen=True)
class TierChange:
    group_id: str
    member_id: int
    scope_key: str
    from_tier: str | None
    to_tier: str
    reason: str
    metrics: dict[str, int]
    coupon_pack: str | None


UPGRADE_HOOKS: list[Callable[[TierChange], None]] = []


def scope_key(rules: TierRules, brand_id: str | None) -> str:
    return "*" if rules.scope == "group" or brand_id is None else brand_id


def current_tier(
    conn: Connection, group_id: str, member_id: int, rules: TierRules, brand_id: str | None
) -> int:
    code = conn.execute(
        text("""SELECT tier_code FROM member_tiers
                WHERE group_id = :g AND member_id = :m AND scope_key = :s"""),
        {"g": group_id, "m": member_id, "s": scope_key(rules, brand_id)},
    ).scalar()
    return rules.index(code)


def metrics(
    conn: Connection,
    group_id: str,
    member_ids: list[int] | None,
    rules: TierRules,
    now: datetime,
) -> dict[tuple[int, str], dict[str, int]]:
    """(member, scope key) -> spend (paid minus refunded), orders and activity score in the
    window ending at `now`; for the listed members, or for everyone active in it.

    A list of members drives both reads: its ids join the orders and the events through
    their `member_id` indexes (SQLite, without statistics, would otherwise walk every row
    of the group by its primary key and test each against the list)."""
    if member_ids is not None:
        member_ids = sorted({int(m) for m in member_ids})
        if not member_ids:
            return {}
    since, now = window(now, rules.window_days)
    scope_col = "'*'" if rules.scope == "group" else "o.brand_id"
    group_by = "o.member_id" if rules.scope == "group" else "o.member_id, o.brand_id"
    found: dict[tuple[int, str], dict[str, int]] = {}
    keys_of: dict[int, list[tuple[int, str]]] = {}  # member -> its keys with orders
    orders = conn.execute(
        timed(f"""SELECT o.member_id, {scope_col} AS scope_key, COUNT(*) AS orders,
                   SUM(o.paid_fen) - COALESCE(SUM(r.refunded), 0) AS spend
                 FROM {rows_of("orders", "o", member_ids)}
                 LEFT JOIN (SELECT order_id, SUM(amount_fen) AS refunded FROM refunds
                            WHERE group_id = :g GROUP BY order_id) r
                   ON r.order_id = o.order_id
                 WHERE o.group_id = :g AND o.member_id IS NOT NULL AND o.status <> 'cancelled'
                   AND o.ordered_at > :since AND o.ordered_at <= :now
                   {listed_only("o", member_ids)}
                 GROUP BY {group_by}"""),
        {"g": group_id, "since": since, "now": now},
    ).all()
    for r in orders:
        key = (int(r.member_id), r.scope_key)
        found[key] = {"spend_fen": int(r.spend or 0), "orders": int(r.orders), "activity": 0}
        keys_of.setdefault(key[0], []).append(key)
    if rules.activity_weights:
        # The affinity score's scorer with the tier's weights and no decay, so the two agree.
        weights = Weights(events=rules.activity_weights, window_days=rules.window_days)
        scores = score_members(conn, group_id, weights, now, member_ids)
        # Activity is not tied to a brand; with per-brand tiers it counts for each.
        # `scores` holds every member with an event in the window, weighted or not.
        for member, score in scores.items():
            keys = keys_of.get(member, [])
            if not keys and rules.scope == "group":
                keys = [(member, "*")]
            for key in keys:
                found.setdefault(key, {"spend_fen": 0, "orders": 0, "activity": 0})
                found[key]["activity"] = int(score.total)
    return found


def evaluate(
    engine: Engine, group_id: str, member_ids: list[int], now: datetime | None = None
) -> list[TierChange]:
    """Upgrade at once the listed members who now qualify for a higher tier."""
    return _run(engine, group_id, member_ids, now or stored_now(), downgrades=False)


def review(engine: Engine, group_id: str, now: datetime | None = None) -> list[TierChange]:
    """The periodic review of every member: upgrades, grace periods, downgrades."""
    return _run(engine, group_id, None, now or stored_now(), downgrades=True)


# A tier set: the row is updated if it exists, else inserted, as one statement each for a
# run of members. PostgreSQL must be told the types of the parameters it also reads in the
# WHERE clause (else "inconsistent types").
_SET = text("""UPDATE member_tiers SET tier_code = :t, since = :now, grace_until = NULL,
                 reviewed_at = :now
               WHERE group_id = :g AND member_id = :m AND scope_key = :s""")
_ADD = text("""INSERT INTO member_tiers (group_id, member_id, scope_key, tier_code, since,
                 reviewed_at)
               SELECT CAST(:g AS VARCHAR(64)), CAST(:m AS BIGINT), CAST(:s AS VARCHAR(64)),
                 CAST(:t AS VARCHAR(64)), :now, :now
               WHERE NOT EXISTS (SELECT 1 FROM member_tiers WHERE group_id = :g
                 AND member_id = :m AND scope_key = :s)""")
_GRACE = text("""UPDATE member_tiers SET grace_until = :u, reviewed_at = :now
                 WHERE group_id = :g AND member_id = :m AND scope_key = :s""")
_RECORD = text("""INSERT INTO tier_changes (group_id, member_id, scope_key, from_tier, to_tier,
                    reason, detail, created_at) VALUES (:g, :m, :s, :f, :t, :r, :d, :now)""")


def _run(
    engine: Engine, group_id: str, member_ids: list[int] | None, now: datetime, downgrades: bool
) -> list[TierChange]:
    """Decide every member's change from what the transaction read, then write them: the
    tier rows in key order (runs of the same statement as one executemany each, so rows
    are still locked in key order), then the changes, appended in the same order."""
    rules = tier_rules(engine, group_id)
    changes: list[TierChange] = []
    writes: list[tuple[Literal["set", "grace"], dict[str, Any]]] = []
    with engine.begin() as conn:
        seen = metrics(conn, group_id, member_ids, rules, now)
        held = _held(conn, group_id, member_ids)
        for key in sorted(set(seen) | (set(held) if downgrades else set())):
            m = seen.get(key, {"spend_fen": 0, "orders": 0, "activity": 0})
            want = rules.qualified(m["spend_fen"], m["orders"], m["activity"])
            code, grace_until = held.get(key, (None, None))
            have = rules.index(code)
            row = {"g": group_id, "m": key[0], "s": key[1], "now": now}
            if want > have or (code is None and want == have):
                writes.append(("set", {**row, "t": rules.tiers[want].code}))
                changes.append(_set(group_id, key, code, rules, want, "upgrade", m))
            elif downgrades and want < have:
                if grace_until is None:
                    writes.append(("grace", {**row, "u": now + timedelta(days=rules.grace_days)}))
                    changes.append(
                        TierChange(group_id, key[0], key[1], code, code or "", "grace", m, None)
                    )
                elif stored_time(grace_until) <= now:
                    writes.append(("set", {**row, "t": rules.tiers[want].code}))
                    changes.append(_set(group_id, key, code, rules, want, "downgrade", m))
            elif downgrades and grace_until is not None:
                writes.append(("grace", {**row, "u": None}))  # qualifies again: grace lifted
        for kind, run in groupby(writes, key=lambda w: w[0]):
            params = [p for _, p in run]
            if kind == "set":
                conn.execute(_SET, params)
                conn.execute(_ADD, params)
            else:
                conn.execute(_GRACE, params)
        if changes:
            conn.execute(_RECORD, [_recorded(c, now) for c in changes])
    for change in changes:
        if change.reason == "upgrade" and change.coupon_pack:
            for hook in UPGRADE_HOOKS:
                hook(change)
    return changes


def _held(
    conn: Connection, group_id: str, member_ids: list[int] | None
) -> dict[tuple[int, str], tuple[str, Any]]:
    only = "" if member_ids is None else f"AND member_id IN ({_ids(member_ids)})"
    rows = conn.execute(
        text(f"""SELECT member_id, scope_key, tier_code, grace_until FROM member_tiers
                 WHERE group_id = :g {only}"""),
        {"g": group_id},
    ).all()
    return {(int(r.member_id), r.scope_key): (r.tier_code, r.grace_until) for r in rows}


def _set(
    group_id: str,
    key: tuple[int, str],
    old: str | None,
    rules: TierRules,
    index: int,
    reason: str,
    m: dict[str, int],
) -> TierChange:
    tier = rules.tiers[index]
    pack = tier.coupon_pack if reason == "upgrade" and old != tier.code else None
    return TierChange(group_id, key[0], key[1], old, tier.code, reason, m, pack)


def _recorded(change: TierChange, now: datetime) -> dict[str, Any]:
    """The change's row in `tier_changes`, with the metrics that decided it."""
    return {
        "g": change.group_id,
        "m": change.member_id,
        "s": change.scope_key,
        "f": change.from_tier,
        "t": change.to_tier,
        "r": change.reason,
        "d": json.dumps({"metrics": change.metrics, "coupon_pack": change.coupon_pack}),
        "now": now,
    }


def _ids(member_ids: list[int]) -> str:
    return ", ".join(str(int(m)) for m in member_ids) or "NULL"
