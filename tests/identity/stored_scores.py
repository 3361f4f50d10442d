"""Pairwise scores of the store's members against a labelled set's truth: each record
(by its member number) counts as the member it ended in, merges followed to the end."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np
from sqlalchemy import Engine, text

from siyu.identity.evaluate import PairwiseScores, pairwise_scores


def stored_scores(engine: Engine, group_id: str, truth: Mapping[str, Hashable]) -> PairwiseScores:
    """P/R/F1 of the members' survivors (merged_into followed) against `truth`
    (member_ref -> true person)."""
    with engine.connect() as conn:
        member_of: dict[str, int] = dict(
            conn.execute(
                text("SELECT source_ref, member_id FROM members WHERE group_id = :g"),
                {"g": group_id},
            ).all()
        )
        into: dict[int, int] = dict(
            conn.execute(
                text(
                    "SELECT member_id, merged_into FROM members "
                    "WHERE group_id = :g AND merged_into IS NOT NULL"
                ),
                {"g": group_id},
            ).all()
        )

    def survivor(member: int) -> int:
        while member in into:
            member = into[member]
        return member

    refs = sorted(truth)
    predicted = np.array([survivor(member_of[r]) for r in refs])
    return pairwise_scores(predicted, np.array([truth[r] for r in refs]))
