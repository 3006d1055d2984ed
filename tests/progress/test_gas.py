"""The Kiresuk-Sherman T-score against values computed by hand."""

import math

import pytest

from app.dashboard.gas import gas_t_score, t_score_from_sums


def test_no_scores_is_null():
    assert gas_t_score([]) is None
    assert t_score_from_sums(0, 0, 0) is None


def test_all_expected_outcomes_give_fifty():
    # sum(w x) = 0 whatever the weights, so T = 50 exactly.
    assert gas_t_score([(0, 3), (0, 1), (0, 9)]) == 50.0


def test_single_goal_unit_weight():
    # x = 1, w = 1: denominator = 0.7 * 1 + 0.3 * 1^2 = 1.0, sqrt = 1
    # T = 50 + 10 * 1 / 1 = 60.0
    assert gas_t_score([(1, 1)]) == 60.0
    # x = -2: T = 50 - 20 = 30.0
    assert gas_t_score([(-2, 1)]) == 30.0


def test_weighted_goals_by_hand():
    # Three goals: (x, w) = (2, 3), (-1, 1), (0, 2)
    # sum(w x)   = 2*3 + (-1)*1 + 0*2 = 6 - 1 + 0 = 5
    # sum(w^2)   = 9 + 1 + 4 = 14
    # sum(w)     = 3 + 1 + 2 = 6, squared 36
    # denominator = 0.7 * 14 + 0.3 * 36 = 9.8 + 10.8 = 20.6
    # sqrt(20.6) = 4.538722...
    # T = 50 + 10 * 5 / 4.538722 = 50 + 11.01631 = 61.01631 -> 61.0
    assert gas_t_score([(2, 3), (-1, 1), (0, 2)]) == 61.0


def test_weighted_goals_below_expectation_by_hand():
    # Two goals: (x, w) = (-1, 4), (1, 1)
    # sum(w x) = -4 + 1 = -3
    # sum(w^2) = 16 + 1 = 17 ; sum(w) = 5, squared 25
    # denominator = 0.7 * 17 + 0.3 * 25 = 11.9 + 7.5 = 19.4 ; sqrt = 4.404543...
    # T = 50 - 30 / 4.404543 = 50 - 6.81114 = 43.18886 -> 43.2
    assert gas_t_score([(-1, 4), (1, 1)]) == 43.2


def test_best_possible_with_weights_by_hand():
    # (x, w) = (2, 9), (2, 5): sum(w x) = 18 + 10 = 28
    # sum(w^2) = 81 + 25 = 106 ; sum(w) = 14, squared 196
    # denominator = 0.7 * 106 + 0.3 * 196 = 74.2 + 58.8 = 133.0 ; sqrt = 11.532563...
    # T = 50 + 280 / 11.532563 = 50 + 24.27903 = 74.27903 -> 74.3
    assert gas_t_score([(2, 9), (2, 5)]) == 74.3


@pytest.mark.parametrize(
    "pairs", [[(1, 2), (-2, 3), (2, 1), (0, 7)], [(-2, 9)], [(1, 1), (1, 1), (1, 1)]]
)
def test_sums_and_pairs_agree(pairs):
    swx = sum(w * x for x, w in pairs)
    sww = sum(w * w for _, w in pairs)
    sw = sum(w for _, w in pairs)
    expected = round(50 + 10 * swx / math.sqrt(0.7 * sww + 0.3 * sw * sw), 1)
    assert gas_t_score(pairs) == t_score_from_sums(swx, sww, sw) == expected
