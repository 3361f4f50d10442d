"""Times at the edge of a second, on both dialects: the store keeps whole seconds, and raw
SQL on SQLite compared its stored text ("…:00.000000") with sqlite3's own form of the
parameter ("…:00"), so a coupon issued this second was left out of liability as of now,
was not redeemable until the next second, and was not expired at its very end."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import insert
from tests.conftest import Store

from siyu.coupons import catalog
from siyu.coupons.expiry import expire
from siyu.coupons.issue import issue
from siyu.coupons.liability import liability
from siyu.coupons.redeem import Redemption, redeem
from siyu.coupons.templates import Basket, BasketLine, CouponTemplate
from siyu.identity.models import members

T = datetime(2026, 3, 1, 12, 0, 0)
DAY = timedelta(days=1)
TEMPLATE = CouponTemplate.model_validate(
    {
        "code": "ten",
        "name_zh": "立减 10 元",
        "name_en": "10 off",
        "kind": "fixed",
        "off_fen": 1000,
        "validity": {"days_from_issue": 1},
        "face_value_fen": 1000,
        "cost_fen": 1000,
    }
)


def _members(store: Store, n: int) -> list[int]:
    row = {"group_id": store.group_id, "status": "active", "registered_at": T}
    with store.engine.begin() as conn:
        return [
            int(
                conn.execute(
                    insert(members).returning(members.c.member_id),
                    {**row, "created_at": T, "updated_at": T},
                ).scalar_one()
            )
            for _ in range(n)
        ]


def test_a_coupon_counts_redeems_and_expires_in_the_second_named(store: Store) -> None:
    g = store.group_id
    catalog.save(store.engine, g, TEMPLATE, None)
    kept, used = _members(store, 2)
    issued = issue(store.engine, g, "ten", [kept, used], "k", at=T).issued
    assert len(issued) == 2
    # as of the second they were issued, both are outstanding
    (now,) = liability(store.engine, g, T)
    assert (now.issued, now.outstanding) == (2, 2)
    # and one is redeemable in that same second
    code = next(c.code for c in issued if c.member_id == used)
    basket = Basket("pos", (BasketLine("K1", 1, 5000),))
    assert redeem(store.engine, g, Redemption(code, "O1", basket, "r"), at=T).off_fen == 1000
    # the other's validity is [T, T + 1 day): at T + 1 day it is due
    assert expire(store.engine, g, T + DAY - timedelta(seconds=1)) == 0
    assert expire(store.engine, g, T + DAY) == 1
    (end,) = liability(store.engine, g, T + DAY)
    assert (end.redeemed, end.expired, end.outstanding) == (1, 1, 0)
