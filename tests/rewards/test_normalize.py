"""Normalisations fixed from initial-policy samples: the paper's global one and Appendix E.1's."""

import numpy as np
import pytest

from rmteacher.metrics.rm_metrics import reward_variance
from rmteacher.rewards.normalize import Normalization


def test_per_prompt_normalization_sets_mean_within_prompt_variance_to_one():
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(50, 1)) * 5 + rng.normal(size=(50, 8)) * 0.3
    norm = Normalization.from_per_prompt_variance(raw)
    assert reward_variance(norm(raw)) == pytest.approx(1.0, rel=1e-6)
