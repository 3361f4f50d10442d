"""The receipts the console tests review: a small brand (two members, home stores S1 and
S2), the coupon SPRING20, the rule BASKET, and receipts uploaded through the service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from tests.api.conftest import brand
from tests.coupons.helpers import save_template

from siyu.auth.keys import create_key
from siyu.config import DEFAULT_STRONG_TYPES
from siyu.identity.resolve import resolve_all
from siyu.importer.service import import_directory
from siyu.privacy import Vault
from siyu.receipts import queue, rules
from siyu.receipts.errors import ReceiptLimitReached
from siyu.receipts.upload import ReceiptIn, upload

RULE: dict[str, Any] = {
    "code": "BASKET",
    "name_zh": "小票满额礼",
    "name_en": "Basket reward",
    "tiers": [
        {"min_paid_fen": 10000, "points": 100},
        {"min_paid_fen": 30000, "points": 400, "coupon": "SPRING20"},
    ],
    "starts_at": "2020-01-01T00:00:00Z",
    "ends_at": "2099-01-01T00:00:00Z",
    "limits": {"per_day": 3},
    "auto_accept": {"max_amount_fen": 50000, "home_store_only": True},
}
PHOTO = "https://img.example.com/r/A-3.jpg"


def seed(
    engine: Engine, vault: Vault, group: str, tmp_path: Path
) -> tuple[dict[str, int], dict[str, str]]:
    """The brand, the rule and the receipts (by name: clean, near, big, other), and keys
    for admin, analyst and the store S1."""
    import_directory(engine, vault, group, brand(tmp_path / "b"), tmp_path / "r")
    resolve_all(engine, group, DEFAULT_STRONG_TYPES)
    save_template(engine, group)
    rules.save(engine, group, rules.parse_rule(RULE), None)
    with engine.connect() as conn:
        members = dict(
            conn.execute(
                text("SELECT source_ref, member_id FROM members WHERE group_id = :g"), {"g": group}
            ).all()
        )
    m1, m2 = int(members["M1"]), int(members["M2"])  # home stores S1 and S2
    # noon yesterday in China: the four of M1 on one day of the limit, whenever this runs
    bought = queue.day_start(datetime.now(UTC)).replace(tzinfo=UTC) - timedelta(hours=12)

    def up(name: str, member: int, store_id: str, amount: int, at: datetime, ref: str) -> int:
        given = ReceiptIn(member, store_id, name, amount, at, ref)
        return upload(engine, group, "BASKET", given, f"k-{name}").receipt_id

    ids = {
        # a small receipt at the member's own store: the rule accepts it
        "clean": up("A-1", m1, "S1", 12000, bought, "oss://receipts/A-1.jpg"),
        # same store and amount 30 seconds later, another number: a near-duplicate
        "near": up("A-2", m1, "S1", 12000, bought + timedelta(seconds=30), "oss://r/A-2.jpg"),
        # above the auto-accept amount: reviewed; its tier gives points and a coupon
        "big": up("A-3", m1, "S1", 60000, bought - timedelta(hours=2), PHOTO),
        # another store's receipt (M2 at its home store S2, above the amount)
        "other": up("B-1", m2, "S2", 80000, bought, "oss://r/B-1.jpg"),
    }
    # M1's fourth receipt of the day is over the rule's limit: refused, nothing kept
    with pytest.raises(ReceiptLimitReached):
        up("A-4", m1, "S1", 15000, bought - timedelta(hours=3), "oss://r/A-4.jpg")
    keys = {
        "admin": create_key(engine, vault, group, "admin").secret,
        "analyst": create_key(engine, vault, group, "analyst").secret,
        "store": create_key(engine, vault, group, "store", stores=("S1",)).secret,
    }
    return ids, keys
