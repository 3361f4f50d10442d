"""Set-up shared by the QR scene tests: members made by OneID (registered at T0), codes,
and hand-made orders, refunds and CLV rows whose sums are known."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import DateTime, Engine, bindparam, text
from tests.coupons.helpers import T0, new_member

from siyu.scenes import registry

__all__ = ["T0", "new_member", "order", "permanent", "refund", "value"]
AT = T0.replace(tzinfo=None)


def permanent(engine: Engine, group_id: str, scene: str, **targets: str) -> registry.Scene:
    return registry.create(engine, group_id, scene, "permanent", at=T0, **targets)


def order(
    engine: Engine,
    group_id: str,
    order_id: str,
    member_id: int,
    paid_fen: int,
    status: str = "paid",
    days: int = 1,
) -> None:
    """An order of `member_id`, `days` after T0."""
    at: datetime = AT + timedelta(days=days)
    with engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO orders (group_id, order_id, brand_id, channel,
                      buyer_identity_id, member_id, status, ordered_at, paid_at, total_fen,
                      discount_fen, paid_fen)
                    VALUES (:g, :o, 'B1', 'pos', 0, :m, :st, :at, :at, :p, 0, :p)""").bindparams(
                bindparam("at", type_=DateTime())
            ),
            {"g": group_id, "o": order_id, "m": member_id, "st": status, "at": at, "p": paid_fen},
        )


def refund(engine: Engine, group_id: str, order_id: str, amount_fen: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO refunds (group_id, refund_id, order_id, refunded_at, amount_fen)
                    VALUES (:g, :r, :o, :at, :a)""").bindparams(bindparam("at", type_=DateTime())),
            {"g": group_id, "r": f"R-{order_id}", "o": order_id, "at": AT, "a": amount_fen},
        )


def value(engine: Engine, group_id: str, member_id: int, clv_fen: int) -> None:
    """The member's CLV as an analytics snapshot would write it."""
    with engine.begin() as conn:
        conn.execute(
            text("""INSERT INTO member_clv (group_id, member_id, expected_purchases, p_alive,
                      clv_fen, horizon_days, computed_at)
                    VALUES (:g, :m, 1.0, 0.9, :v, 365, :at)""").bindparams(
                bindparam("at", type_=DateTime())
            ),
            {"g": group_id, "m": member_id, "v": clv_fen, "at": AT},
        )
