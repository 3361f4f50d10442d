"""Tier evaluation, fast path: a slice's metrics read in two queries driven by its member
ids, its changes written a statement per run of members. It must decide and write exactly
what the rules say, whatever the slice.

A small synthetic brand (the demo generator) is imported twice into one store, as two
brand groups with the same tier rules (per group and per brand: both scopes are run).

- Every step of the first group (evaluate at two dates, then reviews that start grace
  periods, lift them, start them again and downgrade) is checked against a reference
  computed here, in Python, from the raw rows (orders, refunds, events) and the tiers held
  before the step: the changes returned, the `tier_changes` rows appended (from, to,
  reason, metrics, coupon pack, time), every `member_tiers` row (tier, since, grace,
  reviewed) and the upgrade hooks called.
- The second group is evaluated one member per call; both groups end with the same tiers
  and the same changes, member by member.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from tests.conftest import Store

from siyu.config import DEFAULT_STRONG_TYPES
from siyu.demo.config import GeneratorConfig
from siyu.demo.generate import generate
from siyu.identity.resolve import resolve_all
from siyu.importer.service import ensure_group, import_directory
from siyu.ledger import program, tiers
from siyu.privacy import Vault
from siyu.store.times import stored_time

T1 = datetime(2024, 10, 1)
T2 = datetime(2025, 6, 1)
T3 = datetime(2026, 3, 1)  # the window holds only the last months of the data
GRACE_DAYS = 30

Key = tuple[int, str]
Row = tuple[str, datetime, datetime | None, datetime | None]  # tier, since, grace, reviewed
Metrics = dict[str, int]


def _rules(scope: str) -> program.TierRules:
    return program.TierRules(
        scope=scope,  # type: ignore[arg-type]
        window_days=180,
        grace_days=GRACE_DAYS,
        activity_weights={"view": 1, "add_to_cart": 2, "share": 5, "sign_in": 1, "scan": 0},
        tiers=[
            program.Tier(code="basic", name="basic"),
            program.Tier(
                code="silver",
                name="silver",
                min_orders=2,
                min_activity=12,
                coupon_pack="silver-pack",
            ),
            program.Tier(
                code="gold",
                name="gold",
                min_spend_fen=150_000,
                min_orders=4,
                min_activity=30,
                coupon_pack="gold-pack",
            ),
        ],
    )


@pytest.fixture(scope="module")
def brand_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tier-brand")
    generate(out, GeneratorConfig(members=300, seed=23))
    return out


@pytest.fixture
def hooked() -> Iterator[list[tiers.TierChange]]:
    calls: list[tiers.TierChange] = []
    tiers.UPGRADE_HOOKS.append(calls.append)
    yield calls
    tiers.UPGRADE_HOOKS.remove(calls.append)


def _load(engine: Engine, vault: Vault, data: Path, rejects: Path, scope: str) -> str:
    group = f"g-{uuid.uuid4().hex[:8]}"
    ensure_group(engine, group)
    import_directory(engine, vault, group, data, rejects)
    resolve_all(engine, group, DEFAULT_STRONG_TYPES)
    program.save(engine, group, _rules(scope), None)
    return group


class Raw:
    """A group's facts as rows, and the names of its members (the first order they
    placed, else their first event), the same in two groups holding the same data."""

    def __init__(self, engine: Engine, group: str) -> None:
        p = {"g": group}
        with engine.connect() as conn:
            self.orders = [
                (r.order_id, r.member_id, r.brand_id, r.status, stored_time(r.at), r.paid_fen)
                for r in conn.execute(
                    text("""SELECT order_id, member_id, brand_id, status, ordered_at AS at,
                              paid_fen FROM orders WHERE group_id = :g"""),
                    p,
                )
            ]
            self.refunds = conn.execute(
                text("SELECT order_id, amount_fen FROM refunds WHERE group_id = :g"), p
            ).all()
            self.events = [
                (r.event_id, r.member_id, r.type, stored_time(r.at))
                for r in conn.execute(
                    text("""SELECT event_id, member_id, type, occurred_at AS at FROM events
                            WHERE group_id = :g"""),
                    p,
                )
            ]
        names: dict[int, tuple[str, str]] = {}
        for order_id, member, *_ in sorted(self.orders, reverse=True):
            if member is not None:
                names[int(member)] = ("order", order_id)
        for event_id, member, *_ in sorted(self.events, reverse=True):
            if member is not None and names.get(int(member), ("",))[0] != "order":
                names[int(member)] = ("event", event_id)
        assert len(set(names.values())) == len(names)
        self.names = names
        self.members = sorted(names)

    def metrics(self, rules: program.TierRules, now: datetime) -> dict[Key, Metrics]:
        since = now - timedelta(days=rules.window_days)
        refunded: dict[str, int] = defaultdict(int)
        for order_id, amount in self.refunds:
            refunded[order_id] += int(amount)
        found: dict[Key, Metrics] = {}
        for order_id, member, brand, status, at, paid in self.orders:
            if member is None or status == "cancelled" or not since < at <= now:
                continue
            key = (int(member), "*" if rules.scope == "group" else brand)
            m = found.setdefault(key, {"spend_fen": 0, "orders": 0, "activity": 0})
            m["spend_fen"] += int(paid) - refunded[order_id]
            m["orders"] += 1
        score: dict[int, int] = {}
        for _, member, kind, at in self.events:
            if member is not None and since < at <= now:
                score[int(member)] = score.get(int(member), 0) + rules.activity_weights.get(kind, 0)
        for member, points in score.items():
            keys = [k for k in found if k[0] == member]
            if not keys and rules.scope == "group":
                keys = [(member, "*")]
            for key in keys:
                found.setdefault(key, {"spend_fen": 0, "orders": 0, "activity": 0})
                found[key]["activity"] = points
        return found


def _held(engine: Engine, group: str) -> dict[Key, Row]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("""SELECT member_id, scope_key, tier_code, since, grace_until, reviewed_at
                    FROM member_tiers WHERE group_id = :g"""),
            {"g": group},
        ).all()
    return {
        (int(r.member_id), r.scope_key): (
            r.tier_code,
            stored_time(r.since),
            None if r.grace_until is None else stored_time(r.grace_until),
            None if r.reviewed_at is None else stored_time(r.reviewed_at),
        )
        for r in rows
    }


def _changes(engine: Engine, group: str, after: int = 0) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("""SELECT change_id, member_id, scope_key, from_tier, to_tier, reason, detail,
                      created_at FROM tier_changes WHERE group_id = :g AND change_id > :a
                    ORDER BY change_id"""),
            {"g": group, "a": after},
        ).all()
    return [
        (
            int(r.change_id),
            int(r.member_id),
            r.scope_key,
            r.from_tier,
            r.to_tier,
            r.reason,
            json.loads(r.detail),
            stored_time(r.created_at),
        )
        for r in rows
    ]


def _expect(
    rules: program.TierRules,
    seen: dict[Key, Metrics],
    held: dict[Key, Row],
    now: datetime,
    review: bool,
) -> tuple[list[tuple[Any, ...]], dict[Key, Row]]:
    """The changes (in key order) and the rows after, by the rules as documented."""
    codes = [t.code for t in rules.tiers]
    rows = dict(held)
    changes: list[tuple[Any, ...]] = []
    for key in sorted(set(seen) | (set(held) if review else set())):
        m = seen.get(key, {"spend_fen": 0, "orders": 0, "activity": 0})
        want = rules.qualified(m["spend_fen"], m["orders"], m["activity"])
        row = held.get(key)
        have = codes.index(row[0]) if row and row[0] in codes else 0
        if row is None or want > have:
            pack = (
                None if row is not None and row[0] == codes[want] else rules.tiers[want].coupon_pack
            )
            rows[key] = (codes[want], now, None, now)
            changes.append((*key, row and row[0], codes[want], "upgrade", m, pack))
        elif review and want < have and row[2] is None:
            rows[key] = (row[0], row[1], now + timedelta(days=rules.grace_days), now)
            changes.append((*key, row[0], row[0], "grace", m, None))
        elif review and want < have and row[2] is not None and row[2] <= now:
            rows[key] = (codes[want], now, None, now)
            changes.append((*key, row[0], codes[want], "downgrade", m, None))
        elif review and want >= have and row[2] is not None:
            rows[key] = (row[0], row[1], None, now)  # qualifies again: grace lifted
    return changes, rows


def _check_step(
    engine: Engine,
    group: str,
    raw: Raw,
    rules: program.TierRules,
    now: datetime,
    hooked: list[tiers.TierChange],
    members: list[int] | None,
) -> list[tuple[Any, ...]]:
    """Run one step (evaluate the members, or review everyone) and check it against the
    reference; returns the expected changes."""
    held, last = _held(engine, group), max((c[0] for c in _changes(engine, group)), default=0)
    seen = raw.metrics(rules, now)
    if members is not None:
        listed = set(members)
        seen = {k: v for k, v in seen.items() if k[0] in listed}
        held_listed = {k: v for k, v in held.items() if k[0] in listed}
        expected, rows = _expect(rules, seen, held_listed, now, review=False)
        rows = {**held, **rows}
    else:
        expected, rows = _expect(rules, seen, held, now, review=True)
    hooked.clear()
    returned = (
        tiers.evaluate(engine, group, members, now)
        if members is not None
        else tiers.review(engine, group, now)
    )
    got = [
        (c.member_id, c.scope_key, c.from_tier, c.to_tier, c.reason, c.metrics, c.coupon_pack)
        for c in returned
    ]
    assert got == expected
    assert all(c.group_id == group for c in returned)
    written = _changes(engine, group, last)
    assert [c[1:7] for c in written] == [
        (*e[:5], {"metrics": e[5], "coupon_pack": e[6]}) for e in expected
    ]
    assert [c[0] for c in written] == sorted(c[0] for c in written)
    assert all(c[7] == now for c in written)
    assert _held(engine, group) == rows
    assert hooked == [c for c in returned if c.reason == "upgrade" and c.coupon_pack]
    return expected


@pytest.mark.parametrize("scope", ["group", "brand"])
def test_tiers_match_the_reference_and_one_member_per_call(
    store: Store,
    vault: Vault,
    brand_dir: Path,
    tmp_path: Path,
    hooked: list[tiers.TierChange],
    scope: str,
) -> None:
    engine = store.engine
    many = _load(engine, vault, brand_dir, tmp_path / "r1", scope)
    one = _load(engine, vault, brand_dir, tmp_path / "r2", scope)
    raw, raw_one = Raw(engine, many), Raw(engine, one)
    rules = _rules(scope)
    # every member in one call (with some listed twice, and one unknown), then one by one
    everyone = [*raw.members, *raw.members[:7], 10**12]
    steps: list[tuple[datetime, list[int] | None]] = [
        (T1, everyone),
        (T2, everyone),  # upgrades from tiers held
        (T3, None),  # review: first tiers for those never evaluated, and grace periods
        (T2, None),  # back where they qualify: grace lifted
        (T3, None),  # grace again
        (T3 + timedelta(days=GRACE_DAYS + 1), None),  # downgrades
    ]
    done: list[tuple[Any, ...]] = []
    lifted = 0
    for now, members in steps:
        graced = {k for k, row in _held(engine, many).items() if row[2] is not None}
        done += _check_step(engine, many, raw, rules, now, hooked, members)
        lifted += sum(1 for k, row in _held(engine, many).items() if k in graced and row[2] is None)
    # the data walks every path
    reasons = {(c[4], c[2] is None) for c in done}
    assert {("upgrade", True), ("upgrade", False), ("grace", False), ("downgrade", False)} <= (
        reasons
    )
    assert lifted > 0
    assert {c[6] for c in done if c[4] == "upgrade"} >= {"silver-pack", "gold-pack"}
    if scope == "brand":
        assert len({c[1] for c in done}) > 1

    # the same steps, evaluating one member per call
    one_calls: list[tiers.TierChange] = []
    for now, members in steps:
        hooked.clear()
        if members is None:
            tiers.review(engine, one, now)
        else:
            for member in raw_one.members:
                tiers.evaluate(engine, one, [member], now)
        one_calls += hooked

    def named(raw_: Raw, key: Key) -> tuple[tuple[str, str], str]:
        return raw_.names[key[0]], key[1]

    def tiers_of(group: str, raw_: Raw) -> dict[Any, Row]:
        return {named(raw_, k): v for k, v in _held(engine, group).items()}

    def changes_of(group: str, raw_: Raw) -> list[tuple[Any, ...]]:
        return sorted(
            (c[7], *named(raw_, (c[1], c[2])), *map(str, c[3:6]), json.dumps(c[6]))
            for c in _changes(engine, group)
        )

    assert tiers_of(one, raw_one) == tiers_of(many, raw)
    assert changes_of(one, raw_one) == changes_of(many, raw)
    upgrades = [
        (raw.names[c[0]], c[1], c[2], c[3], c[6]) for c in done if c[4] == "upgrade" and c[6]
    ]
    assert sorted(upgrades) == sorted(
        (raw_one.names[c.member_id], c.scope_key, c.from_tier, c.to_tier, c.coupon_pack)
        for c in one_calls
    )
