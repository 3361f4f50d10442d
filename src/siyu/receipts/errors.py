"""The receipts' refusals: each is a conflict (409) and applies nothing (no receipt
recorded, no limit counted, no reward given).

Each class keeps a stable `code`, the API problem's `code` member."""

from __future__ import annotations

from siyu.errors import ConflictError


class ReceiptNotEligible(ConflictError):
    """The rule gives nothing for this receipt: bought outside the rule's window or
    scope, uploaded too late, or paid below the lowest tier."""

    code = "receipt_not_eligible"


class ReceiptLimitReached(ConflictError):
    """The member has uploaded as many receipts as the rule allows (per day, per period)."""

    code = "receipt_limit_reached"

    def __init__(self, limit: str, cap: int) -> None:
        self.limit, self.cap = limit, cap
        super().__init__(f"limits.{limit}: {cap} receipts allowed, all used")


class ReceiptDecided(ConflictError):
    """The receipt was already accepted or rejected (or is a duplicate): a decision is
    made once."""

    code = "receipt_decided"
