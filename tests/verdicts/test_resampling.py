"""The resampling primitives: the exact permutation test against brute force, the two-level
bootstrap (it resamples units, not only seeds, and marks draws with too few distinct units),
seed-paired t-intervals and Holm's correction."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from rmteacher.verdicts import resampling as rs


def brute_force_p(x, y, method):
    corr = (
        (lambda a, b: stats.pearsonr(a, b)[0])
        if method == "pearson"
        else (lambda a, b: stats.spearmanr(a, b)[0])
    )
    observed = corr(x, y)
    null = [corr(x, [y[i] for i in order]) for order in itertools.permutations(range(len(y)))]
    return np.mean([v >= observed - 1e-12 for v in null])


@pytest.mark.parametrize("method", ["pearson", "spearman"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_permutation_p_equals_brute_force(method, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=5), rng.normal(size=5)
    y = y + 0.8 * x
    assert rs.permutation_test(x, y, method) == pytest.approx(brute_force_p(x, y, method))


def test_smallest_p_is_one_over_n_factorial():
    x = np.arange(6.0)
    assert rs.permutation_test(x, x * 2 + 1) == pytest.approx(1 / math.factorial(6))
    assert rs.smallest_p(5) == pytest.approx(1 / 120)
    with pytest.raises(ValueError, match="at most 8"):
        rs.permutation_test(np.arange(9.0), np.arange(9.0))


def test_two_level_bootstrap_resamples_units_as_well_as_seeds():
    """Without any seed noise a seed-only bootstrap has zero width; the two-level one does not,
    because which RMs are drawn changes the correlation."""
    x = {"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4, "e": 0.5}
    seeds = {"a": [0.5] * 3, "b": [0.1] * 3, "c": [0.4] * 3, "d": [0.9] * 3, "e": [0.6] * 3}
    draws, undefined = rs.correlation_draws(x, seeds, 2000, seed=0)
    low, high = rs.percentile_interval(draws)
    assert high - low > 0.5
    # with five units, draws with fewer than three distinct ones: (5 + 10 * 30) / 5**5
    assert undefined == pytest.approx(305 / 3125, abs=0.02)


def test_a_draw_with_fewer_than_three_distinct_units_is_undefined():
    seeds = {"a": [1.0, 2.0], "b": [3.0, 4.0]}
    draws, undefined = rs.two_level_bootstrap(seeds, lambda u, m: 1.0, 50, seed=0)
    assert undefined == 1.0 and np.isnan(draws).all()
    assert np.isnan(rs.percentile_interval(draws)).all()


def test_paired_t_interval_and_its_undefined_cases():
    mean, low, high, n, p = rs.paired_t([0.1, 0.2, 0.15, 0.12])
    assert n == 4 and low < mean < high and low > 0 and p < 0.05
    assert np.isnan(rs.paired_t([0.3])[1])  # one pair: no interval
    assert np.isnan(rs.paired_t([0.2, 0.2, 0.2])[1])  # zero width is no interval either


def test_holm_adjusts_in_order_and_keeps_nan():
    adjusted = rs.holm([0.01, 0.04, 0.03, np.nan])
    assert adjusted[0] == pytest.approx(0.04)
    assert adjusted[2] == pytest.approx(0.09) and adjusted[1] == pytest.approx(0.09)
    assert np.isnan(adjusted[3])


def test_leave_one_out_recomputes_without_each_unit():
    out = rs.leave_one_out(["a", "b", "c"], lambda keep: len(keep))
    assert out == {"a": 2, "b": 2, "c": 2}
