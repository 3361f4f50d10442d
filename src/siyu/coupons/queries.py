"""The coupons' reads, for the async read port (siyu.store.reads)."""

from __future__ import annotations

from siyu.store.reads import Sql

_COLUMNS = """code, template_code, campaign, status, valid_from, valid_until, issued_at,
              order_id, off_fen, redeemed_at"""
MEMBER_COUPONS = Sql(
    f"""SELECT {_COLUMNS} FROM coupons WHERE group_id = :g AND member_id = :m
        ORDER BY coupon_id DESC LIMIT :n"""
)
MEMBER_COUPONS_IN = Sql(
    f"""SELECT {_COLUMNS} FROM coupons WHERE group_id = :g AND member_id = :m
          AND status = :st ORDER BY coupon_id DESC LIMIT :n"""
)
REDEEMED_AT = Sql("SELECT store_id FROM coupons WHERE group_id = :g AND code = :c")
