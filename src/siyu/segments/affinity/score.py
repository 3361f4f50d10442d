"""Affinity scores from the store: one member's, explained behaviour by behaviour (Member
360, the API, the CLI), or every member's at once for `auto.affinity`.

Both read the store's facts through `orders.scoring.score_members`, the tiers' scorer, in
the same SQL on SQLite and PostgreSQL. Scores are shown rounded to 4 decimals and a band
is decided on the shown value, so the band a member holds is the one its score reads as.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, func, select

from siyu.orders.scoring import SPEND, Part, Score, Weights, nothing, score_members
from siyu.segments.affinity.rules import AffinityRules, affinity_rules
from siyu.segments.models import member_affinity
from siyu.store.times import stored_now

DECIMALS = 4


def weights_of(rules: AffinityRules) -> Weights:
    """The scorer's weights for `rules`: event types, orders and spend apart."""
    events = {b: c for b, c in rules.coefficients.items() if b not in ("orders", SPEND)}
    return Weights(
        events=events,
        window_days=rules.window_days,
        half_life_days=rules.half_life_days,
        orders=rules.coefficients.get("orders"),
        spend_per_100_yuan=rules.coefficients.get(SPEND),
    )


def shown(value: float) -> float:
    return round(float(value), DECIMALS)


def band_of(rules: AffinityRules, total: float) -> str | None:
    """The first band (highest first) whose min_score the shown total reaches."""
    score = shown(total)
    return next((b.value for b in rules.bands if score >= b.min_score), None)


@dataclass(frozen=True)
class Explained:
    """A member's score as of `as_of` under the rules of `version` (0: the defaults)."""

    member_id: int
    as_of: datetime
    version: int
    window_days: int
    half_life_days: int | None
    score: float
    band: str | None
    parts: tuple[Part, ...]


def explain(
    engine: Engine,
    group_id: str,
    member_id: int,
    as_of: datetime | None = None,
) -> Explained:
    """The member's score with a part per behaviour (count, decayed count, coefficient,
    points); a member without facts in the window scores 0 with every part zero. The
    caller resolves the member (scope, merges) first. By default as of the moment the
    group's scores were last stored (`siyu tags refresh`, at the warehouse's newest fact),
    so the explanation and the stored score a rule compares are the same number."""
    with engine.connect() as conn:
        now = as_of or _last_scored(conn, group_id) or stored_now()
        version, rules = affinity_rules(conn, group_id)
        weights = weights_of(rules)
        found = score_members(conn, group_id, weights, now, [member_id])
    score = found.get(member_id) or nothing(member_id, weights)
    parts = tuple(
        Part(p.behaviour, shown(p.count), shown(p.decayed), p.coefficient, shown(p.points))
        for p in score.parts
    )
    return Explained(
        member_id,
        now,
        version,
        rules.window_days,
        rules.half_life_days,
        shown(score.total),
        band_of(rules, score.total),
        parts,
    )


def score_all(
    conn: Connection, group_id: str, as_of: datetime
) -> tuple[int, AffinityRules, dict[int, Score]]:
    """Every active member with a fact in the window, scored under the rules in force, and
    those rules with their version (0: the defaults)."""
    version, rules = affinity_rules(conn, group_id)
    scores = score_members(conn, group_id, weights_of(rules), as_of, active_only=True)
    return version, rules, scores


def _last_scored(conn: Connection, group_id: str) -> datetime | None:
    found: datetime | None = conn.execute(
        select(func.max(member_affinity.c.as_of)).where(member_affinity.c.group_id == group_id)
    ).scalar_one()
    return found
