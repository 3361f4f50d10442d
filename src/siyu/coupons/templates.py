"""Coupon templates: what a coupon takes off, on which lines, when, and with what else.

A template is a validated document, like the loyalty program's rules (`ledger.program`):
HQ defines it once, coupons are issued from it, and redemption asks it what a basket gets.
The five kinds brands use:

- `fixed` (立减): a sum off, optionally from a minimum spend;
- `threshold` (满减): tiers of "spend X, get Y off", the highest tier reached applies;
- `percent` (折扣): a share off, with an optional cap in yuan;
- `free_item` (赠品 / 试用装): one unit of a SKU free, when the basket holds it (a sample
  handed over at a counter is a line of price 0 and gets nothing off);
- `shipping` (运费券): the shipping fee, up to a cap.

Amounts are integer fen, and every share rounds down, so a discount never passes through a
float and never exceeds what it applies to: the benefit is at most the basket's amount in
scope (the shipping fee, for a shipping coupon). `scope` restricts the lines that count
(brands, channels, stores, categories, SKUs; an empty list means any), `validity` is a
window or a number of days from issue, and `stacking` says whether another coupon may be
used on the same order. `limits` caps issue and redemption, and `on_refund` says whether
a refunded order gives its coupon back. A `face_value_fen` is what the coupon is advertised
as worth, and `cost_fen` what a redemption costs the brand (liability reporting counts it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from siyu.errors import parse_document
from siyu.ledger.program import Code
from siyu.store.times import as_stored

Name = Annotated[str, Field(min_length=1, max_length=64)]
Fen = Annotated[int, Field(ge=0, le=10**11)]  # up to a billion yuan
Kind = Literal["fixed", "threshold", "percent", "free_item", "shipping"]
# the fields each kind needs; any other kind's field on a template is refused, so a
# document says one thing (a `percent_off` on a fixed coupon is a mistake, not a default)
KIND_FIELDS: dict[Kind, tuple[str, ...]] = {
    "fixed": ("off_fen",),
    "threshold": ("tiers",),
    "percent": ("percent_off",),
    "free_item": ("free_sku",),
    "shipping": (),
}
OPTIONAL_FIELDS: dict[Kind, tuple[str, ...]] = {
    "fixed": ("min_paid_fen",),
    "threshold": (),
    "percent": ("min_paid_fen", "cap_fen"),
    "free_item": (),
    "shipping": ("min_paid_fen", "cap_fen"),
}
# every field that belongs to some kinds only
BY_KIND = sorted(
    {f for fields in (*KIND_FIELDS.values(), *OPTIONAL_FIELDS.values()) for f in fields}
)


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Tier(_Doc):
    """Spend at least `min_paid_fen` in scope, get `off_fen` off."""

    min_paid_fen: int = Field(ge=1, le=10**11)
    off_fen: int = Field(ge=1, le=10**11)

    @model_validator(mode="after")
    def _less_than_spent(self) -> Tier:
        if self.off_fen >= self.min_paid_fen:
            raise ValueError(
                f"off_fen ({self.off_fen}) must be less than min_paid_fen ({self.min_paid_fen})"
            )
        return self


class Scope(_Doc):
    """The lines a coupon counts: every non-empty list must hold the line's value."""

    brands: list[Code] = Field(default_factory=list, max_length=200)
    channels: list[Code] = Field(default_factory=list, max_length=50)
    stores: list[Code] = Field(default_factory=list, max_length=5000)
    categories: list[Code] = Field(default_factory=list, max_length=500)
    skus: list[Code] = Field(default_factory=list, max_length=5000)

    def takes_order(self, channel: str, store_id: str | None) -> bool:
        return (not self.channels or channel in self.channels) and (
            not self.stores or store_id in self.stores
        )

    def takes_line(self, line: BasketLine) -> bool:
        return (
            (not self.brands or line.brand_id in self.brands)
            and (not self.categories or line.category in self.categories)
            and (not self.skus or line.sku in self.skus)
        )


class Validity(_Doc):
    """A fixed window [starts_at, ends_at), or `days_from_issue` days from each coupon's
    issue (exactly one of the two)."""

    starts_at: datetime | None = None
    ends_at: datetime | None = None
    days_from_issue: int | None = Field(default=None, ge=1, le=3650)

    @model_validator(mode="after")
    def _one_form(self) -> Validity:
        window = self.starts_at is not None or self.ends_at is not None
        if window == (self.days_from_issue is not None):
            raise ValueError("give either starts_at and ends_at, or days_from_issue")
        if window and (self.starts_at is None or self.ends_at is None):
            raise ValueError("a window needs both starts_at and ends_at")
        if self.starts_at and self.ends_at and as_stored(self.ends_at) <= as_stored(self.starts_at):
            raise ValueError("ends_at must be after starts_at")
        return self

    def window(self, issued_at: datetime) -> tuple[datetime, datetime]:
        """When a coupon issued at `issued_at` may be used: [from, to)."""
        if self.days_from_issue is not None:
            issued = as_stored(issued_at)
            return issued, issued + timedelta(days=self.days_from_issue)
        assert self.starts_at is not None and self.ends_at is not None
        return as_stored(self.starts_at), as_stored(self.ends_at)


class Limits(_Doc):
    """How many may be issued (to each member, in total) and redeemed (in count, and in
    cost to the brand): each is a counter raised by a conditional UPDATE, never overrun.
    None means no limit."""

    per_member: int | None = Field(default=None, ge=1, le=10**6)
    issued: int | None = Field(default=None, ge=1, le=10**9)
    redemptions: int | None = Field(default=None, ge=1, le=10**9)
    budget_fen: int | None = Field(default=None, ge=1, le=10**13)


class CouponTemplate(_Doc):
    code: Code
    name_zh: Name
    name_en: Name
    kind: Kind
    off_fen: int | None = Field(default=None, ge=1, le=10**11)
    tiers: list[Tier] | None = Field(default=None, min_length=1, max_length=10)
    percent_off: int | None = Field(default=None, ge=1, le=99)
    cap_fen: int | None = Field(default=None, ge=1, le=10**11)
    free_sku: Code | None = None
    min_paid_fen: int | None = Field(default=None, ge=0, le=10**11)
    scope: Scope = Field(default_factory=Scope)
    validity: Validity
    stacking: Literal["exclusive", "with_others"] = "exclusive"
    face_value_fen: Fen
    cost_fen: Fen
    limits: Limits = Field(default_factory=Limits)
    # An order refunded in full gives a redeemed coupon back (`return`), or not (`keep`):
    # most brands return it while it is still valid, so the member can use it again.
    on_refund: Literal["return", "keep"] = "return"

    @model_validator(mode="after")
    def _fields_of_its_kind(self) -> CouponTemplate:
        for name in KIND_FIELDS[self.kind]:
            if getattr(self, name) is None:
                raise ValueError(f"{name} is required for a {self.kind} coupon")
        allowed = set(KIND_FIELDS[self.kind]) | set(OPTIONAL_FIELDS[self.kind])
        for name in BY_KIND:
            if name not in allowed and getattr(self, name) is not None:
                raise ValueError(f"{name} does not apply to a {self.kind} coupon")
        if self.tiers is not None:
            for low, high in zip(self.tiers, self.tiers[1:], strict=False):
                if not (high.min_paid_fen > low.min_paid_fen and high.off_fen > low.off_fen):
                    raise ValueError(
                        "tiers must rise: each min_paid_fen and off_fen above the one before"
                    )
        floor, off = self.min_paid_fen or 0, self.off_fen or 0
        if self.kind == "fixed" and 0 < floor <= off:
            raise ValueError(f"off_fen ({off}) must be less than min_paid_fen ({floor})")
        return self

    def benefit(self, basket: Basket) -> Benefit:
        """What this coupon takes off `basket` (nothing if the basket does not qualify).
        Never more than the basket's amount in scope (or its shipping fee)."""
        if not self.scope.takes_order(basket.channel, basket.store_id):
            return Benefit(self.code, 0, "out of scope: channel or store")
        lines = [line for line in basket.lines if self.scope.takes_line(line)]
        in_scope = sum(line.amount_fen for line in lines)
        if self.min_paid_fen is not None and in_scope < self.min_paid_fen:
            return Benefit(self.code, 0, f"spend in scope {in_scope} < {self.min_paid_fen}")
        if self.kind == "fixed":
            assert self.off_fen is not None
            return Benefit(self.code, min(self.off_fen, in_scope))
        if self.kind == "threshold":
            assert self.tiers is not None
            reached = [t for t in self.tiers if in_scope >= t.min_paid_fen]
            if not reached:
                first = self.tiers[0].min_paid_fen
                return Benefit(self.code, 0, f"spend in scope {in_scope} < {first}")
            return Benefit(self.code, reached[-1].off_fen)
        if self.kind == "percent":
            assert self.percent_off is not None
            off = in_scope * self.percent_off // 100
            return Benefit(self.code, off if self.cap_fen is None else min(off, self.cap_fen))
        if self.kind == "free_item":
            # one unit of the SKU free: the cheapest unit price it has in the basket
            units = [line.amount_fen // line.qty for line in lines if line.sku == self.free_sku]
            if not units:
                return Benefit(self.code, 0, f"the basket holds no {self.free_sku}")
            return Benefit(self.code, min(units))
        fee = basket.shipping_fen
        return Benefit(self.code, fee if self.cap_fen is None else min(fee, self.cap_fen))


@dataclass(frozen=True)
class BasketLine:
    sku: str
    qty: int
    amount_fen: int  # what the line costs before coupons
    brand_id: str | None = None
    category: str | None = None

    def __post_init__(self) -> None:
        if self.qty < 1:
            raise ValueError(f"qty must be >= 1, got {self.qty}")
        if self.amount_fen < 0:
            raise ValueError(f"amount_fen must be >= 0, got {self.amount_fen}")


@dataclass(frozen=True)
class Basket:
    channel: str
    lines: tuple[BasketLine, ...]
    store_id: str | None = None
    shipping_fen: int = 0

    @property
    def amount_fen(self) -> int:
        return sum(line.amount_fen for line in self.lines)


@dataclass(frozen=True)
class Benefit:
    code: str
    off_fen: int
    refused: str | None = None  # why nothing is taken off, for the till to show


def combined(templates: Sequence[CouponTemplate], basket: Basket) -> list[Benefit]:
    """The benefits of several coupons on one order, in the given order: an `exclusive`
    coupon goes alone (a second coupon beside it is refused), and `with_others` coupons
    add up, each capped so that the goods' total off never exceeds the goods' amount."""
    if len(templates) > 1:
        alone = next((t for t in templates if t.stacking == "exclusive"), None)
        if alone is not None:
            why = f"{alone.code} cannot be used with another coupon"
            return [Benefit(t.code, 0, why) for t in templates]
    out: list[Benefit] = []
    goods_left = basket.amount_fen
    shipping_left = basket.shipping_fen
    for template in templates:
        benefit = template.benefit(basket)
        if template.kind == "shipping":
            off = min(benefit.off_fen, shipping_left)
            shipping_left -= off
        else:
            off = min(benefit.off_fen, goods_left)
            goods_left -= off
        out.append(Benefit(benefit.code, off, benefit.refused))
    return out


def parse_template(doc: object) -> CouponTemplate:
    """A document (parsed JSON) as a template, or a ValidationError naming the field."""
    return parse_document(CouponTemplate, doc, "template")
