"""Definitions 1-2 and Best-of-N (Proposition 1), checked on fixtures and against Monte Carlo."""

import numpy as np
import pytest

from rmteacher.theory.exact import constructions, quantities


def test_variance_forms_agree_on_random_instances():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = rng.integers(2, 30)
        pi = rng.dirichlet(np.ones(n) * rng.uniform(0.1, 3), size=3)
        reward = rng.uniform(-1, 1, size=(3, n))
        np.testing.assert_allclose(
            quantities.reward_variance(pi, reward),
            quantities.reward_variance_pairwise(pi, reward),
            rtol=1e-10,
            atol=1e-14,
        )


def test_variance_hand_computed():
    pi = np.array([0.5, 0.25, 0.25])
    reward = np.array([1.0, 0.0, -1.0])
    # mean 0.25; E r^2 = 0.75; Var = 0.75 - 0.0625
    assert quantities.reward_variance(pi, reward) == pytest.approx(0.6875)
    assert quantities.reward_variance_pairwise(pi, reward) == pytest.approx(0.6875)


def test_accuracy_tie_rule_fixture():
    gold = np.array([0.0, 0.0, 1.0])
    # pairs (0,1): gold tie; (0,2), (1,2): gold says 2 is better.
    assert quantities.accuracy(np.array([0.0, 0.0, 5.0]), gold) == pytest.approx(1.0)
    # RM breaks the gold tie -> that pair is wrong, the other two right.
    assert quantities.accuracy(np.array([0.1, 0.0, 5.0]), gold) == pytest.approx(2 / 3)
    # RM ties a pair that gold orders -> wrong.
    assert quantities.accuracy(np.array([0.0, 0.0, 0.0]), gold) == pytest.approx(1 / 3)
    # Reversed ranking: only the tied pair can agree, and it does not (RM breaks it).
    assert quantities.accuracy(np.array([2.0, 1.0, 0.0]), gold) == pytest.approx(0.0)


def test_accuracy_pair_distribution_and_invariance():
    rng = np.random.default_rng(1)
    gold = rng.uniform(-1, 1, 8)
    rm = gold + 0.5 * rng.standard_normal(8)
    weights = np.zeros((8, 8))
    weights[0, 1] = 1.0  # D puts all mass on the pair {0, 1}
    expected = float(np.sign(rm[0] - rm[1]) == np.sign(gold[0] - gold[1]))
    assert quantities.accuracy(rm, gold, weights) == expected
    # Any strictly increasing transform of r_RM leaves accuracy unchanged.
    assert quantities.accuracy(np.exp(3 * rm) - 7, gold) == quantities.accuracy(rm, gold)


def test_accuracy_rejects_bad_input():
    with pytest.raises(ValueError, match="equal length"):
        quantities.accuracy(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="at least two"):
        quantities.accuracy(np.zeros(1), np.zeros(1))


def test_remark2_accuracy_is_two_over_y():
    rng = np.random.default_rng(2)
    for n in (3, 7, 20):
        gold = rng.uniform(-1, 1, n)
        target = int(gold.argmax())
        rm = constructions.fast_rm(constructions.remark2_order(gold, target), target, 0.1)
        assert quantities.accuracy(rm, gold) == pytest.approx(2 / n)


def test_best_of_one_is_policy_mean_and_large_n_is_top():
    rng = np.random.default_rng(3)
    pi = rng.dirichlet(np.ones(6))
    gold = rng.uniform(-1, 1, 6)
    rm = rng.uniform(-1, 1, 6)
    assert quantities.best_of_n_expected_reward(pi, rm, gold, 1) == pytest.approx(pi @ gold)
    assert quantities.best_of_n_expected_reward(pi, rm, gold, 4000) == pytest.approx(
        gold[rm.argmax()], abs=1e-9
    )


@pytest.mark.parametrize("with_ties", [False, True])
def test_best_of_n_exact_matches_monte_carlo(with_ties):
    rng = np.random.default_rng(4)
    pi = rng.dirichlet(np.ones(8))
    gold = rng.uniform(-1, 1, 8)
    rm = np.round(rng.uniform(0, 1, 8), 1 if with_ties else 6)
    if with_ties:
        rm[:3] = rm.max()  # three outputs tie at the top
    for n in (1, 2, 5, 16):
        exact = quantities.best_of_n_expected_reward(pi, rm, gold, n)
        est, se = quantities.best_of_n_monte_carlo(pi, rm, gold, n, 40_000, rng)
        assert abs(est - exact) < 4 * se, (n, exact, est, se)


def test_proposition1_accurate_rm_is_best_under_best_of_n():
    rng = np.random.default_rng(5)
    for _ in range(100):
        n_out = rng.integers(3, 12)
        pi = rng.dirichlet(np.ones(n_out))
        gold = np.round(rng.uniform(-1, 1, n_out), 1)  # ties in r_G on purpose
        accurate = constructions.slow_rm(gold, 50.0)
        assert quantities.accuracy(accurate, gold) == 1.0
        for n in (1, 2, 4, 16):
            best = quantities.best_of_n_expected_reward(pi, accurate, gold, n)
            for _ in range(5):
                other = rng.uniform(-1, 1, n_out)
                assert quantities.best_of_n_expected_reward(pi, other, gold, n) <= best + 1e-12


def test_accuracy_with_a_non_degenerate_pair_distribution():
    """D over the three pairs of {0, 1, 2} with probabilities 0.5, 0.3, 0.2 (given unnormalized),
    r_G = (0, 1, 2), r_RM = (0, 2, 1): pairs {0,1} and {0,2} agree, {1,2} is reversed, so
    acc = 0.5 + 0.3 = 0.8; a tie of r_RM on the r_G-ordered pair {0,1} makes it wrong."""
    gold = np.array([0.0, 1.0, 2.0])
    weights = np.zeros((3, 3))
    weights[0, 1], weights[0, 2], weights[1, 2] = 5.0, 3.0, 2.0
    weights[1, 0] = weights[2, 1] = 100.0  # below the diagonal: ignored
    assert quantities.accuracy(np.array([0.0, 2.0, 1.0]), gold, weights) == pytest.approx(0.8)
    assert quantities.accuracy(np.array([1.0, 1.0, 0.0]), gold, weights) == pytest.approx(0.0)
    assert quantities.accuracy(np.array([0.0, 0.0, 1.0]), gold, weights) == pytest.approx(0.5)
    # D uniform (weights None) is the plain fraction of correct pairs.
    assert quantities.accuracy(np.array([0.0, 2.0, 1.0]), gold) == pytest.approx(2 / 3)
