"""Theorems 5 and 6: the constructions have the stated properties and obey the stated bounds
under exact gradient flow, on random initial policies."""

import numpy as np
import pytest

from rmteacher.theory.exact import bounds, constructions, flow, quantities, tabular


def time_to_gamma(pi0, rm, gold, gamma, lam, t_max):
    pi0, rm, gold = pi0[None, :], rm[None, :], gold[None, :]
    shape = pi0.shape
    return flow.integrate(
        lambda th: tabular.gradient(th.reshape(shape), pi0, rm, lam).ravel(),
        np.log(pi0).ravel(),
        t_max,
        progress=lambda th: float(tabular.softmax(th.reshape(shape))[0] @ gold[0]),
        target=float(pi0[0] @ gold[0]) + gamma,
        n_points=2,
    ).t_gamma


def test_values_following_keeps_order_and_ties_inside_interval():
    scores = np.array([0.3, -1.0, 0.3, 2.0])
    values = constructions.values_following(scores, 0.0, 0.01)
    assert np.all((values > 0) & (values < 0.01))
    assert values[0] == values[2] and values[1] < values[0] < values[3]
    with pytest.raises(ValueError):
        constructions.values_following(scores, 1.0, 1.0)


def test_theorem5_slow_and_fast_bounds_on_random_policies():
    """Every instance whose gamma is reachable is checked, and the accurate slow RM (r_G's
    order, so y_gamma first) must actually reach gamma: its lower bound is tested, not vacuous.
    T is chosen so the slow lower bound is twice the fast upper bound; only then does Theorem 5
    imply that the slow RM is the slower one."""
    rng = np.random.default_rng(0)
    gamma = 0.1
    checked = 0
    for _ in range(20):
        n = int(rng.integers(4, 15))
        gold = rng.uniform(-1, 1, n)
        target = int(gold.argmax())
        pi0 = constructions.random_policy(n, float(rng.uniform(0.5, 2)), rng)
        if pi0 @ gold + gamma >= gold[target]:
            continue
        rho = bounds.theorem5_rho(pi0 @ gold, gamma, gold[target])
        upper = bounds.theorem5_fast_upper_bound(pi0[target], rho, 1)
        big_t = max(30.0, 1.1 * upper / (1 - np.exp(-gamma / 2)))
        slow = constructions.slow_rm(gold, big_t)
        assert quantities.accuracy(slow, gold) == 1.0
        assert quantities.reward_variance(pi0, slow) <= big_t**-2
        order = constructions.noisy_orderings(gold, [rng.random()], 0.5, rng, target)[0]
        fast = constructions.fast_rm(order, target, pi0[target])
        assert fast[target] == 1.0 and np.all(np.delete(fast, target) < pi0[target])
        assert quantities.accuracy(fast, gold) == quantities.accuracy(
            constructions.slow_rm(order, big_t), gold
        )
        lower = bounds.theorem5_slow_lower_bound(big_t, gamma, 1)
        t_slow = time_to_gamma(pi0, slow, gold, gamma, 0.0, 1e4 * lower)
        assert np.isfinite(t_slow) and t_slow >= lower >= 2 * upper
        t_fast = time_to_gamma(pi0, fast, gold, gamma, 0.0, 2 * upper + 1)
        assert t_fast <= upper
        assert t_fast < t_slow
        checked += 1
    assert checked >= 15


def test_theorem5_slow_bound_at_any_accuracy_on_reached_runs():
    """Slow RMs whose ranking need not put y_gamma first (any attainable accuracy): the bound
    is counted only on runs that reach gamma, and enough of them do."""
    rng = np.random.default_rng(6)
    gamma, big_t = 0.1, 20.0
    lower = bounds.theorem5_slow_lower_bound(big_t, gamma, 1)
    reached, accuracies = 0, []
    for _ in range(60):
        n = int(rng.integers(4, 10))
        gold = rng.uniform(-1, 1, n)
        pi0 = constructions.random_policy(n, 1.0, rng)
        order = constructions.noisy_orderings(gold, [rng.random()], 0.5, rng)[0]
        slow = constructions.slow_rm(order, big_t)
        t_slow = time_to_gamma(pi0, slow, gold, gamma, 0.0, 1e4 * lower)
        if np.isfinite(t_slow):
            assert t_slow >= lower
            reached += 1
            accuracies.append(quantities.accuracy(slow, gold))
    assert reached >= 15
    assert min(accuracies) < 0.7  # the checked runs are not all near-accurate RMs


def test_remark2_breaks_gold_ties_so_accuracy_is_at_most_two_over_y():
    gold = np.array([0.0, 0.0, 0.5, 1.0])
    rm = constructions.fast_rm(constructions.remark2_order(gold, 3), 3, 0.1)
    # Only the pairs (y_gamma, y) are right: 3 of 6 = 2/|Y|; the r_G tie (0, 1) is separated.
    assert rm[0] != rm[1]
    assert quantities.accuracy(rm, gold) == pytest.approx(2 / 4)
    # y_gamma not the argmax of r_G: only pairs with r_G(y) < r_G(y_gamma) count, 2 of 6.
    rm = constructions.fast_rm(constructions.remark2_order(gold, 2), 2, 0.1)
    assert quantities.accuracy(rm, gold) == pytest.approx(2 / 6)
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(3, 12))
        gold = np.round(rng.uniform(-1, 1, n), 1)  # many ties
        target = int(rng.integers(n))
        rm = constructions.fast_rm(constructions.remark2_order(gold, target), target, 0.1)
        expected = np.sum(gold < gold[target]) / (n * (n - 1) / 2)
        assert quantities.accuracy(rm, gold) == pytest.approx(expected)
        assert expected <= 2 / n


def test_theorem6_families_and_flip():
    rng = np.random.default_rng(1)
    gold = np.sort(rng.uniform(-1, 1, 8))
    y_a, y_b = 7, 6  # the two best outputs
    v0, gamma, big_t, c = float(gold.mean()), 0.1, 20.0, 0.3
    pi_a = constructions.theorem6_policy(gold, y_a, y_b, v0, big_t, c)  # family Pi
    pi_b = constructions.theorem6_policy(gold, y_b, y_a, v0, big_t, c)  # family Pi'
    for pi, likely, rare in ((pi_a, y_a, y_b), (pi_b, y_b, y_a)):
        assert pi.sum() == pytest.approx(1.0) and pi @ gold == pytest.approx(v0, abs=1e-12)
        assert pi[rare] == pytest.approx(big_t**-2) and pi[likely] == pytest.approx(c)
    rm_a, rm_b = constructions.indicator_rm(8, y_a), constructions.indicator_rm(8, y_b)
    assert quantities.reward_variance(pi_a, rm_b) <= 8 / big_t**2
    slow_lower = bounds.theorem6_slow_lower_bound(big_t, gamma, 1)
    rho = bounds.theorem5_rho(v0, gamma, gold[y_a])
    fast_upper = bounds.theorem6_fast_upper_bound(c, rho, 1)
    t_fast = time_to_gamma(pi_a, rm_a, gold, gamma, 0.0, 10 * fast_upper)
    t_slow = time_to_gamma(pi_a, rm_b, gold, gamma, 0.0, 100 * big_t**2)
    assert np.isfinite(t_slow)  # reached: the lower bound is tested, not vacuous
    assert t_fast <= fast_upper and t_slow >= slow_lower and t_fast < t_slow
    assert time_to_gamma(pi_b, rm_b, gold, gamma, 0.0, 1e4) < time_to_gamma(
        pi_b, rm_a, gold, gamma, 0.0, 1e4
    )
    with pytest.raises(ValueError, match="not reachable"):
        constructions.theorem6_policy(gold, y_a, y_b, 0.99, big_t, c)
