"""Set-up shared by the coupons tests: members made by OneID itself, a template saved as
HQ saves it, and a basket a till would send."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text

from siyu.config import DEFAULT_STRONG_TYPES
from siyu.coupons import catalog
from siyu.coupons.templates import Basket, BasketLine, CouponTemplate
from siyu.identity.ingest import IdentifierEncoder
from siyu.identity.service import attach_identity

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def new_member(
    engine: Engine, encoder: IdentifierEncoder, group_id: str, value: str, type_: str = "unionid"
) -> int:
    """A member as a WeChat sign-up makes one: its unionid (or a mini-program openid),
    attached by OneID."""
    ident = encoder.encode(type_, value).in_scope("wx")
    result = attach_identity(
        engine, encoder, group_id, ident, "wechat_mp", T0, DEFAULT_STRONG_TYPES, verified=True
    )
    return result.member_id


def save_template(engine: Engine, group_id: str, **fields: Any) -> CouponTemplate:
    doc: dict[str, Any] = {
        "code": "SPRING20",
        "name_zh": "春季满减",
        "name_en": "Spring 20 off 100",
        "kind": "threshold",
        "tiers": [{"min_paid_fen": 10000, "off_fen": 2000}],
        "validity": {"days_from_issue": 30},
        "face_value_fen": 2000,
        "cost_fen": 1500,
    }
    template = CouponTemplate.model_validate({**doc, **fields})
    catalog.save(engine, group_id, template, None)
    return template


def basket(amount_fen: int = 12000, store_id: str = "S1", channel: str = "pos") -> Basket:
    return Basket(channel, (BasketLine("SKU1", 1, amount_fen),), store_id)


def statuses(engine: Engine, group_id: str) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT status, COUNT(*) FROM coupons WHERE group_id = :g GROUP BY status"),
            {"g": group_id},
        ).all()
    return {str(s): int(n) for s, n in rows}


def check_liability(engine: Engine, group_id: str) -> None:
    """Liability from the events equals the coupons whose status is `issued`, and the
    redemptions counter equals the redeemed coupons, per template."""
    from siyu.coupons.liability import liability

    with engine.connect() as conn:
        held = dict(
            conn.execute(
                text("""SELECT template_code, COUNT(*) FROM coupons WHERE group_id = :g
                        AND status = 'issued' GROUP BY template_code"""),
                {"g": group_id},
            ).all()
        )
        redeemed = dict(
            conn.execute(
                text("""SELECT template_code, COUNT(*) FROM coupons WHERE group_id = :g
                        AND status = 'redeemed' GROUP BY template_code"""),
                {"g": group_id},
            ).all()
        )
        counted = dict(
            conn.execute(
                text("""SELECT counter, used FROM coupon_counters WHERE group_id = :g
                        AND counter LIKE :pattern"""),
                {"g": group_id, "pattern": "%:redemptions"},
            ).all()
        )
    for row in liability(engine, group_id, datetime(2100, 1, 1)):
        assert row.outstanding == held.get(row.template_code, 0), row
        assert row.issued - row.redeemed + row.returned - row.expired == row.outstanding
        assert counted.get(f"{row.template_code}:redemptions", 0) == redeemed.get(
            row.template_code, 0
        )
