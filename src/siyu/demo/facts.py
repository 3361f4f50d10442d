"""The fact rows of one chunk as parallel integer arrays: orders, lines and refunds.

Shared by the modules that build them (buying, basket, aftersale) and the renderer.
"""

from __future__ import annotations

from dataclasses import dataclass

from siyu.demo.config import MAX_ORDERS_PER_PERSON
from siyu.demo.rand import I64

PAID, CANCELLED, REFUNDED = 0, 1, 2
STATUSES = ("paid", "cancelled", "refunded")
CANCEL_SLOT = MAX_ORDERS_PER_PERSON  # order slot of the cancelled twin of order k: k + 256


@dataclass(frozen=True)
class Orders:
    """Orders sorted by (person, ordered_at); times in local seconds."""

    person: I64  # local person index
    slot: I64  # order number used for the id (k, or k + 256 for a cancelled twin)
    channel: I64
    brand: I64
    ordered_at: I64
    paid_at: I64  # -1: not paid
    status: I64
    store: I64  # -1: none
    guide: I64
    coupon: I64
    total: I64
    discount: I64
    paid: I64
    buyer_type: I64
    buyer_key: I64
    buyer_owner: I64  # true owner of the buyer identifier (global pid)


@dataclass(frozen=True)
class Lines:
    """Order lines sorted by (order, line_no); `order` indexes Orders rows."""

    order: I64
    line_no: I64
    sku: I64
    qty: I64
    unit: I64
    amount: I64


@dataclass(frozen=True)
class Refunds:
    """At most one refund per order."""

    order: I64
    refunded_at: I64
    amount: I64
    line_no: I64  # -1: whole order
    qty: I64
    reason: I64
