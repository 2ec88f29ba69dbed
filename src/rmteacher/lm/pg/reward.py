"""The reward a policy-gradient run optimises: an RM's score normalised with constants fixed from
the initial policy's samples, optionally multiplied by a uniform scale.
"""

from __future__ import annotations

import numpy as np

from rmteacher.rewards.normalize import Normalization
from rmteacher.rewards.registry import RewardError


class NormalizedReward:
    """z = c * (r(x, y) - mu) * s, with mu and s fixed from initial-policy samples (paper App.
    F.1) and a uniform scale c (1 in the paper's runs); a non-finite reward stops the run."""

    def __init__(self, reward, norm: Normalization, name: str, scale: float = 1.0):
        self.reward, self.norm, self.name, self.scale = reward, norm, name, scale

    def __call__(self, prompts, responses) -> np.ndarray:
        return self.from_raw(self.reward(list(prompts), list(responses)))

    def from_raw(self, raw) -> np.ndarray:
        """z from the RM's raw scores of a batch (scored elsewhere, e.g. with other runs')."""
        raw = np.asarray(raw, dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(raw))
        if bad.size:
            raise RewardError(
                f"reward '{self.name}' returned {raw[bad[0]]} (non-finite) at prompt index "
                f"{bad[0]} of the batch during policy gradient"
            )
        return self.scale * self.norm(raw)
