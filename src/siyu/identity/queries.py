"""OneID's reads for the async read port (siyu.store.reads)."""

from siyu.store.reads import Sql

# The merges a member took part in, as survivor or as the member merged away.
MEMBER_MERGES = Sql(
    """SELECT merge_id, survivor_id, merged_id, mode, created_at, undone_at FROM merges
       WHERE group_id = :g AND (survivor_id = :m OR merged_id = :m)
       ORDER BY merge_id DESC LIMIT 50"""
)
