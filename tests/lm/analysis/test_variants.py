"""The reward-scaling summary: how much the increase moves between the extreme scales."""

import pandas as pd
import pytest

from rmteacher.lm.analysis.variants import scale_sensitivity


def test_scale_sensitivity_compares_the_extreme_scales():
    rows = []
    for optimizer, gains in (("adam", (0.30, 0.31, 0.29)), ("sgd", (0.01, 0.1, 0.9))):
        for scale, gain in zip((0.1, 1.0, 10.0), gains, strict=True):
            rows += [
                {
                    "optimizer": optimizer,
                    "scale": scale,
                    "step": 0,
                    "proxy_increase": 0.0,
                    "gold_increase": 0.0,
                },
                {
                    "optimizer": optimizer,
                    "scale": scale,
                    "step": 8,
                    "proxy_increase": gain,
                    "gold_increase": gain / 2,
                },
            ]
    effect = scale_sensitivity(pd.DataFrame(rows)).groupby("optimizer").scale_effect.first()
    assert effect["adam"] == pytest.approx(-0.01) and effect["sgd"] == pytest.approx(0.89)
