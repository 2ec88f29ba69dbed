"""Reward-model properties measured on samples, as the paper defines them.

* Accuracy (Definition 1): the fraction of response pairs on which sign(r_RM(y) - r_RM(y')) equals
  sign(r_G(y) - r_G(y')), ties included (a pair tied under r_G counts only if the RM ties too).
  On-policy: all n(n-1)/2 pairs of a prompt's n samples, averaged over pairs, then prompts.
* Reward variance (Definition 2, as measured in Section 4.1): the per-prompt unbiased variance of
  globally normalised rewards, averaged over prompts.
"""

from __future__ import annotations

import numpy as np
from scipy import stats  # here, not at import: every policy-gradient unit imports this module


def _pair_signs(rewards: np.ndarray) -> np.ndarray:
    rewards = np.asarray(rewards, dtype=np.float64)
    i, j = np.triu_indices(rewards.shape[1], k=1)
    return np.sign(rewards[:, i] - rewards[:, j])


def _check(rm: np.ndarray, gold: np.ndarray) -> None:
    if rm.shape != gold.shape or rm.ndim != 2 or rm.shape[1] < 2 or rm.shape[0] == 0:
        raise ValueError(
            f"expected two equal [prompts, samples>=2] matrices, got {rm.shape} and {gold.shape}"
        )


def per_prompt_accuracy(rm: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Definition 1 with the tie rule, uniform over the sample pairs of each prompt: [P]."""
    rm, gold = np.asarray(rm), np.asarray(gold)
    _check(rm, gold)
    return (_pair_signs(rm) == _pair_signs(gold)).mean(axis=1)


def accuracy(rm: np.ndarray, gold: np.ndarray) -> float:
    """Mean over prompts of per_prompt_accuracy; for [M, 2] pair matrices, the pair accuracy."""
    return float(per_prompt_accuracy(rm, gold).mean())


def untied_accuracy(rm: np.ndarray, gold: np.ndarray) -> float:
    """Sign agreement over the pairs that r_G does not tie (pooled over prompts); NaN if none."""
    rm, gold = np.asarray(rm), np.asarray(gold)
    _check(rm, gold)
    g, r = _pair_signs(gold), _pair_signs(rm)
    untied = g != 0
    return float((g[untied] == r[untied]).mean()) if untied.any() else float("nan")


def gold_tie_fraction(gold: np.ndarray) -> float:
    """Fraction of sample pairs that the ground truth ties."""
    return float((_pair_signs(gold) == 0).mean())


def reward_variance(normalized: np.ndarray) -> float:
    """Mean over prompts of the unbiased per-prompt variance of normalised rewards [P, n]."""
    normalized = np.asarray(normalized, dtype=np.float64)
    if normalized.ndim != 2 or normalized.shape[1] < 2:
        raise ValueError("reward variance needs a [prompts, samples>=2] matrix")
    return float(normalized.var(axis=1, ddof=1).mean())


def correlation(x, y) -> tuple[float, float]:
    """(Pearson, Spearman); NaN when either input is constant."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) != len(y) or len(x) < 3:
        raise ValueError("correlation needs two sequences of the same length >= 3")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")

    return float(stats.pearsonr(x, y)[0]), float(stats.spearmanr(x, y)[0])


def onpolicy_properties(
    raw: np.ndarray, normalized: np.ndarray, gold: np.ndarray | None = None
) -> dict[str, float]:
    """One RM's Table 1 entries on one policy's samples (raw and normalised [P, n] rewards):
    reward variance, on-policy accuracy against r_G with and without r_G ties (NaN without a
    gold matrix), and the raw mean, std and mean per-prompt variance."""
    raw = np.asarray(raw, dtype=np.float64)
    nan = float("nan")
    return {
        "reward_variance": reward_variance(normalized),
        "onpolicy_accuracy": nan if gold is None else accuracy(raw, gold),
        "onpolicy_accuracy_untied": nan if gold is None else untied_accuracy(raw, gold),
        "raw_mean": float(raw.mean()),
        "raw_std": float(raw.std(ddof=1)),
        "raw_per_prompt_variance": float(raw.var(axis=1, ddof=1).mean()),
    }
