"""Set-up shared by the receipts tests: a brand with three stores, members made by OneID
with a home store, a reward rule saved as HQ saves it, and a receipt as a member types it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text
from tests.coupons.helpers import new_member, save_template

from siyu.identity.ingest import IdentifierEncoder
from siyu.receipts import rules
from siyu.receipts.upload import ReceiptIn

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # when the member uploads
BOUGHT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
STORES = [("S1", "B1"), ("S2", "B1"), ("S3", "B2")]


def brand(engine: Engine, group_id: str) -> None:
    """Brands B1 (stores S1, S2) and B2 (store S3), and the coupon template SPRING20."""
    with engine.begin() as conn:
        for b in ("B1", "B2"):
            conn.execute(
                text("INSERT INTO brands (group_id, brand_id, name) VALUES (:g, :b, :b)"),
                {"g": group_id, "b": b},
            )
        for s, b in STORES:
            conn.execute(
                text("""INSERT INTO stores (group_id, store_id, brand_id, name, city)
                        VALUES (:g, :s, :b, :s, '上海')"""),
                {"g": group_id, "s": s, "b": b},
            )
    save_template(engine, group_id)


def member(
    engine: Engine, encoder: IdentifierEncoder, group_id: str, value: str, home: str = "S1"
) -> int:
    member_id = new_member(engine, encoder, group_id, value)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE members SET home_store_id = :s WHERE group_id = :g AND member_id = :m"),
            {"s": home, "g": group_id, "m": member_id},
        )
    return member_id


def rule_doc(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "code": "BASKET",
        "name_zh": "小票满额礼",
        "name_en": "Basket reward",
        "tiers": [
            {"min_paid_fen": 10000, "points": 100},
            {"min_paid_fen": 30000, "points": 400, "coupon": "SPRING20"},
        ],
        "starts_at": "2026-01-01T00:00:00Z",
        "ends_at": "2027-01-01T00:00:00Z",
        "auto_accept": {"max_amount_fen": 50000, "home_store_only": True},
    }
    return {**doc, **fields}


def save_rule(engine: Engine, group_id: str, **fields: Any) -> rules.Version:
    return rules.save(engine, group_id, rules.parse_rule(rule_doc(**fields)), None)


def receipt(
    member_id: int,
    number: str = "A-0001",
    amount_fen: int = 12000,
    store_id: str = "S1",
    at: datetime = BOUGHT,
) -> ReceiptIn:
    return ReceiptIn(
        member_id,
        store_id,
        number,
        amount_fen,
        at,
        f"oss://receipts/{number.replace(' ', '_')}.jpg",
    )


def rewards_given(engine: Engine, group_id: str) -> dict[str, int]:
    """Points postings and coupons made for receipts, counted where they live."""
    with engine.connect() as conn:
        postings = conn.execute(
            text("""SELECT COUNT(*) FROM ledger_postings
                    WHERE group_id = :g AND reference LIKE 'receipt:%'"""),
            {"g": group_id},
        ).scalar_one()
        coupons = conn.execute(
            text("SELECT COUNT(*) FROM coupons WHERE group_id = :g AND campaign LIKE 'receipt:%'"),
            {"g": group_id},
        ).scalar_one()
    return {"postings": int(postings), "coupons": int(coupons)}
