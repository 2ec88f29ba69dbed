"""Section 4.1's statistics behind the claims: the family's surface fit, the increase at matched
KL, the epoch reading and the clipping ablation. The verdict rules themselves (seed-paired
intervals, 'slower than all', 'some beats' with Holm, interval verdicts) moved to
`rmteacher.verdicts` with issue 17 and are tested in tests/verdicts/test_paired.py."""

import numpy as np
import pandas as pd
import pytest

from rmteacher.lm.analysis import sec41


def test_surface_fit_recovers_a_known_plane():
    rng = np.random.default_rng(1)
    rows = []
    for i, (variance, accuracy) in enumerate(
        [(v, a) for v in (0.05, 0.1, 0.2, 0.3) for a in (0.6, 0.8, 1.0)]
    ):
        for s in range(3):
            rows.append(
                {
                    "rm": f"r{i}",
                    "seed": s,
                    "reward_variance": variance,
                    "onpolicy_accuracy": accuracy,
                    "gold_increase": 0.1 + 2.0 * variance + 0.5 * accuracy + rng.normal(0, 0.01),
                }
            )
    fit = sec41.surface_fit(pd.DataFrame(rows), n_boot=200, seed=0)
    assert fit["surface_variance"] == pytest.approx(2.0, abs=0.1)
    assert fit["surface_accuracy"] == pytest.approx(0.5, abs=0.05)
    assert fit["surface_variance_low"] > 1.5 and fit["surface_r2"] > 0.95


def test_increase_at_matched_kl_interpolates_along_the_kl_path():
    curves = pd.DataFrame(
        {
            "rm": "a",
            "variant": "main",
            "seed": 0,
            "step": [0, 1, 2],
            "kl": [0.0, 1.0, 3.0],
            "gold_increase": [0.0, 0.2, 0.6],
        }
    )
    assert sec41.at_matched_kl(curves, 2.0).gold_at_kl.item() == pytest.approx(0.4)
    assert np.isnan(sec41.at_matched_kl(curves, 5.0).gold_at_kl.item())


def test_increases_are_read_at_each_runs_point_nearest_the_epoch():
    curves = pd.DataFrame(
        {
            "rm": ["a"] * 3 + ["b"] * 2,
            "seed": 0,
            "epoch": [0, 0.5, 1.0, 0, 0.75],
            "proxy_increase": [0, 1, 2, 0, 5],
            "gold_increase": [0, 1, 2, 0, 5],
        }
    )
    at = sec41.increases_at(curves, 1.0).set_index("rm")
    assert at.loc["a", "epoch"] == 1.0 and at.loc["b", "epoch"] == 0.75


def test_clipping_ablation_pairs_seeds_and_counts_the_clipped_steps():
    from rmteacher.lm.analysis.sec41 import clipping_ablation

    rows = []
    for variant, gain in (("main", 0.2), ("noclip", 0.5)):
        for seed in (0, 1, 2):
            for epoch in (0.0, 1.0, 2.0):
                rows.append(
                    {
                        "rm": "perfect",
                        "variant": variant,
                        "seed": seed,
                        "epoch": epoch,
                        "step": int(epoch * 4),
                        "proxy_increase": 0.0,
                        "gold_increase": epoch * (gain + 0.01 * seed),
                    }
                )
    curves = pd.DataFrame(rows)
    # main runs: 4 steps per epoch, gradient norms 0.5, 2, 3, 0.1 then 9 (after epoch 1)
    logs = pd.DataFrame(
        {
            "rm": "perfect",
            "variant": "main",
            "step": [1, 2, 3, 4, 5],
            "grad_norm": [0.5, 2.0, 3.0, 0.1, 9.0],
        }
    )
    table = clipping_ablation(curves, logs, epoch=1.0, steps_per_epoch=4, max_grad_norm=1.0)
    row = table.set_index("rm").loc["perfect"]
    assert row.gold_increase_clipped == pytest.approx(0.21)
    assert row.gold_increase_unclipped == pytest.approx(0.51)
    # the paired differences are all exactly 0.3: a zero-width interval around it
    assert row.difference == pytest.approx(0.3)
    assert row.low == pytest.approx(0.3) and row.high == pytest.approx(0.3)
    assert row.seeds == 3
    assert row.clipped_step_share == pytest.approx(0.5)  # 2 of the first 4 steps exceed 1
    # without an ablation the table is empty but keeps its columns
    assert (
        list(clipping_ablation(curves[curves.variant == "main"], logs, 1.0, 4, 1.0).columns)[0]
        == "rm"
    )
