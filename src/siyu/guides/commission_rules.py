"""Commission rules: which rate (basis points of the order's paid fen) or fixed fen a guide
earns on an order, and how long it stays frozen. A validated document, every version kept
in `loyalty_programs` (kind 'commission'), like the earn and tier rules; the newest applies.

Precedence (documented in docs/architecture.md): of the rules whose every given field
matches the order, the MOST SPECIFIC wins: the one that names the most of brand, channel,
category, campaign and guide class; among rules naming as many, the one naming the
weightier dimension, in the order campaign > guide class > category > channel > brand (a
campaign's terms beat a class's, a class's beat a category's ...). Two rules naming the same
dimensions could both match one order only with the same values, so the document refuses
them (`rules[i]`): the winner is always unique. No rule matches: `default_rate_bp`.

The order's category is that of its largest line by amount (ties: the smaller category
code); its campaign is the campaign of the coupon it redeemed (`orders.coupon_code` ->
`coupons.campaign`). A guide's class (A/B/C) comes from the guide classes when they land;
until then it is unknown and a rule naming a class never matches.

The freeze: commission becomes payable `freeze_days` (the rule's, else the document's)
after the order was paid (`paid_at`, else `ordered_at`). The data holds no delivery time,
so payment stands in for delivery; a brand that ships slowly sets a longer freeze.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Connection, Engine

from siyu.ledger import program

Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]*$")]
GuideClass = Literal["A", "B", "C"]
BASIS_POINTS = 10_000
KIND: program.Kind = "commission"
# weightiest first: the tie-break among rules naming as many dimensions
DIMENSIONS = ("campaign", "guide_class", "category", "channel", "brand_id")


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CommissionRule(_Doc):
    """Every given field must match the order; exactly one of `rate_bp`, `fixed_fen`."""

    name: Code
    brand_id: Code | None = None
    channel: Code | None = None
    category: Code | None = None
    campaign: Code | None = None
    guide_class: GuideClass | None = None
    rate_bp: int | None = Field(default=None, ge=0, le=BASIS_POINTS)
    fixed_fen: int | None = Field(default=None, ge=0, le=10**8)
    freeze_days: int | None = Field(default=None, ge=0, le=365)

    @model_validator(mode="after")
    def _one_amount(self) -> CommissionRule:
        if (self.rate_bp is None) == (self.fixed_fen is None):
            raise ValueError("give exactly one of rate_bp (basis points) and fixed_fen")
        return self

    def named(self) -> tuple[bool, ...]:
        return tuple(getattr(self, d) is not None for d in DIMENSIONS)

    def specificity(self) -> tuple[int, tuple[bool, ...]]:
        named = self.named()
        return (sum(named), named)


class CommissionRules(_Doc):
    default_rate_bp: int = Field(default=0, ge=0, le=BASIS_POINTS)
    freeze_days: int = Field(default=7, ge=0, le=365)
    rules: list[CommissionRule] = Field(default_factory=list, max_length=500)

    @model_validator(mode="after")
    def _unambiguous(self) -> CommissionRules:
        names: set[str] = set()
        matchers: dict[tuple[object, ...], int] = {}
        for i, rule in enumerate(self.rules):
            if rule.name in names:
                raise ValueError(f"rules[{i}].name: {rule.name!r} is used twice")
            names.add(rule.name)
            matcher = tuple(getattr(rule, d) for d in DIMENSIONS)
            if matcher in matchers:
                raise ValueError(
                    f"rules[{i}]: matches exactly what rules[{matchers[matcher]}] matches; "
                    "the winner would be ambiguous"
                )
            matchers[matcher] = i
        return self

    def decide(self, order: OrderTerms) -> Decision:
        """The commission on `order` by the most specific matching rule (module docstring)."""
        chosen = self.choose(order)
        if chosen.fixed_fen is not None:
            amount = chosen.fixed_fen
        else:
            assert chosen.rate_bp is not None
            amount = _rate(order.paid_fen, chosen.rate_bp)
        return Decision(chosen.rule, amount, chosen.freeze_days)

    def choose(self, order: OrderTerms) -> Choice:
        """The rule for `order`'s terms, whatever its amount: the same for every order of
        the same brand, channel, category, campaign and class, so the accrual job decides
        once per such combination and computes the amounts in SQL (`rate_sql`)."""
        matching = [r for r in self.rules if _matches(r, order)]
        if not matching:
            return Choice(None, self.default_rate_bp, None, self.freeze_days)
        best = max(matching, key=CommissionRule.specificity)
        freeze = self.freeze_days if best.freeze_days is None else best.freeze_days
        return Choice(best.name, best.rate_bp, best.fixed_fen, freeze)


@dataclass(frozen=True)
class OrderTerms:
    """What a rule can match on, for one order."""

    brand_id: str
    channel: str
    category: str | None
    campaign: str | None
    guide_class: str | None
    paid_fen: int


@dataclass(frozen=True)
class Choice:
    rule: str | None  # None: the default rate
    rate_bp: int | None
    fixed_fen: int | None
    freeze_days: int


@dataclass(frozen=True)
class Decision:
    rule: str | None  # None: the default rate
    commission_fen: int
    freeze_days: int


def _matches(rule: CommissionRule, order: OrderTerms) -> bool:
    wanted = {
        "brand_id": order.brand_id,
        "channel": order.channel,
        "category": order.category,
        "campaign": order.campaign,
        "guide_class": order.guide_class,
    }
    return all(getattr(rule, d) is None or getattr(rule, d) == wanted[d] for d in DIMENSIONS)


def _rate(paid_fen: int, rate_bp: int) -> int:
    """paid x rate in basis points, rounded half up, in integers (never a float)."""
    return (max(paid_fen, 0) * rate_bp + BASIS_POINTS // 2) // BASIS_POINTS


def rate_sql(paid_fen: str, rate_bp: str) -> str:
    """`_rate` in SQL, on integer expressions (both dialects divide integers as integers)."""
    return (
        f"((CASE WHEN {paid_fen} > 0 THEN {paid_fen} ELSE 0 END) * {rate_bp} "
        f"+ {BASIS_POINTS // 2}) / {BASIS_POINTS}"
    )


def stored(conn: Connection, group_id: str) -> tuple[int, CommissionRules]:
    """The version in force and its document (0 and the defaults: no commission)."""
    version, body = program.stored(conn, group_id, KIND)
    return version, (CommissionRules.model_validate_json(body) if body else CommissionRules())


def save(engine: Engine, group_id: str, doc: CommissionRules, key_id: int | None) -> int:
    """Store `doc` as the next version; returns its number."""
    return program.save_body(engine, group_id, KIND, doc.model_dump(mode="json"), key_id)
