"""Stock's errors: every refusal is a conflict (409) and applies nothing.

Each class keeps a stable `code`, the API problem's `code` member."""

from __future__ import annotations

from siyu.errors import ConflictError


class OutOfStock(ConflictError):
    code = "out_of_stock"

    def __init__(self, sku: str, wanted: int, available: int, where: str = "") -> None:
        self.sku, self.wanted, self.available = sku, wanted, available
        place = f" at {where}" if where else ""
        super().__init__(f"{sku}: {wanted} wanted{place}, {available} available")


class ReservationClosed(ConflictError):
    code = "reservation_closed"


class MovementKeyReused(ConflictError):
    """An Idempotency-Key already taken by another movement in the brand group. No code
    of its own: the API answers it as every reused key, `idempotency_conflict`."""
