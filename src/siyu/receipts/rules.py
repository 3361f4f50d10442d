"""Reward rules for receipts: a validated document HQ defines, versioned like coupon
templates (`coupons.catalog`).

A rule says what a receipt earns by the amount paid (`tiers`, rising: the highest tier
reached applies), for purchases at which stores (`scope`: stores and brands, an empty list
meaning any), when (`starts_at`..`ends_at`, the purchase time; `upload_within_days` after
it), how many receipts a member may upload (`limits`: per day and over the whole rule),
and which receipts are accepted without a person looking (`auto_accept`; none: every
receipt is reviewed). A tier's reward is points (earned through the ledger) and/or one
coupon of a template (issued through `coupons.issue`), both keyed by the receipt.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, Engine

from siyu.coupons import catalog
from siyu.errors import NotFoundError, ValidationError, parse_document
from siyu.ledger.program import Code
from siyu.receipts.models import receipt_rules
from siyu.store.times import as_stored
from siyu.store.versions import Versions

Name = Annotated[str, Field(min_length=1, max_length=64)]
FEN_MAX = 10**11  # a billion yuan: far above any receipt


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RewardTier(_Doc):
    """Paid at least `min_paid_fen`: earn `points` and/or one `coupon` (a template code)."""

    min_paid_fen: int = Field(ge=1, le=FEN_MAX)
    points: int | None = Field(default=None, ge=1, le=1_000_000)
    coupon: Code | None = None

    @model_validator(mode="after")
    def _gives_something(self) -> RewardTier:
        if self.points is None and self.coupon is None:
            raise ValueError("a tier gives points, a coupon, or both")
        return self


class RuleScope(_Doc):
    """Where the purchase was made: every non-empty list must hold the receipt's store
    (or the store's brand)."""

    stores: list[Code] = Field(default_factory=list, max_length=5000)
    brands: list[Code] = Field(default_factory=list, max_length=200)


class RuleLimits(_Doc):
    """Receipts a member may upload: per day (the purchase's date at `utc_offset_hours`,
    China's +8 by default) and over the whole rule. None means no limit. A receipt counts
    from its upload; a rejection gives its place back, a duplicate never takes one."""

    per_day: int | None = Field(default=None, ge=1, le=1000)
    per_period: int | None = Field(default=None, ge=1, le=100_000)
    utc_offset_hours: int = Field(default=8, ge=-12, le=14)


class AutoAccept(_Doc):
    """Accept without review a receipt paid at most `max_amount_fen` (a fraudster's gain
    is small) and, when `home_store_only`, bought at the member's own store. A receipt
    with a near-duplicate is always reviewed."""

    max_amount_fen: int = Field(ge=1, le=FEN_MAX)
    home_store_only: bool = True


class RewardRule(_Doc):
    code: Code
    name_zh: Name
    name_en: Name
    tiers: list[RewardTier] = Field(min_length=1, max_length=10)
    scope: RuleScope = Field(default_factory=RuleScope)
    starts_at: datetime
    ends_at: datetime
    upload_within_days: int = Field(default=30, ge=1, le=365)
    limits: RuleLimits = Field(default_factory=RuleLimits)
    auto_accept: AutoAccept | None = None  # None: every receipt is reviewed

    @model_validator(mode="after")
    def _rising(self) -> RewardRule:
        if as_stored(self.ends_at) <= as_stored(self.starts_at):
            raise ValueError("ends_at must be after starts_at")
        for low, high in zip(self.tiers, self.tiers[1:], strict=False):
            if high.min_paid_fen <= low.min_paid_fen:
                raise ValueError("tiers must rise: each min_paid_fen above the one before")
            if (high.points or 0) < (low.points or 0):
                raise ValueError("tiers must rise: a higher tier never gives fewer points")
            if (high.points, high.coupon) == (low.points, low.coupon):
                raise ValueError("tiers must rise: a higher tier gives more than the one below")
        return self

    def tier_for(self, amount_fen: int) -> RewardTier | None:
        """The highest tier `amount_fen` reaches (None below the lowest)."""
        reached = [t for t in self.tiers if amount_fen >= t.min_paid_fen]
        return reached[-1] if reached else None

    def day_of(self, purchased_at: datetime) -> date:
        """The day a purchase counts on for `limits.per_day`."""
        return (as_stored(purchased_at) + timedelta(hours=self.limits.utc_offset_hours)).date()

    def counters(self, purchased_at: datetime) -> list[tuple[str, int | None, str]]:
        """The limit counters a receipt bought at `purchased_at` counts on: (counter name,
        cap, the limit's name). Kept in `coupon_counters` by `coupons.limits`; the prefix
        keeps them apart from a template's (whose names end in :issued, :redemptions ...)."""
        base = f"receipt-rule:{self.code}"
        return [
            (f"{base}:day:{self.day_of(purchased_at).isoformat()}", self.limits.per_day, "per_day"),
            (f"{base}:period", self.limits.per_period, "per_period"),
        ]


@dataclass(frozen=True)
class Version:
    rule_id: int
    version: int
    rule: RewardRule


def parse_rule(doc: object) -> RewardRule:
    """A document (parsed JSON) as a rule, or a ValidationError naming the field."""
    return parse_document(RewardRule, doc, "rule")


VERSIONS = Versions(receipt_rules, "rule_id", RewardRule, "rule", "receipt rule")
parsed = VERSIONS.parsed


def save(engine: Engine, group_id: str, rule: RewardRule, key_id: int | None) -> Version:
    """Store `rule` as the next version of its code. Every coupon a tier names must be a
    template of the group (a reward that cannot be given is refused when written, not
    when a member has earned it)."""
    with engine.begin() as conn:
        for n, tier in enumerate(rule.tiers):
            if tier.coupon is not None and not _template_exists(conn, group_id, tier.coupon):
                raise ValidationError(f"tiers.{n}.coupon", f"no coupon template {tier.coupon!r}")
        return Version(*VERSIONS.save_in(conn, group_id, rule.code, rule, key_id))


def current(conn: Connection, group_id: str, code: str) -> Version:
    """The newest version of `code`; `NotFoundError` naming the field when there is none."""
    return Version(*VERSIONS.current(conn, group_id, code))


def by_id(conn: Connection, rule_id: int) -> RewardRule:
    """The version a receipt was uploaded under (versions never change)."""
    return VERSIONS.by_id(conn, rule_id)


def newest(conn: Connection, group_id: str) -> list[Version]:
    """The newest version of every rule of the group, by code."""
    return [Version(*found) for found in VERSIONS.newest(conn, group_id)]


def _template_exists(conn: Connection, group_id: str, code: str) -> bool:
    try:
        catalog.current(conn, group_id, code)
    except NotFoundError:
        return False
    return True
