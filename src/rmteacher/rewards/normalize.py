"""Reward normalisation with constants fixed from the initial policy (paper App. F.1, code 7.2):
r_norm = (r - mu) / sigma with the global mean mu and unbiased std sigma of one RM's rewards on
prompts x samples from the initial policy."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Normalization:
    """The affine map r -> (r - mean) * scale, with scale = 1 / sqrt(var + eps)."""

    mean: float
    scale: float

    @classmethod
    def from_rewards(cls, rewards: np.ndarray, eps: float = 1e-8) -> Normalization:
        """Global statistics over every entry of an initial-policy reward matrix [P, n]."""
        rewards = np.asarray(rewards, dtype=np.float64)
        if rewards.size < 2:
            raise ValueError("normalisation needs at least two rewards")
        return cls(float(rewards.mean()), float(1.0 / np.sqrt(rewards.var(ddof=1) + eps)))

    @classmethod
    def from_per_prompt_variance(cls, rewards: np.ndarray, eps: float = 1e-8) -> Normalization:
        """Appendix E.1's alternative: divide by sqrt of the mean per-prompt (unbiased) variance."""
        rewards = np.asarray(rewards, dtype=np.float64)
        if rewards.ndim != 2 or rewards.shape[1] < 2:
            raise ValueError("per-prompt normalisation needs a [prompts, samples>=2] matrix")
        mean_var = rewards.var(axis=1, ddof=1).mean()
        return cls(float(rewards.mean()), float(1.0 / np.sqrt(mean_var + eps)))

    def __call__(self, rewards):
        return (np.asarray(rewards, dtype=np.float64) - self.mean) * self.scale

    def to_dict(self) -> dict:
        return asdict(self)
