"""The ledger's errors: every refusal is a conflict (409) and applies nothing.

Each class keeps a stable `code`, the API problem's `code` member."""

from __future__ import annotations

from siyu.errors import ConflictError


class InsufficientBalance(ConflictError):
    code = "insufficient_balance"

    def __init__(self, asset: str, needed: int, available: int) -> None:
        self.asset, self.needed, self.available = asset, needed, available
        super().__init__(f"{asset}: needs {needed}, the balance is {available}")


class IdempotencyConflict(ConflictError):
    code = "idempotency_conflict"


class AlreadyRefunded(ConflictError):
    code = "already_refunded"


class NothingToClawBack(ConflictError):
    """The refunded order earned no points (or has no member yet): nothing to take back."""
