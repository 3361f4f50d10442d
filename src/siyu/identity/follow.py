"""What follows a OneID merge or unmerge: balances (`ledger.merges`), tags
(`tag_follow`), coupons (`coupon_follow`), the facts of QR scans and receipts
(`fact_follow`), marketing consent (`message_follow`), experiment assignments
(`experiment_follow`) and the member's own guide (`guides.binding.follow_merges`). Every
face that merges or unmerges calls `follow` after the identity transaction has committed;
each part is safe to repeat, so a crash in between is repaired by the next call."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine

from siyu.guides.binding import follow_merges as follow_bindings
from siyu.identity.coupon_follow import follow_coupons
from siyu.identity.experiment_follow import follow_experiments
from siyu.identity.fact_follow import follow_facts
from siyu.identity.message_follow import follow_consents
from siyu.identity.tag_follow import follow_merges as follow_tags
from siyu.ledger.merges import settle_merges


def follow(engine: Engine, group_id: str, merge_ids: Sequence[int] | None = None) -> None:
    """Settle the ledger, then move tags, coupons, scans, receipts, consent, experiment
    assignments and guide bindings, for every merge and unmerge not yet followed (or for
    `merge_ids` only)."""
    settle_merges(engine, group_id, merge_ids)
    follow_tags(engine, group_id, merge_ids)
    follow_coupons(engine, group_id, merge_ids)
    follow_facts(engine, group_id, merge_ids)
    follow_consents(engine, group_id, merge_ids)
    follow_experiments(engine, group_id, merge_ids)
    follow_bindings(engine, group_id, merge_ids)
