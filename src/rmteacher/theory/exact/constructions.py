"""The paper's constructions as functions (tabular, one prompt; vectors have shape [|Y|]).

* Theorem 5 / Remark 2: a perfectly accurate but slow RM with rewards in (0, 1/T), and a fast RM
  that puts reward 1 on y_gamma and values below pi_0(y_gamma) elsewhere, at any accuracy.
* Theorem 6: policy families Pi, Pi' with equal initial ground-truth reward, and the +-1 RMs.
* Remark 3: an RM whose variance is low only because pi_0 rarely produces its rewarded output.
"""

from __future__ import annotations

import numpy as np


def values_following(order_scores: np.ndarray, low: float, high: float) -> np.ndarray:
    """Rewards strictly inside (low, high) that rank outputs exactly like `order_scores`
    (ties kept as ties): dense rank k of K levels maps to low + (k + 1)(high - low)/(K + 1)."""
    if not high > low:
        raise ValueError(f"need high > low, got ({low}, {high})")
    levels, dense_rank = np.unique(np.asarray(order_scores, dtype=float), return_inverse=True)
    return low + (dense_rank + 1) * (high - low) / (levels.size + 1)


def slow_rm(order_scores: np.ndarray, big_t: float) -> np.ndarray:
    """Theorem 5's r_RM: b_y in (0, 1/T) ordered like `order_scores`, so Var <= 1/T^2 under
    every policy. With order_scores = r_G it is perfectly accurate (acc_x = 1)."""
    if big_t < 1:
        raise ValueError(f"T must be >= 1, got {big_t}")
    return values_following(order_scores, 0.0, 1.0 / big_t)


def fast_rm(order_scores: np.ndarray, target: int, prob_target: float) -> np.ndarray:
    """Theorem 5's r'_RM: r'(y_gamma) = 1 and c_y in (0, pi_0(y_gamma)) elsewhere, the others
    ordered like `order_scores`. y_gamma is ranked first."""
    others = np.delete(np.arange(len(order_scores)), target)
    reward = np.empty(len(order_scores))
    reward[others] = values_following(np.asarray(order_scores)[others], 0.0, prob_target)
    reward[target] = 1.0
    return reward


def remark2_order(reward_gold: np.ndarray, target: int) -> np.ndarray:
    """Ranking scores of Remark 2's RM: y_gamma first, then the other outputs in reverse r_G
    order with r_G's ties broken (by index), so all scores are distinct.

    Every pair is then misordered except (y_gamma, y) with r_G(y) < r_G(y_gamma): pairs reversed
    by the RM are wrong, and so are pairs tied under r_G, which the RM separates. Hence
    acc_x = |{y : r_G(y) < r_G(y_gamma)}| / (|Y|(|Y| - 1)/2) <= 2/|Y| (uniform D), with equality
    exactly when y_gamma is the unique argmax of r_G."""
    gold = np.asarray(reward_gold, dtype=float)
    rank = np.argsort(np.argsort(gold, kind="stable"), kind="stable")  # distinct, ascending in r_G
    scores = -rank.astype(float)
    scores[target] = gold.size
    return scores


def noisy_orderings(
    reward_gold: np.ndarray,
    mixes: np.ndarray,
    noise: float,
    rng: np.random.Generator,
    target: int | None = None,
) -> list[np.ndarray]:
    """Ranking scores (1 - 2 mix) z_G + noise * eps, z_G the standardized r_G: accuracy goes from
    ~1 (mix = 0) to ~0 (mix = 1). With `target`, y_gamma is put first in every ranking, which
    Theorem 5's fast RM needs; accuracy then stays above ~2/|Y|."""
    z = (reward_gold - reward_gold.mean()) / reward_gold.std()
    orders = []
    for mix in mixes:
        scores = (1 - 2 * mix) * z + noise * rng.standard_normal(z.size)
        if target is not None:
            scores[target] = scores.max() + 1.0
        orders.append(scores)
    return orders


def indicator_rm(n_outputs: int, target: int, low: float = -1.0) -> np.ndarray:
    """+1 on `target` and `low` elsewhere: Theorem 6's RMs (low = -1), or Remark 3's RM that
    rewards only an output pi_0 rarely produces (low = 0; Var_{pi_0} = p(1 - p) with
    p = pi_0(target), whatever the reward scale)."""
    reward = np.full(n_outputs, float(low))
    reward[target] = 1.0
    return reward


def theorem6_rest_mean(
    reward_gold: np.ndarray, likely: int, rare: int, v0: float, big_t: float, c: float
) -> tuple[np.ndarray, float, float]:
    """(the other outputs, their mass 1 - c - T^{-2}, the mean of r_G they must have for
    E_pi[r_G] = v0) in Theorem 6's family; ValueError when no policy of the family meets v0
    (the needed mean must lie strictly between their smallest and largest r_G)."""
    rest = np.setdiff1d(np.arange(reward_gold.size), [likely, rare])
    mass_rest = 1 - c - big_t**-2
    if mass_rest <= 0 or rest.size == 0:
        raise ValueError(f"no mass left for the other outputs (c={c}, T={big_t})")
    needed = (v0 - c * reward_gold[likely] - big_t**-2 * reward_gold[rare]) / mass_rest
    r_rest = reward_gold[rest]
    if not r_rest.min() < needed < r_rest.max():
        raise ValueError(
            f"v0={v0} is not reachable: the other outputs must average {needed:.3f}, outside "
            f"({r_rest.min():.3f}, {r_rest.max():.3f}); lower c or change v0"
        )
    return rest, mass_rest, needed


def theorem6_policy(
    reward_gold: np.ndarray, likely: int, rare: int, v0: float, big_t: float, c: float
) -> np.ndarray:
    """A policy in Theorem 6's family: pi(rare) = T^{-2}, pi(likely) = c and E_pi[r_G] = v0.

    The remaining mass 1 - c - T^{-2} is spread over the other outputs as an exponential tilt
    pi(y) ∝ exp(beta r_G(y)), with beta found by root finding so the mean is exactly v0.
    """
    from scipy.optimize import brentq  # here, not at the top: `rmteacher check` stays light

    rest, mass_rest, needed = theorem6_rest_mean(reward_gold, likely, rare, v0, big_t, c)
    r_rest = reward_gold[rest]

    def tilted_mean(beta: float) -> float:
        w = np.exp(beta * (r_rest - r_rest.max()))
        return float(np.sum(w * r_rest) / w.sum()) - needed

    beta = brentq(tilted_mean, -200.0, 200.0, xtol=1e-14)
    w = np.exp(beta * (r_rest - r_rest.max()))
    pi = np.empty(reward_gold.size)
    pi[rest] = mass_rest * w / w.sum()
    pi[likely], pi[rare] = c, big_t**-2
    return pi


def random_policy(n_outputs: int, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """softmax(temperature * standard normal logits)."""
    logits = temperature * rng.standard_normal(n_outputs)
    weights = np.exp(logits - logits.max())
    return weights / weights.sum()
