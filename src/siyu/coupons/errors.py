"""The coupons' refusals: each is a conflict (409) and applies nothing.

Each class keeps a stable `code`, the API problem's `code` member."""

from __future__ import annotations

from siyu.errors import ConflictError


class CouponNotRedeemable(ConflictError):
    """Already redeemed, expired, not yet valid, or another member's."""

    code = "coupon_not_redeemable"


class CouponNotApplicable(ConflictError):
    """The basket does not qualify (out of scope, below the minimum spend)."""

    code = "coupon_not_applicable"


class LimitReached(ConflictError):
    """A limit of the template (per member, issued, redemptions, budget) is used up."""

    code = "coupon_limit_reached"

    def __init__(self, limit: str, cap: int, used: int) -> None:
        self.limit, self.cap, self.used = limit, cap, used
        super().__init__(f"limits.{limit}: {used} of {cap} used")


class NotReturnable(ConflictError):
    """The coupon is not redeemed on that order, or its template keeps it on refund."""

    code = "coupon_not_returnable"
