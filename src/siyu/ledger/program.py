"""The loyalty program of a brand group: earn rules and tier rules, as validated documents.

HQ edits them through the API (`PUT /v1/points/rules`, `PUT /v1/tiers/rules`); every
version is kept, the newest applies. A group that never set them gets the defaults
below, which are what most brands start with: 1 point per yuan, points expire at the end
of the next year, four tiers on 365 days of spend or orders.

Rates and multipliers are integers (points per yuan, percent), so points never pass
through a float.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, Engine, text

from siyu.ledger.models import loyalty_programs
from siyu.store.times import as_stored, stored_now

Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]*$")]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EarnRule(_Doc):
    """Points per yuan for the order lines it matches (every given field must match).
    A rule with `stack` is a campaign bonus added on top of the best plain rule."""

    name: Code
    points_per_yuan: int = Field(ge=0, le=1000)
    brand_id: Code | None = None
    channel: Code | None = None
    category: Code | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    stack: bool = False

    def matches(self, brand: str, channel: str, category: str | None, at: datetime) -> bool:
        return (
            (self.brand_id is None or self.brand_id == brand)
            and (self.channel is None or self.channel == channel)
            and (self.category is None or self.category == category)
            and (self.valid_from is None or as_stored(self.valid_from) <= at)
            and (self.valid_to is None or at < as_stored(self.valid_to))
        )


class EarnRules(_Doc):
    base_points_per_yuan: int = Field(default=1, ge=0, le=1000)
    rules: list[EarnRule] = Field(default_factory=list, max_length=500)
    # What happens when a refund claws back points the member already spent.
    clawback_policy: Literal["debt", "stored_value"] = "debt"
    # For the stored_value policy: how many points are worth one yuan.
    points_per_yuan_value: int = Field(default=100, ge=1, le=100_000)

    def rate(self, brand: str, channel: str, category: str | None, at: datetime) -> int:
        """Points per yuan for one line: the best plain rule (or the base), plus every
        matching campaign bonus."""
        matching = [r for r in self.rules if r.matches(brand, channel, category, at)]
        best = max((r.points_per_yuan for r in matching if not r.stack), default=None)
        base = self.base_points_per_yuan if best is None else best
        return base + sum(r.points_per_yuan for r in matching if r.stack)


class Tier(_Doc):
    code: Code
    name: Annotated[str, Field(min_length=1, max_length=64)]
    min_spend_fen: int = Field(default=0, ge=0, le=10**13)
    min_orders: int = Field(default=0, ge=0, le=100_000)
    min_activity: int = Field(default=0, ge=0, le=10**9)
    multiplier_percent: int = Field(default=100, ge=100, le=1000)
    coupon_pack: Code | None = Field(
        default=None, description="Granted on upgrade, through the campaigns hook."
    )


def _default_tiers() -> list[Tier]:
    return [
        Tier(code="basic", name="普卡 Basic"),
        Tier(
            code="silver",
            name="银卡 Silver",
            min_spend_fen=100_000,
            min_orders=4,
            multiplier_percent=120,
            coupon_pack="silver-welcome",
        ),
        Tier(
            code="gold",
            name="金卡 Gold",
            min_spend_fen=500_000,
            min_orders=12,
            multiplier_percent=150,
            coupon_pack="gold-welcome",
        ),
        Tier(
            code="platinum",
            name="白金 Platinum",
            min_spend_fen=2_000_000,
            min_orders=30,
            multiplier_percent=200,
            coupon_pack="platinum-welcome",
        ),
    ]


class TierRules(_Doc):
    """Tiers from lowest to highest. A member qualifies for a tier when its spend, order
    count or activity score in the rolling window reaches the tier's thresholds (`any`
    of the non-zero ones, or `all`)."""

    scope: Literal["group", "brand"] = Field(
        default="group", description="One tier across the group's brands, or one per brand."
    )
    window_days: int = Field(default=365, ge=1, le=3650)
    grace_days: int = Field(default=30, ge=0, le=365)
    qualify: Literal["any", "all"] = "any"
    activity_weights: dict[Code, int] = Field(
        default_factory=lambda: {"view": 1, "add_to_cart": 2, "share": 5, "sign_in": 1},
        max_length=50,
    )
    tiers: list[Tier] = Field(default_factory=_default_tiers, min_length=1, max_length=20)

    @model_validator(mode="after")
    def _ordered(self) -> TierRules:
        codes = [t.code for t in self.tiers]
        if len(set(codes)) != len(codes):
            raise ValueError("tiers: codes must be unique")
        first = self.tiers[0]
        if first.min_spend_fen or first.min_orders or first.min_activity:
            raise ValueError("tiers: the first tier is where everyone starts; no thresholds")
        for low, high in zip(self.tiers, self.tiers[1:], strict=False):
            if (high.min_spend_fen, high.min_orders, high.min_activity) < (
                low.min_spend_fen,
                low.min_orders,
                low.min_activity,
            ):
                raise ValueError(f"tiers: {high.code} must not ask less than {low.code}")
        return self

    def index(self, code: str | None) -> int:
        codes = [t.code for t in self.tiers]
        return codes.index(code) if code in codes else 0

    def qualified(self, spend_fen: int, orders: int, activity: int) -> int:
        """Index of the highest tier the metrics reach."""
        best = 0
        for i, tier in enumerate(self.tiers[1:], start=1):
            tests = [
                (tier.min_spend_fen, spend_fen),
                (tier.min_orders, orders),
                (tier.min_activity, activity),
            ]
            asked = [have >= need for need, have in tests if need > 0]
            met = any(asked) if self.qualify == "any" else all(asked)
            if asked and met:
                best = i
        return best


def tier_names(body: str | None) -> dict[str, str]:
    """Tier code -> the name the brand gave it, from the stored tier rules in force
    (`queries.TIER_PROGRAM`; None: the defaults). A code no longer in the rules has none."""
    rules = TierRules.model_validate_json(body) if body else TierRules()
    return {tier.code: tier.name for tier in rules.tiers}


# What `loyalty_programs.kind` may hold: the earn and tier rules here, the affinity rules
# (`segments.affinity.rules`) and the guides' commission rules (`guides.commission_rules`),
# which are versioned and audited the same way.
Kind = Literal["earn", "tiers", "affinity", "commission"]


def load(engine: Engine, group_id: str, kind: Literal["earn", "tiers"]) -> EarnRules | TierRules:
    with engine.connect() as conn:
        body = stored(conn, group_id, kind)[1]
    model = EarnRules if kind == "earn" else TierRules
    return model.model_validate_json(body) if body else model()


def stored(conn: Connection, group_id: str, kind: Kind) -> tuple[int, str | None]:
    """The newest version of `kind` and its document as stored; (0, None) while the group
    runs on the defaults. One read, so the number always belongs to the document."""
    row = conn.execute(
        text("""SELECT version, body FROM loyalty_programs WHERE group_id = :g AND kind = :k
                ORDER BY version DESC LIMIT 1"""),
        {"g": group_id, "k": kind},
    ).first()
    return (0, None) if row is None else (int(row.version), str(row.body))


def version(engine: Engine, group_id: str, kind: Kind) -> int:
    """The number of the version in force; 0 while the group runs on the defaults."""
    with engine.connect() as conn:
        found = conn.execute(
            text("""SELECT MAX(version) FROM loyalty_programs WHERE group_id = :g
                    AND kind = :k"""),
            {"g": group_id, "k": kind},
        ).scalar()
    return int(found or 0)


def earn_rules(engine: Engine, group_id: str) -> EarnRules:
    rules = load(engine, group_id, "earn")
    assert isinstance(rules, EarnRules)
    return rules


def tier_rules(engine: Engine, group_id: str) -> TierRules:
    rules = load(engine, group_id, "tiers")
    assert isinstance(rules, TierRules)
    return rules


def save(engine: Engine, group_id: str, doc: EarnRules | TierRules, key_id: int | None) -> int:
    """Store a new version; returns its number. Versions are kept for the audit trail."""
    kind: Kind = "earn" if isinstance(doc, EarnRules) else "tiers"
    return save_body(engine, group_id, kind, doc.model_dump(mode="json"), key_id)


def save_body(
    engine: Engine, group_id: str, kind: Kind, body: dict[str, Any], key_id: int | None
) -> int:
    """Store `body` (a validated document) as the next version of `kind`."""
    with engine.begin() as conn:
        version = conn.execute(
            text("""SELECT COALESCE(MAX(version), 0) + 1 FROM loyalty_programs
                    WHERE group_id = :g AND kind = :k"""),
            {"g": group_id, "k": kind},
        ).scalar_one()
        conn.execute(
            loyalty_programs.insert().values(
                group_id=group_id,
                kind=kind,
                version=int(version),
                body=json.dumps(body, ensure_ascii=False),
                key_id=key_id,
                created_at=stored_now(),
            )
        )
    return int(version)
