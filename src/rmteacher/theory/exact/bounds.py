"""Closed-form bounds of the paper, with the constants it states.

Every function returns the bound's value; the experiments and tests compare measured gradients
and escape times against them.
"""

from __future__ import annotations

import math

import numpy as np


def lemma8_gradient_bound(variance: np.ndarray | float) -> np.ndarray:
    """Lemma 8 (tabular): ||grad_{theta_x} phi(theta; x)||_1 <= Var_pi[r^KL]^{1/2}."""
    return np.sqrt(variance)


def proposition2_gradient_bound(
    variance: np.ndarray | float, reward_bound: float, seq_len: int, jacobian_norm: float
) -> np.ndarray:
    """Proposition 2: ||grad phi(theta; x)||_2 <= 6 M^{1/3} L J_x Var[r^KL]^{1/3}, M >= 1.

    The proposition asks for M > 1 with r^KL in [-M, M]; the right-hand side is continuous in M,
    so M = max(1, max |r^KL|) is admissible.
    """
    m = max(1.0, float(reward_bound))
    return 6.0 * m ** (1 / 3) * seq_len * jacobian_norm * np.cbrt(variance)


def proposition3_time_lower_bound(
    variance: np.ndarray | float, gamma: float, n_prompts: int
) -> np.ndarray:
    """Proposition 3 (tabular): t_gamma >= 2|S| (1 - e^{-gamma/2}) Var_{pi_0}[r_RM(x, .)]^{-1/2}."""
    return 2 * n_prompts * (1 - math.exp(-gamma / 2)) / np.sqrt(variance)


def theorem4_time_lower_bound(
    mean_variance: np.ndarray | float,
    gamma: float,
    lam: float,
    seq_len: int,
    jacobian_norm: float,
) -> np.ndarray:
    """Theorem 4: t_gamma >= min{1 - e^{-gamma/9}, 1 - e^{-7/(3 lambda)}} / (8 L^2 J^2)
    * (E_{x~S} Var_{pi_0}[r_RM])^{-1/3}, with e^{-7/(3 lambda)} = 0 when lambda = 0."""
    kl_term = 1.0 if lam == 0 else 1 - math.exp(-7 / (3 * lam))
    front = min(1 - math.exp(-gamma / 9), kl_term) / (8 * seq_len**2 * jacobian_norm**2)
    return front / np.cbrt(mean_variance)


def theorem5_rho(gold_mean0: float, gamma: float, gold_at_target: float) -> float:
    """rho = (E_{pi_0}[r_G] + gamma + 1) / (r_G(y_gamma) + 1), in (0, 1) for a valid y_gamma."""
    return (gold_mean0 + gamma + 1) / (gold_at_target + 1)


def theorem5_slow_lower_bound(big_t: float, gamma: float, n_prompts: int) -> float:
    """Theorem 5, slow RM (rewards in (0, 1/T)): t_gamma >= 2|S| (1 - e^{-gamma/2}) T."""
    return 2 * n_prompts * (1 - math.exp(-gamma / 2)) * big_t


def theorem5_fast_upper_bound(prob_target: float, rho: float, n_prompts: int) -> float:
    """Theorem 5, fast RM: t_gamma <= 4|S| / (1 - rho)^4 * (1/pi_0(y_gamma) - 1/rho)."""
    return 4 * n_prompts / (1 - rho) ** 4 * (1 / prob_target - 1 / rho)


def theorem5_max_lambda(prob_target: float, rho: float, min_prob: float) -> float:
    """Largest KL weight for which Theorem 5's fast-RM bound is proved."""
    return prob_target * (1 - rho) ** 4 / (8 * (2 * math.log(1 / min_prob) + 1 / (2 * math.e)))


def theorem6_fast_upper_bound(c: float, rho: float, n_prompts: int) -> float:
    """Theorem 6, fast pairing: t_gamma <= 2|S| / (1 - rho)^3 * (1/c - 1/rho)."""
    return 2 * n_prompts / (1 - rho) ** 3 * (1 / c - 1 / rho)


def theorem6_slow_lower_bound(big_t: float, gamma: float, n_prompts: int) -> float:
    """Theorem 6, slow pairing (Var <= 8/T^2): t_gamma >= |S|/sqrt(2) (1 - e^{-gamma/2}) T."""
    return n_prompts / math.sqrt(2) * (1 - math.exp(-gamma / 2)) * big_t


def theorem6_max_lambda(c: float, rho: float, min_prob: float) -> float:
    """Largest KL weight for which Theorem 6's fast bound is proved."""
    return c * (1 - rho) ** 3 / (16 * (2 * math.log(1 / min_prob) + 1 / (2 * math.e)))
