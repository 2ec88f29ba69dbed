"""Tabular softmax policies (Eq. 3): pi_theta(y|x) = softmax(theta_x)_y, theta in R^{|S| x |Y|}.

The objective is Eq. 1 with x uniform over the |S| rows:
    phi(theta) = (1/|S|) sum_x [E_pi r(x, .) - lambda KL(pi_theta(.|x) || pi_ref(.|x))].
"""

from __future__ import annotations

import numpy as np

from rmteacher.theory.exact.quantities import expected_reward, kl_divergence


def softmax(theta: np.ndarray) -> np.ndarray:
    """Row-wise softmax, numerically stable."""
    shifted = theta - theta.max(axis=-1, keepdims=True)
    weights = np.exp(shifted)
    return weights / weights.sum(axis=-1, keepdims=True)


def kl_regularized_reward(
    pi: np.ndarray, pi_ref: np.ndarray, reward: np.ndarray, lam: float
) -> np.ndarray:
    """r^KL(x, y) = r(x, y) - lambda ln(pi(y|x) / pi_ref(y|x))."""
    if lam == 0:
        return np.asarray(reward, dtype=float)
    return reward - lam * (np.log(pi) - np.log(pi_ref))


def objective(theta: np.ndarray, pi_ref: np.ndarray, reward: np.ndarray, lam: float) -> float:
    """phi_RLHF(theta) of Eq. 1 (average over the |S| prompts)."""
    pi = softmax(theta)
    per_prompt = expected_reward(pi, reward) - lam * kl_divergence(pi, pi_ref)
    return float(per_prompt.mean())


def per_prompt_gradient(
    theta: np.ndarray, pi_ref: np.ndarray, reward: np.ndarray, lam: float
) -> np.ndarray:
    """Lemma 7: grad_{theta_x} phi(theta; x) = pi(.|x) * (r^KL(x, .) - E_pi r^KL(x, .)).

    Row x holds the gradient of the single-prompt objective phi(theta; x) w.r.t. theta_x.
    """
    pi = softmax(theta)
    r_kl = kl_regularized_reward(pi, pi_ref, reward, lam)
    return pi * (r_kl - expected_reward(pi, r_kl)[..., None])


def gradient(theta: np.ndarray, pi_ref: np.ndarray, reward: np.ndarray, lam: float) -> np.ndarray:
    """grad phi_RLHF(theta): the rows of Lemma 7 divided by |S| (x is uniform over S)."""
    return per_prompt_gradient(theta, pi_ref, reward, lam) / theta.shape[0]


def probability_velocity(
    pi: np.ndarray, pi_ref: np.ndarray, reward: np.ndarray, lam: float
) -> np.ndarray:
    """Lemma 9: d/dt pi(y|x) under gradient flow on theta, written in probabilities only.

    d pi(y)/dt = (1/|S|) [pi(y)^2 a(y) - pi(y) sum_y' pi(y')^2 a(y')] with
    a = (r - V) - lambda (ln(pi/pi_ref) - KL).
    """
    n_prompts = pi.shape[0]
    advantage = reward - expected_reward(pi, reward)[..., None]
    if lam != 0:
        log_ratio = np.log(pi) - np.log(pi_ref)
        advantage = advantage - lam * (log_ratio - kl_divergence(pi, pi_ref)[..., None])
    weighted = pi**2 * advantage
    return (weighted - pi * weighted.sum(axis=-1, keepdims=True)) / n_prompts


def flow_limit(pi_ref: np.ndarray, reward: np.ndarray, lam: float) -> np.ndarray:
    """Where gradient flow on a tabular policy from pi_ref converges (one prompt, [|Y|]).

    lambda > 0: the unique maximizer of E_pi r - lambda KL(pi || pi_ref) over the simplex,
    pi*(y) ∝ pi_ref(y) exp(r(y) / lambda). lambda = 0: the point mass on argmax r, which must be
    unique (exact softmax policy gradient converges to the optimum; Mei et al., 2020).
    """
    reward = np.asarray(reward, dtype=float)
    if lam > 0:
        return softmax(np.log(pi_ref) + reward / lam)
    top = np.flatnonzero(reward == reward.max())
    if top.size != 1:
        raise ValueError("flow_limit with lambda = 0 needs a unique argmax of the reward")
    limit = np.zeros_like(reward)
    limit[top[0]] = 1.0
    return limit
