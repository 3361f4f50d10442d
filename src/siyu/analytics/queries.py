"""Analytics results served live from the operational store (siyu.store.reads)."""

from siyu.store.reads import Sql

# The member's lifecycle stage as last written (analytics.lifecycle.write_member_stages).
MEMBER_STAGE = Sql(
    "SELECT stage, orders, last_order_at FROM member_stages WHERE group_id = :g AND member_id = :m"
)
