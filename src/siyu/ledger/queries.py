"""The ledger's reads for the service's async read port (siyu.store.reads)."""

from siyu.store.reads import Sql

BALANCES = Sql(
    "SELECT asset, balance FROM ledger_accounts "
    "WHERE group_id = :g AND member_id = :m AND owner = 'member'"
)
TIERS = Sql(
    "SELECT scope_key, tier_code, since, grace_until FROM member_tiers "
    "WHERE group_id = :g AND member_id = :m ORDER BY scope_key"
)
EXPIRING = Sql(
    "SELECT expires_at, SUM(remaining) AS points FROM point_lots "
    "WHERE group_id = :g AND member_id = :m AND remaining > 0 "
    "GROUP BY expires_at ORDER BY expires_at LIMIT 20"
)
STATEMENT = Sql(
    """SELECT e.entry_id, e.posting_id, p.kind, e.asset, e.amount, e.balance_after,
         e.created_at, p.reference, p.store_id, p.channel
       FROM ledger_entries e JOIN ledger_postings p ON p.posting_id = e.posting_id
       WHERE e.group_id = :g AND e.member_id = :m AND e.entry_id < :before
       ORDER BY e.entry_id DESC LIMIT :n"""
)
ORDER_MEMBER = Sql("SELECT member_id FROM orders WHERE group_id = :g AND order_id = :o")
TIER_CHANGES = Sql(
    """SELECT from_tier, to_tier, reason, created_at FROM tier_changes
       WHERE group_id = :g AND member_id = :m ORDER BY change_id DESC LIMIT 20"""
)
