"""A small brand imported into a real store (SQLite or PostgreSQL), for landing tests.

Three members with cards; M1 and M2 give a phone and a name (personal data that must
never reach the warehouse). Orders over four days and two channels, one cancelled; a Tmall
buyer (T-1) is a member of its own until an identity link ties the ouid to M1's card.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from tests.brandfiles import write, write_reference

from siyu.config import DEFAULT_STRONG_TYPES
from siyu.identity.resolve import resolve_all
from siyu.importer.service import import_directory
from siyu.privacy import Vault

PHONES = ("13812345678", "13900001111")
NAMES = ("张三", "李四")


def order(
    order_id: str,
    at: str,
    paid: int,
    buyer: tuple[str, str] = ("card", "C001"),
    channel: str = "pos",
    status: str = "paid",
    guide: str | None = "G1",
) -> dict[str, str | None]:
    offline = channel == "pos"
    return {
        "order_id": order_id,
        "brand_id": "B1",
        "channel": channel,
        "buyer_type": buyer[0],
        "buyer_value": buyer[1],
        "ordered_at": at,
        "total_fen": str(paid),
        "paid_fen": str(paid),
        "status": status,
        "store_id": "S1" if offline else None,
        "guide_id": guide if offline else None,
    }


def line(order_id: str, line_no: int, amount: int) -> dict[str, str | None]:
    return {
        "order_id": order_id,
        "line_no": str(line_no),
        "sku": "K1",
        "qty": "1",
        "unit_price_fen": str(amount),
        "amount_fen": str(amount),
    }


def event(event_id: str, kind: str, at: str, buyer: tuple[str, str]) -> dict[str, str | None]:
    return {
        "event_id": event_id,
        "type": kind,
        "channel": "tmall" if buyer[0] == "tmall_ouid" else "miniprogram",
        "identity_type": buyer[0],
        "identity_value": buyer[1],
        # events carry no brand: a card names the brand that issued it (its scope)
        "identity_scope": "B1" if buyer[0] == "card" else None,
        "occurred_at": at,
        "sku": "K1",
    }


T1 = ("tmall_ouid", "T-1")
FIRST_ORDERS = [
    order("O1", "2024-03-01T10:00:00", 9_900),
    order("O2", "2024-03-01T23:59:59", 1_000, ("card", "D002")),
    order("O3", "2024-03-02T09:00:00", 5_000, ("card", "C003"), status="cancelled"),
    order("O4", "2024-03-03T12:30:00", 2_000, T1, channel="tmall"),
    order("O5", "2024-03-05T08:00:00", 3_000, ("card", "D002")),
]


def write_brand(directory: Path) -> Path:
    """The first files of the brand: reference data, members, orders, lines, refunds,
    events."""
    write_reference(directory)
    write(
        directory / "members.csv",
        [
            {
                "member_ref": "M1",
                "brand_id": "B1",
                "registered_at": "2024-01-01T10:00:00",
                "channel": "pos",
                "card": "C001",
                "phone": PHONES[0],
                "name": NAMES[0],
                "city": "上海",
            },
            {
                "member_ref": "M2",
                "brand_id": "B1",
                "registered_at": "2024-01-02T10:00:00",
                "channel": "pos",
                "card": "D002",
                "phone": PHONES[1],
                "name": NAMES[1],
            },
            {
                "member_ref": "M3",
                "brand_id": "B1",
                "registered_at": "2024-01-03T10:00:00",
                "channel": "pos",
                "card": "C003",
            },
        ],
    )
    write(directory / "orders.csv", FIRST_ORDERS)
    write(directory / "order_lines.csv", [line("O1", 1, 9_900), line("O2", 1, 1_000)])
    write(
        directory / "refunds.csv",
        [
            {
                "refund_id": "R1",
                "order_id": "O1",
                "refunded_at": "2024-03-04T10:00:00",
                "amount_fen": "900",
                "reason": f"customer {NAMES[0]} called from {PHONES[0]}",
            }
        ],
    )
    write(
        directory / "events.csv",
        [
            event("E1", "view", "2024-03-01T09:00:00", ("card", "C001")),
            event("E2", "view", "2024-03-03T12:00:00", T1),
            event("E3", "add_to_cart", "2024-03-03T12:10:00", T1),
        ],
    )
    return directory


def import_and_resolve(engine: Engine, vault: Vault, group_id: str, directory: Path) -> None:
    """Import every file in `directory`, then batch OneID (as `siyu import` does)."""
    import_directory(engine, vault, group_id, directory, directory.parent / "rejects")
    resolve_all(engine, group_id, DEFAULT_STRONG_TYPES)
