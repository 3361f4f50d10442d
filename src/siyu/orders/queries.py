"""A member's facts for the async read port (siyu.store.reads): its latest orders, refunds
and behaviour events, newest first."""

from siyu.store.reads import Sql

MEMBER_ORDERS = Sql(
    """SELECT order_id, brand_id, channel, store_id, guide_id, status, ordered_at, paid_fen
       FROM orders WHERE group_id = :g AND member_id = :m
       ORDER BY ordered_at DESC, order_id LIMIT 50"""
)
MEMBER_REFUNDS = Sql(
    """SELECT r.refund_id, r.order_id, r.refunded_at, r.amount_fen
       FROM orders o JOIN refunds r ON r.group_id = o.group_id AND r.order_id = o.order_id
       WHERE o.group_id = :g AND o.member_id = :m
       ORDER BY r.refunded_at DESC LIMIT 50"""
)
MEMBER_EVENTS = Sql(
    """SELECT type, channel, occurred_at, store_id, guide_id FROM events
       WHERE group_id = :g AND member_id = :m ORDER BY occurred_at DESC LIMIT 50"""
)
