"""How close a OneID resolution is to the truth: pairwise precision, recall and F1.

A pair is two items in one cluster. Precision is the share of predicted pairs that are
true pairs (how often a merge was right), recall the share of true pairs that were
predicted (how many merges were found). Counted from the contingency table of
(predicted, true) labels, so O(n log n) and never O(n^2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from siyu.identity.errors import GraphInputError


@dataclass(frozen=True)
class PairwiseScores:
    """Pairwise scores; counts are exact integers, ratios in [0, 1]."""

    precision: float  # 1.0 when there are no predicted pairs: nothing was merged wrongly
    recall: float  # 1.0 when there are no true pairs: nothing was there to find
    f1: float  # harmonic mean of precision and recall; 0.0 if both are 0
    true_positive_pairs: int
    predicted_pairs: int
    true_pairs: int
    predicted_clusters: int
    true_clusters: int


def _pairs(counts: np.ndarray) -> int:
    counts = counts.astype(np.int64)
    return int((counts * (counts - 1) // 2).sum())


def _codes(field: str, labels: np.ndarray) -> tuple[np.ndarray, int]:
    if not isinstance(labels, np.ndarray) or labels.ndim != 1:
        raise GraphInputError(field, "must be a 1-D numpy array of cluster labels")
    uniques, codes = np.unique(labels, return_inverse=True)
    return codes.astype(np.int64).reshape(-1), int(uniques.size)


def pairwise_scores(predicted: np.ndarray, truth: np.ndarray) -> PairwiseScores:
    """Score cluster labels `predicted` against `truth` (same items, same order).

    Labels may be any sortable values; only equality matters.
    """
    pred, n_pred = _codes("predicted", predicted)
    true, n_true = _codes("truth", truth)
    if pred.size != true.size:
        raise GraphInputError(
            "truth", f"must label as many items as predicted ({pred.size}), got {true.size}"
        )
    _, joint = np.unique(pred * max(n_true, 1) + true, return_counts=True)
    tp = _pairs(joint)
    predicted_pairs = _pairs(np.bincount(pred, minlength=n_pred))
    true_pairs = _pairs(np.bincount(true, minlength=n_true))
    precision = tp / predicted_pairs if predicted_pairs else 1.0
    recall = tp / true_pairs if true_pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PairwiseScores(
        precision=precision,
        recall=recall,
        f1=f1,
        true_positive_pairs=tp,
        predicted_pairs=predicted_pairs,
        true_pairs=true_pairs,
        predicted_clusters=n_pred,
        true_clusters=n_true,
    )
