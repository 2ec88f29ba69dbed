"""Accuracy (tie rule), reward variance, normalisation and correlations on hand-made fixtures."""

import numpy as np
import pytest

from rmteacher.metrics.rm_metrics import (
    accuracy,
    correlation,
    gold_tie_fraction,
    per_prompt_accuracy,
    reward_variance,
    untied_accuracy,
)
from rmteacher.rewards.normalize import Normalization


def test_accuracy_counts_all_pairs_with_the_tie_rule():
    gold = np.array([[0.0, 0.0, 1.0]])  # pairs (0,1) tie, (0,2) and (1,2) prefer sample 2
    rm_ties_too = np.array([[5.0, 5.0, 7.0]])
    rm_breaks_tie = np.array([[5.0, 4.0, 7.0]])
    rm_reversed = np.array([[5.0, 4.0, 1.0]])
    assert accuracy(rm_ties_too, gold) == 1.0
    assert accuracy(rm_breaks_tie, gold) == pytest.approx(2 / 3)  # a broken tie is a mistake
    assert accuracy(rm_reversed, gold) == 0.0
    assert untied_accuracy(rm_breaks_tie, gold) == 1.0  # ignoring the tied pair
    assert gold_tie_fraction(gold) == pytest.approx(1 / 3)


def test_accuracy_averages_pairs_then_prompts():
    gold = np.array([[1.0, 2.0], [1.0, 2.0], [3.0, 1.0]])
    rm = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0]])
    assert list(per_prompt_accuracy(rm, gold)) == [1.0, 0.0, 1.0]
    assert accuracy(rm, gold) == pytest.approx(2 / 3)
    ten = np.random.default_rng(0).normal(size=(4, 10))
    assert per_prompt_accuracy(ten, ten).tolist() == [1.0] * 4  # 45 pairs each


def test_accuracy_is_invariant_to_positive_affine_maps():
    rng = np.random.default_rng(1)
    rm, gold = rng.normal(size=(20, 6)), rng.normal(size=(20, 6))
    assert accuracy(3.0 * rm - 2.0, gold) == accuracy(rm, gold)


def test_accuracy_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="equal"):
        accuracy(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError):
        accuracy(np.zeros((0, 3)), np.zeros((0, 3)))


def test_reward_variance_is_mean_unbiased_per_prompt_variance():
    rewards = np.array([[1.0, 3.0], [2.0, 2.0]])  # variances (ddof=1): 2 and 0
    assert reward_variance(rewards) == pytest.approx(1.0)
    constant = np.full((5, 4), 7.0)
    assert reward_variance(constant) == 0.0
    with pytest.raises(ValueError):
        reward_variance(np.array([[1.0], [2.0]]))


def test_global_normalization_matches_the_official_code():
    rng = np.random.default_rng(2)
    raw = rng.normal(3.0, 2.0, size=(50, 10))
    norm = Normalization.from_rewards(raw)
    z = norm(raw)
    assert z.mean() == pytest.approx(0.0, abs=1e-12)
    assert z.std(ddof=1) == pytest.approx(1.0, abs=1e-6)
    # shift and scale are fixed: applying them to new rewards uses the old constants
    assert norm(np.array([raw.mean()]))[0] == pytest.approx(0.0, abs=1e-12)
    # a constant RM does not divide by zero
    flat = Normalization.from_rewards(np.ones((3, 2)))
    assert np.isfinite(flat.scale) and flat(np.ones(2)).tolist() == [0.0, 0.0]


def test_per_prompt_variance_normalization_gives_unit_mean_variance():
    rng = np.random.default_rng(3)
    raw = rng.normal(size=(40, 10)) * rng.uniform(0.1, 3, size=(40, 1)) + rng.normal(size=(40, 1))
    norm = Normalization.from_per_prompt_variance(raw)
    assert reward_variance(norm(raw)) == pytest.approx(1.0, abs=1e-6)
    # the global scheme gives variance below 1 when prompts differ in mean
    assert reward_variance(Normalization.from_rewards(raw)(raw)) < 1.0


def test_variance_scales_quadratically_and_accuracy_is_unchanged():
    rng = np.random.default_rng(4)
    gold = rng.normal(size=(30, 10))
    norm = Normalization.from_rewards(gold)
    small = 0.001 * gold
    assert reward_variance(norm(small)) == pytest.approx(1e-6 * reward_variance(norm(gold)))
    assert accuracy(small, gold) == 1.0


def test_correlation_fixtures():
    x = [1.0, 2.0, 3.0, 4.0]
    assert correlation(x, [2.0, 4.0, 6.0, 8.0]) == pytest.approx((1.0, 1.0))
    assert correlation(x, [1.0, 8.0, 27.0, 64.0])[1] == pytest.approx(1.0)
    pearson, spearman = correlation(x, [4.0, 3.0, 2.0, 1.0])
    assert pearson == pytest.approx(-1.0) and spearman == pytest.approx(-1.0)
    assert all(np.isnan(correlation(x, [1.0, 1.0, 1.0, 1.0])))
    with pytest.raises(ValueError):
        correlation([1.0, 2.0], [1.0, 2.0])
