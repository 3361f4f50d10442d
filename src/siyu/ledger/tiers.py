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
from typing import Any

from sqlalchemy import Connection, Engine, text

from siyu.ledger.program import TierRules, tier_rules
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
    window ending at `now`; for the listed members, or for everyone active in it."""
    since = now - timedelta(days=rules.window_days)
    scope_col = "'*'" if rules.scope == "group" else "o.brand_id"
    group_by = "o.member_id" if rules.scope == "group" else "o.member_id, o.brand_id"
    only = "" if member_ids is None else f"AND o.member_id IN ({_ids(member_ids)})"
    found: dict[tuple[int, str], dict[str, int]] = {}
    orders = conn.execute(
        text(f"""SELECT o.member_id, {scope_col} AS scope_key, COUNT(*) AS orders,
                   SUM(o.paid_fen) - COALESCE(SUM(r.refunded), 0) AS spend
                 FROM orders o
                 LEFT JOIN (SELECT order_id, SUM(amount_fen) AS refunded FROM refunds
                            WHERE group_id = :g GROUP BY order_id) r
                   ON r.order_id = o.order_id
                 WHERE o.group_id = :g AND o.member_id IS NOT NULL AND o.status <> 'cancelled'
                   AND o.ordered_at > :since AND o.ordered_at <= :now {only}
                 GROUP BY {group_by}"""),
        {"g": group_id, "since": since, "now": now},
    ).all()
    for r in orders:
        found[int(r.member_id), r.scope_key] = {
            "spend_fen": int(r.spend or 0),
            "orders": int(r.orders),
            "activity": 0,
        }
    weights = rules.activity_weights
    if weights:
        cases = " ".join(f"WHEN '{_quote(t)}' THEN {int(w)}" for t, w in weights.items())
        only_e = "" if member_ids is None else f"AND member_id IN ({_ids(member_ids)})"
        events = conn.execute(
            text(f"""SELECT member_id, SUM(CASE type {cases} ELSE 0 END) AS score
                     FROM events WHERE group_id = :g AND member_id IS NOT NULL
                       AND occurred_at > :since AND occurred_at <= :now {only_e}
                     GROUP BY member_id"""),
            {"g": group_id, "since": since, "now": now},
        ).all()
        # Activity is not tied to a brand; with per-brand tiers it counts for each.
        for r in events:
            keys = [k for k in found if k[0] == int(r.member_id)]
            if not keys and rules.scope == "group":
                keys = [(int(r.member_id), "*")]
            for key in keys:
                found.setdefault(key, {"spend_fen": 0, "orders": 0, "activity": 0})
                found[key]["activity"] = int(r.score or 0)
    return found


def evaluate(
    engine: Engine, group_id: str, member_ids: list[int], now: datetime | None = None
) -> list[TierChange]:
    """Upgrade at once the listed members who now qualify for a higher tier."""
    return _run(engine, group_id, member_ids, now or stored_now(), downgrades=False)


def review(engine: Engine, group_id: str, now: datetime | None = None) -> list[TierChange]:
    """The periodic review of every member: upgrades, grace periods, downgrades."""
    return _run(engine, group_id, None, now or stored_now(), downgrades=True)


def _run(
    engine: Engine, group_id: str, member_ids: list[int] | None, now: datetime, downgrades: bool
) -> list[TierChange]:
    rules = tier_rules(engine, group_id)
    changes: list[TierChange] = []
    with engine.begin() as conn:
        seen = metrics(conn, group_id, member_ids, rules, now)
        held = _held(conn, group_id, member_ids)
        for key in sorted(set(seen) | (set(held) if downgrades else set())):
            m = seen.get(key, {"spend_fen": 0, "orders": 0, "activity": 0})
            want = rules.qualified(m["spend_fen"], m["orders"], m["activity"])
            code, grace_until = held.get(key, (None, None))
            have = rules.index(code)
            if want > have or (code is None and want == have):
                changes.append(_set(conn, group_id, key, code, rules, want, "upgrade", m, now))
            elif downgrades and want < have:
                if grace_until is None:
                    until = now + timedelta(days=rules.grace_days)
                    _grace(conn, group_id, key, until, now)
                    changes.append(
                        _record(conn, group_id, key, code, code or "", "grace", m, now, None)
                    )
                elif stored_time(grace_until) <= now:
                    changes.append(
                        _set(conn, group_id, key, code, rules, want, "downgrade", m, now)
                    )
            elif downgrades and grace_until is not None:
                _grace(conn, group_id, key, None, now)  # qualifies again: grace lifted
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
    conn: Connection,
    group_id: str,
    key: tuple[int, str],
    old: str | None,
    rules: TierRules,
    index: int,
    reason: str,
    m: dict[str, int],
    now: datetime,
) -> TierChange:
    tier = rules.tiers[index]
    params = {"g": group_id, "m": key[0], "s": key[1], "t": tier.code, "now": now}
    updated = conn.execute(
        text("""UPDATE member_tiers SET tier_code = :t, since = :now, grace_until = NULL,
                  reviewed_at = :now
                WHERE group_id = :g AND member_id = :m AND scope_key = :s"""),
        params,
    ).rowcount
    if not updated:
        conn.execute(
            text("""INSERT INTO member_tiers (group_id, member_id, scope_key, tier_code, since,
                      reviewed_at) VALUES (:g, :m, :s, :t, :now, :now)"""),
            params,
        )
    pack = tier.coupon_pack if reason == "upgrade" and old != tier.code else None
    return _record(conn, group_id, key, old, tier.code, reason, m, now, pack)


def _grace(
    conn: Connection, group_id: str, key: tuple[int, str], until: datetime | None, now: datetime
) -> None:
    conn.execute(
        text("""UPDATE member_tiers SET grace_until = :u, reviewed_at = :now
                WHERE group_id = :g AND member_id = :m AND scope_key = :s"""),
        {"g": group_id, "m": key[0], "s": key[1], "u": until, "now": now},
    )


def _record(
    conn: Connection,
    group_id: str,
    key: tuple[int, str],
    old: str | None,
    new: str,
    reason: str,
    m: dict[str, int],
    now: datetime,
    pack: str | None,
) -> TierChange:
    conn.execute(
        text("""INSERT INTO tier_changes (group_id, member_id, scope_key, from_tier, to_tier,
                  reason, detail, created_at) VALUES (:g, :m, :s, :f, :t, :r, :d, :now)"""),
        {
            "g": group_id,
            "m": key[0],
            "s": key[1],
            "f": old,
            "t": new,
            "r": reason,
            "d": json.dumps({"metrics": m, "coupon_pack": pack}),
            "now": now,
        },
    )
    return TierChange(group_id, key[0], key[1], old, new, reason, m, pack)


def _ids(member_ids: list[int]) -> str:
    return ", ".join(str(int(m)) for m in member_ids) or "NULL"


def _quote(value: str) -> str:
    return value.replace("'", "''")
