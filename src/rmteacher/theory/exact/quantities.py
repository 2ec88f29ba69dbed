"""Exact reward statistics under a policy: expectation, variance (Definition 2), accuracy
(Definition 1) and Best-of-N (Proposition 1).

Arrays follow one convention: `pi` and rewards have shape [|S|, |Y|] (one row per prompt) or
[|Y|] for a single prompt.
"""

from __future__ import annotations

import numpy as np


def expected_reward(pi: np.ndarray, reward: np.ndarray) -> np.ndarray:
    """E_{y~pi(.|x)} r(x, y) for every prompt (shape [|S|], or a scalar for 1-D input)."""
    return np.sum(pi * reward, axis=-1)


def reward_variance(pi: np.ndarray, reward: np.ndarray) -> np.ndarray:
    """Definition 2, first form: E_pi (r - E_pi r)^2, per prompt."""
    mean = expected_reward(pi, reward)
    return np.sum(pi * (reward - mean[..., None]) ** 2, axis=-1)


def reward_variance_pairwise(pi: np.ndarray, reward: np.ndarray) -> np.ndarray:
    """Definition 2, second form: 1/2 E_{y,y' iid pi} (r(y) - r(y'))^2, per prompt."""
    diff = reward[..., :, None] - reward[..., None, :]
    weights = pi[..., :, None] * pi[..., None, :]
    return 0.5 * np.sum(weights * diff**2, axis=(-2, -1))


def kl_divergence(pi: np.ndarray, pi_ref: np.ndarray) -> np.ndarray:
    """KL(pi(.|x) || pi_ref(.|x)) per prompt, with 0 log 0 = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(pi > 0, pi * (np.log(pi) - np.log(pi_ref)), 0.0)
    return np.sum(terms, axis=-1)


def pair_signs_agree(reward_rm: np.ndarray, reward_gold: np.ndarray) -> np.ndarray:
    """Matrix A[y, y'] = 1[sign(r_RM(y) - r_RM(y')) == sign(r_G(y) - r_G(y'))], sign(0) = 0."""
    rm = np.sign(reward_rm[:, None] - reward_rm[None, :])
    gold = np.sign(reward_gold[:, None] - reward_gold[None, :])
    return (rm == gold).astype(float)


def accuracy(
    reward_rm: np.ndarray, reward_gold: np.ndarray, pair_weights: np.ndarray | None = None
) -> float:
    """Definition 1 for one prompt: acc_{x,D}(r_RM).

    D is uniform over the |Y|(|Y|-1)/2 unordered pairs of distinct outputs unless
    `pair_weights` ([|Y|, |Y|], non-negative) is given; only its strict upper triangle is read,
    entry (y, y') with y < y' being the (unnormalized) probability of the pair {y, y'}.
    A pair tied under r_G counts as correct only if r_RM ties too.
    """
    reward_rm = np.asarray(reward_rm, dtype=float)
    reward_gold = np.asarray(reward_gold, dtype=float)
    if reward_rm.shape != reward_gold.shape or reward_rm.ndim != 1:
        raise ValueError(
            f"accuracy needs two reward vectors of equal length, got {reward_rm.shape} "
            f"and {reward_gold.shape}"
        )
    if reward_rm.size < 2:
        raise ValueError("accuracy needs at least two outputs")
    agree = pair_signs_agree(reward_rm, reward_gold)
    upper = np.triu(np.ones_like(agree), k=1)
    if pair_weights is None:
        weights = upper
    else:
        weights = np.asarray(pair_weights, dtype=float) * upper
        if np.any(weights < 0) or weights.sum() <= 0:
            raise ValueError(
                "pair_weights must be non-negative with positive mass above the diagonal"
            )
    return float(np.sum(weights * agree) / np.sum(weights))


def best_of_n_expected_reward(
    pi: np.ndarray, reward_rm: np.ndarray, reward_gold: np.ndarray, n: int
) -> float:
    """Exact E[r_G(y*)] where y* maximizes r_RM among n iid samples from pi (one prompt).

    Ties in r_RM among the maximizing samples are broken uniformly at random, so given that the
    maximum falls on RM level k, the chosen output is distributed as pi restricted to that level.
    With F_k the pi-mass of levels <= k: P(max level = k) = F_k^n - F_{k-1}^n.
    """
    if n < 1:
        raise ValueError(f"Best-of-N needs n >= 1, got {n}")
    levels, level_of = np.unique(np.asarray(reward_rm, dtype=float), return_inverse=True)
    mass = np.bincount(level_of, weights=pi, minlength=levels.size)
    gold_mass = np.bincount(level_of, weights=pi * reward_gold, minlength=levels.size)
    cdf = np.clip(np.cumsum(mass), 0.0, 1.0)
    prob_max = cdf**n - np.concatenate([[0.0], cdf[:-1]]) ** n
    with np.errstate(invalid="ignore", divide="ignore"):
        gold_given_level = np.where(mass > 0, gold_mass / np.where(mass > 0, mass, 1.0), 0.0)
    return float(np.sum(prob_max * gold_given_level))


MC_CHUNK_CELLS = 2**22  # trials x n drawn at once: memory stays bounded for any n_trials


def best_of_n_monte_carlo(
    pi: np.ndarray,
    reward_rm: np.ndarray,
    reward_gold: np.ndarray,
    n: int,
    n_trials: int,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """Monte Carlo estimate of Best-of-N E[r_G] with its standard error (uniform tie-breaking).
    Trials are drawn in chunks of at most MC_CHUNK_CELLS / n (one chunk, the same draws, when
    they fit), their means and squared deviations combined exactly (Chan et al.)."""
    per_chunk = max(1, MC_CHUNK_CELLS // n)
    count, mean, m2 = 0, 0.0, 0.0
    for start in range(0, n_trials, per_chunk):
        values = _best_of_n_draws(
            pi, reward_rm, reward_gold, n, min(per_chunk, n_trials - start), rng
        )
        size, chunk_mean = values.size, float(values.mean())
        chunk_m2 = float(((values - chunk_mean) ** 2).sum())
        delta = chunk_mean - mean
        total = count + size
        mean += delta * size / total
        m2 += chunk_m2 + delta**2 * count * size / total
        count = total
    if count == n_trials <= per_chunk:  # a single chunk: exactly numpy's mean and std
        return float(values.mean()), float(values.std(ddof=1) / np.sqrt(n_trials))
    return mean, float(np.sqrt(m2 / (count - 1)) / np.sqrt(count))


def _best_of_n_draws(pi, reward_rm, reward_gold, n: int, n_trials: int, rng) -> np.ndarray:
    """r_G of the RM's choice among n samples of pi, for n_trials independent trials."""
    samples = rng.choice(pi.size, size=(n_trials, n), p=pi)
    rm_values = reward_rm[samples] + 0.0
    best = rm_values.max(axis=1, keepdims=True)
    is_best = rm_values == best
    # Uniform tie-breaking: random keys, keep the largest key among the maximizers.
    keys = np.where(is_best, rng.random(samples.shape), -1.0)
    chosen = samples[np.arange(n_trials), keys.argmax(axis=1)]
    return reward_gold[chosen]
