"""Pairwise precision / recall / F1 of a clustering against the truth."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from siyu.identity.evaluate import PairwiseScores, pairwise_scores


def brute_force(predicted: list[int], truth: list[int]) -> tuple[int, int, int]:
    pairs = list(combinations(range(len(predicted)), 2))
    same_p = {(i, j) for i, j in pairs if predicted[i] == predicted[j]}
    same_t = {(i, j) for i, j in pairs if truth[i] == truth[j]}
    return len(same_p & same_t), len(same_p), len(same_t)


def test_a_hand_made_example() -> None:
    # given 5 items, truly {0,1,2} {3,4}, predicted {0,1} {2,3,4}
    truth = np.array([7, 7, 7, 9, 9])
    predicted = np.array([0, 0, 1, 1, 1])
    # when scored
    s = pairwise_scores(predicted, truth)
    # then: predicted pairs 01 23 24 34, true pairs 01 02 12 34, shared 01 34
    assert (s.true_positive_pairs, s.predicted_pairs, s.true_pairs) == (2, 4, 4)
    assert (s.precision, s.recall, s.f1) == (0.5, 0.5, 0.5)
    assert (s.predicted_clusters, s.true_clusters) == (2, 2)


def test_one_wrong_merge_costs_precision_not_recall() -> None:
    # given two true people merged into one predicted member
    s = pairwise_scores(np.array([1, 1, 1, 1]), np.array([0, 0, 5, 5]))
    # then every true pair is found, a third of the predicted pairs are right
    assert s.recall == 1.0
    assert s.precision == pytest.approx(2 / 6)
    assert s.f1 == pytest.approx(2 * (1 / 3) / (1 + 1 / 3))


def test_identical_labelings_score_one_whatever_the_label_values() -> None:
    truth = np.array(["a", "b", "a", "c", "b"])
    s = pairwise_scores(np.array([3, -1, 3, 0, -1]), truth)
    assert (s.precision, s.recall, s.f1) == (1.0, 1.0, 1.0)


def test_no_pairs_anywhere_scores_one_by_definition() -> None:
    # given only singletons on both sides (and the empty case)
    for predicted, truth in [([1, 2, 3], [4, 5, 6]), ([], [])]:
        s = pairwise_scores(np.array(predicted, np.int64), np.array(truth, np.int64))
        # then nothing was merged wrongly and nothing was there to find
        assert (s.precision, s.recall, s.f1) == (1.0, 1.0, 1.0)
        assert s.predicted_pairs == s.true_pairs == 0


def test_nothing_merged_when_there_was_something_to_find() -> None:
    s = pairwise_scores(np.array([0, 1, 2]), np.array([0, 0, 0]))
    assert (s.precision, s.recall, s.f1) == (1.0, 0.0, 0.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), max_size=25))
def test_counts_match_the_quadratic_definition(items: list[tuple[int, int]]) -> None:
    predicted, truth = [p for p, _ in items], [t for _, t in items]
    s = pairwise_scores(np.array(predicted, np.int64), np.array(truth, np.int64))
    assert (s.true_positive_pairs, s.predicted_pairs, s.true_pairs) == brute_force(predicted, truth)
    assert 0.0 <= s.precision <= 1.0 and 0.0 <= s.recall <= 1.0 and 0.0 <= s.f1 <= 1.0


def test_a_million_items_are_scored_without_pairs_being_listed() -> None:
    # given 1M items in ~250k true people, predicted with some merges (5e11 pairs if listed)
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 250_000, 1_000_000)
    predicted = truth // 2
    # when scored, then it finishes and counts stay exact integers
    s = pairwise_scores(predicted, truth)
    assert isinstance(s, PairwiseScores) and s.recall == 1.0
    assert s.true_positive_pairs == s.true_pairs < s.predicted_pairs


@pytest.mark.parametrize(
    ("predicted", "truth", "field"),
    [
        (np.zeros((2, 2)), np.zeros(4), "predicted"),
        (np.zeros(3), np.zeros(4), "truth"),
        (np.zeros(3), [0, 0, 0], "truth"),
    ],
)
def test_bad_inputs_name_the_field(predicted: object, truth: object, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}: "):
        pairwise_scores(predicted, truth)  # type: ignore[arg-type]
