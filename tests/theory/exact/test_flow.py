"""The integrator against a closed-form two-output gradient flow, and its tolerance control."""

import numpy as np
import pytest

from rmteacher.theory.exact import flow, tabular


def two_arm_invariant(d):
    """For theta = (theta_1, theta_2), d = theta_1 - theta_2 obeys dd/dt = 2 s(1-s) dr / |S| with
    s = sigmoid(d), whose solution satisfies 2d + 2 sinh(d) = 2d_0 + 2 sinh(d_0) + 2 dr t / |S|."""
    return 2 * d + 2 * np.sinh(d)


@pytest.mark.parametrize("rtol,tol", [(1e-6, 1e-4), (1e-10, 1e-8)])
def test_two_arm_flow_matches_closed_form(rtol, tol):
    reward = np.array([[0.7, -0.2]])
    theta0 = np.array([[-1.0, 0.5]])
    pi_ref = tabular.softmax(theta0)
    result = flow.integrate(
        lambda th: tabular.gradient(th.reshape(1, 2), pi_ref, reward, 0.0).ravel(),
        theta0.ravel(),
        40.0,
        n_points=20,
        rtol=rtol,
        atol=rtol * 1e-2,
    )
    d = result.states[:, 0] - result.states[:, 1]
    expected = two_arm_invariant(d[0]) + 2 * 0.9 * result.times
    np.testing.assert_allclose(two_arm_invariant(d), expected, rtol=tol, atol=tol)


def test_t_gamma_event_matches_closed_form_and_tightens():
    reward = np.array([[1.0, 0.0]])
    theta0 = np.zeros((1, 2))
    pi_ref = tabular.softmax(theta0)
    gamma = 0.3  # E r = sigmoid(d); from 0.5 to 0.8
    d_star = np.log(0.8 / 0.2)
    t_exact = (two_arm_invariant(d_star) - two_arm_invariant(0.0)) / 2.0

    def rhs(th):
        return tabular.gradient(th.reshape(1, 2), pi_ref, reward, 0.0).ravel()

    def progress(th):
        return float(tabular.softmax(th.reshape(1, 2))[0, 0])

    errors = []
    for rtol in (1e-4, 1e-7, 1e-10):
        res = flow.integrate(
            rhs,
            theta0.ravel(),
            100.0,
            progress=progress,
            target=0.5 + gamma,
            rtol=rtol,
            atol=rtol * 1e-2,
        )
        errors.append(abs(res.t_gamma - t_exact) / t_exact)
    assert errors[-1] < 1e-8
    assert errors[-1] <= errors[0]
    rel = flow.t_gamma_tolerance_check(rhs, theta0.ravel(), 100.0, progress, 0.5 + gamma)
    assert rel < 1e-6


def test_unreached_target_gives_infinite_time_and_bad_horizon_errors():
    reward = np.array([[0.0, 0.0]])
    pi_ref = np.array([[0.5, 0.5]])
    res = flow.integrate(
        lambda th: tabular.gradient(th.reshape(1, 2), pi_ref, reward, 0.0).ravel(),
        np.zeros(2),
        10.0,
        progress=lambda th: 0.0,
        target=1.0,
    )
    assert np.isinf(res.t_gamma)
    with pytest.raises(ValueError, match="t_max"):
        flow.integrate(lambda th: th, np.zeros(2), 0.0)
