"""Theorem 6's construction (paper Theorem 3, general form): a ground truth r_G whose two best
outputs y_gamma and y'_gamma are targets, two families of policies with E_pi[r_G] = V_0 that
favour one target each, and the two indicator RMs, one per target, so that each RM is the better
teacher of one family."""

from __future__ import annotations

import numpy as np

from rmteacher.theory.exact import constructions

POLICIES = ("pi in Pi (likes y_gamma)", "pi' in Pi' (likes y'_gamma)")
RMS = ("r: +1 on y_gamma", "r': +1 on y'_gamma")


def ground_truth(p) -> tuple[np.ndarray, tuple[int, int]]:
    """r_G and the targets (y_gamma, y'_gamma) = its two best outputs; ValueError unless both
    lie more than gamma above V_0."""
    rng = np.random.default_rng(p.seed)
    gold = rng.uniform(-1, 1, p.n_outputs)
    best, second = (int(i) for i in np.argsort(gold)[::-1][:2])
    if gold[second] <= p.v0 + p.gamma:
        raise ValueError(
            f"v0 + gamma = {p.v0 + p.gamma:.3f} must be below the second-best r_G "
            f"({gold[second]:.3f}); lower v0 or gamma"
        )
    return gold, (best, second)


def check_v0_reachable(p, big_t: float) -> None:
    """ValueError unless both policies of Theorem 6's families can have E_pi[r_G] = v0 at this
    T (the condition `build` needs; no root finding)."""
    gold, (best, second) = ground_truth(p)
    constructions.theorem6_rest_mean(gold, best, second, p.v0, big_t, p.c)
    constructions.theorem6_rest_mean(gold, second, best, p.v0, big_t, p.c)


def build(p, big_t: float):
    """r_G, the targets, one policy of each family at this T, and the two RMs. ValueError if
    E_pi[r_G] = v0 cannot be met (theorem6_policy's message says why)."""
    gold, (best, second) = ground_truth(p)
    policies = {
        POLICIES[0]: constructions.theorem6_policy(gold, best, second, p.v0, big_t, p.c),
        POLICIES[1]: constructions.theorem6_policy(gold, second, best, p.v0, big_t, p.c),
    }
    rms = {
        RMS[0]: constructions.indicator_rm(p.n_outputs, best),
        RMS[1]: constructions.indicator_rm(p.n_outputs, second),
    }
    return gold, (best, second), policies, rms
