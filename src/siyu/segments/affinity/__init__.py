"""The affinity score (亲密度, issue #16): Σ coefficient(behaviour) × decayed count, with a
brand group's coefficients set by HQ (`rules`: a validated, versioned document), an
explainable breakdown per member and a set-wise computation written as the automatic tag
`auto.affinity` (`score`). The scorer is `orders.scoring`, the one the tiers' activity
score uses, so the two never disagree."""

from siyu.segments.affinity.rules import (
    BEHAVIOURS,
    AffinityRules,
    Band,
    affinity_rules,
    parse_rules,
    rules_version,
    save_rules,
)
from siyu.segments.affinity.score import Explained, band_of, explain, score_all, weights_of

__all__ = [
    "BEHAVIOURS",
    "AffinityRules",
    "Band",
    "Explained",
    "affinity_rules",
    "band_of",
    "explain",
    "parse_rules",
    "rules_version",
    "save_rules",
    "score_all",
    "weights_of",
]
