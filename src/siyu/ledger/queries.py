"""The ledger's reads for the service's async read port (siyu.store.reads).

Balances are read as of `:now`: points in lots already past their date are not counted,
whether or not the expiry job (`points.expire_due`) has turned them into breakage yet, so
every face shows the balance the member can spend (see docs/architecture.md).
"""

from siyu.store.reads import Sql

BALANCES = Sql(
    """SELECT a.asset, a.balance - CASE WHEN a.asset = 'points' THEN
         (SELECT COALESCE(SUM(l.remaining), 0) FROM point_lots l
          WHERE l.group_id = a.group_id AND l.member_id = a.member_id
            AND l.remaining > 0 AND l.expires_at <= :now)
         ELSE 0 END AS balance
       FROM ledger_accounts a
       WHERE a.group_id = :g AND a.member_id = :m AND a.owner = 'member'"""
)
# brand_name: the brand of a per-brand tier (scope_key "*" is the whole group: none)
TIERS = Sql(
    """SELECT t.scope_key, t.tier_code, t.since, t.grace_until, b.name AS brand_name
       FROM member_tiers t LEFT JOIN brands b
         ON b.group_id = t.group_id AND b.brand_id = t.scope_key
       WHERE t.group_id = :g AND t.member_id = :m ORDER BY t.scope_key"""
)
# The tier rules in force (no row: the defaults, `program.TierRules()`).
TIER_PROGRAM = Sql(
    "SELECT body FROM loyalty_programs WHERE group_id = :g AND kind = 'tiers' "
    "ORDER BY version DESC LIMIT 1"
)
# The points still to expire, soonest first (lots already past their date are gone).
EXPIRING = Sql(
    "SELECT expires_at, SUM(remaining) AS points FROM point_lots "
    "WHERE group_id = :g AND member_id = :m AND remaining > 0 AND expires_at > :now "
    "GROUP BY expires_at ORDER BY expires_at LIMIT 20"
)
# A statement page, newest business time first (`created_at`: when it was recorded).
_STATEMENT = """SELECT e.entry_id, e.posting_id, p.kind, e.asset, e.amount, e.balance_after,
         e.business_at, e.created_at, p.reference, p.store_id, p.channel
       FROM ledger_entries e JOIN ledger_postings p ON p.posting_id = e.posting_id
       {cursor}
       WHERE e.group_id = :g AND e.member_id = :m {after_cursor}
       ORDER BY e.business_at DESC, e.entry_id DESC LIMIT :n"""
STATEMENT = Sql(_STATEMENT.format(cursor="", after_cursor=""))
# The page after entry `:before` (the previous page's last entry, of the same member).
STATEMENT_BEFORE = Sql(
    _STATEMENT.format(
        cursor="""JOIN ledger_entries c ON c.entry_id = :before AND c.group_id = e.group_id
         AND c.member_id = e.member_id""",
        after_cursor="AND (e.business_at, e.entry_id) < (c.business_at, c.entry_id)",
    )
)
ORDER_MEMBER = Sql("SELECT member_id FROM orders WHERE group_id = :g AND order_id = :o")
TIER_CHANGES = Sql(
    """SELECT from_tier, to_tier, reason, created_at FROM tier_changes
       WHERE group_id = :g AND member_id = :m ORDER BY change_id DESC LIMIT 20"""
)
# Whether an Idempotency-Key already names a posting of the group.
POSTING_KEY = Sql("SELECT 1 FROM ledger_postings WHERE group_id = :g AND idempotency_key = :k")
