"""The closed-form bounds against values computed by hand, so a dropped constant or a wrong
exponent is caught even where measured quantities sit far below or above the bounds."""

import math

import numpy as np
import pytest

from rmteacher.theory.exact import bounds, tabular


def test_gradient_bounds_by_hand():
    # Lemma 8: Var^{1/2}.
    assert bounds.lemma8_gradient_bound(0.09) == pytest.approx(0.3)
    # Proposition 2: 6 M^{1/3} L J Var^{1/3} = 6 * 2 * 3 * 1.5 * 0.1.
    assert bounds.proposition2_gradient_bound(0.001, 8.0, 3, 1.5) == pytest.approx(5.4)
    # M below 1 is replaced by 1 (the bound is stated for M > 1).
    assert bounds.proposition2_gradient_bound(0.001, 0.2, 3, 1.5) == pytest.approx(2.7)


def test_proposition2_ratio_on_the_two_arm_policy():
    """pi = (1/2, 1/2), r = (1, -1), lambda = 0: grad = pi * (r - V) = (1/2, -1/2), so
    ||grad||_2 = 1/sqrt(2); Var = 1 and M = 1, so the bound is 6 and the ratio is sqrt(2)/12."""
    theta = np.zeros((1, 2))
    reward = np.array([[1.0, -1.0]])
    grad = tabular.per_prompt_gradient(theta, tabular.softmax(theta), reward, 0.0)[0]
    np.testing.assert_allclose(grad, [0.5, -0.5])
    bound = bounds.proposition2_gradient_bound(1.0, 1.0, 1, 1.0)
    assert bound == pytest.approx(6.0)
    assert np.linalg.norm(grad) / bound == pytest.approx(math.sqrt(2) / 12)
    assert np.abs(grad).sum() == pytest.approx(bounds.lemma8_gradient_bound(1.0))  # tight


def test_escape_time_bounds_by_hand():
    # Proposition 3: 2|S| (1 - e^{-gamma/2}) Var^{-1/2}; gamma = 2 ln 2 makes the factor 1/2.
    assert bounds.proposition3_time_lower_bound(0.01, 2 * math.log(2), 3) == pytest.approx(30.0)
    # Theorem 4, gamma term smaller: (1 - e^{-0.1}) / (8 * 2^2 * 0.5^2) * 0.008^{-1/3}.
    expected = (1 - math.exp(-0.1)) / 8 * 5
    assert bounds.theorem4_time_lower_bound(0.008, 0.9, 0.0, 2, 0.5) == pytest.approx(expected)
    # Theorem 4, KL term smaller: lambda = 3 gives 1 - e^{-7/9} < 1 - e^{-2} (gamma = 18).
    expected = (1 - math.exp(-7 / 9)) / 8 * 5
    assert bounds.theorem4_time_lower_bound(0.008, 18.0, 3.0, 2, 0.5) == pytest.approx(expected)


def test_theorem5_and_6_bounds_by_hand():
    assert bounds.theorem5_rho(0.0, 0.5, 2.0) == pytest.approx(0.5)
    gamma = 2 * math.log(2)  # 1 - e^{-gamma/2} = 1/2
    assert bounds.theorem5_slow_lower_bound(100.0, gamma, 2) == pytest.approx(200.0)
    # 4|S| / (1 - rho)^4 * (1/p - 1/rho) = 4 * 16 * (10 - 2).
    assert bounds.theorem5_fast_upper_bound(0.1, 0.5, 1) == pytest.approx(512.0)
    # 2|S| / (1 - rho)^3 * (1/c - 1/rho) = 2 * 8 * (4 - 2).
    assert bounds.theorem6_fast_upper_bound(0.25, 0.5, 1) == pytest.approx(32.0)
    # |S| / sqrt(2) * (1 - e^{-gamma/2}) * T.
    assert bounds.theorem6_slow_lower_bound(10.0, gamma, 2) == pytest.approx(10 / math.sqrt(2))
    # lambda limits: p (1 - rho)^4 / (8 (2 ln(1/min) + 1/(2e))), c (1 - rho)^3 / (16 (...)).
    denominator = 2 * math.log(100) + 1 / (2 * math.e)
    assert bounds.theorem5_max_lambda(0.1, 0.5, 0.01) == pytest.approx(0.1 / 16 / (8 * denominator))
    assert bounds.theorem6_max_lambda(0.25, 0.5, 0.01) == pytest.approx(
        0.25 / 8 / (16 * denominator)
    )
