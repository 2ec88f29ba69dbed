"""Theorems 5 and 6: the constructions have the stated properties and obey the stated bounds
under exact gradient flow, on random initial policies."""

import numpy as np
import pytest

from rmteacher.theory import bounds, constructions, flow, quantities, tabular


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
    rng = np.random.default_rng(0)
    gamma, big_t = 0.1, 30.0
    for _ in range(20):
        n = int(rng.integers(4, 15))
        gold = rng.uniform(-1, 1, n)
        target = int(gold.argmax())
        pi0 = constructions.random_policy(n, float(rng.uniform(0.5, 2)), rng)
        if pi0 @ gold + gamma >= gold[target]:
            continue
        slow = constructions.slow_rm(gold, big_t)
        assert quantities.accuracy(slow, gold) == 1.0
        assert quantities.reward_variance(pi0, slow) <= big_t**-2
        order = constructions.orderings_with_target_first(gold, target, [rng.random()], 0.5, rng)[0]
        fast = constructions.fast_rm(order, target, pi0[target])
        assert fast[target] == 1.0 and np.all(np.delete(fast, target) < pi0[target])
        lower = bounds.theorem5_slow_lower_bound(big_t, gamma, 1)
        t_slow = time_to_gamma(pi0, slow, gold, gamma, 0.0, 50 * lower)
        assert t_slow >= lower
        rho = bounds.theorem5_rho(pi0 @ gold, gamma, gold[target])
        upper = bounds.theorem5_fast_upper_bound(pi0[target], rho, 1)
        t_fast = time_to_gamma(pi0, fast, gold, gamma, 0.0, 2 * upper + 1)
        assert t_fast <= upper
        assert t_fast < t_slow


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
    t_slow = time_to_gamma(pi_a, rm_b, gold, gamma, 0.0, 100 * slow_lower)
    assert t_fast <= fast_upper and t_slow >= slow_lower and t_fast < t_slow
    assert time_to_gamma(pi_b, rm_b, gold, gamma, 0.0, 1e4) < time_to_gamma(
        pi_b, rm_a, gold, gamma, 0.0, 1e4
    )
    with pytest.raises(ValueError, match="not reachable"):
        constructions.theorem6_policy(gold, y_a, y_b, 0.99, big_t, c)
