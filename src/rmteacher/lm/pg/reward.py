"""The reward a policy-gradient run optimises: an RM's score normalised with constants fixed from
the initial policy's samples, optionally multiplied by a uniform scale.
"""

from __future__ import annotations

import numpy as np

from rmteacher.rewards.normalize import Normalization


class NormalizedReward:
    """z = c * (r(x, y) - mu) * s, with mu and s fixed from initial-policy samples (paper App.
    F.1) and a uniform scale c (1 in the paper's runs); a non-finite reward stops the run."""

    def __init__(self, reward, norm: Normalization, name: str, scale: float = 1.0):
        self.reward, self.norm, self.name, self.scale = reward, norm, name, scale

    def __call__(self, prompts, responses) -> np.ndarray:
        raw = np.asarray(self.reward(list(prompts), list(responses)), dtype=np.float64)
        if not np.all(np.isfinite(raw)):
            raise FloatingPointError(f"{self.name}: non-finite reward during policy gradient")
        return self.scale * self.norm(raw)
