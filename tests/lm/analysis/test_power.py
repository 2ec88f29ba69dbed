"""The power calculation recovers the noise it is given and answers the questions it is asked:
seed noise and lack of fit are estimated from runs, the simulated interval width of the variance
coefficient matches least-squares theory and narrows with seeds and with a wider variance axis,
and the two-cell seed count is the textbook one."""

import numpy as np
import pandas as pd
import pytest

from rmteacher.lm.analysis.power import (
    NoiseComponents,
    noise_components,
    seeds_for_difference,
    seeds_for_width,
    surface_width,
)


def members(variances, accuracies=(1.0, 0.85, 0.75, 0.65)):
    rows = [
        {"rm": f"m{i}_{j}", "reward_variance": v, "onpolicy_accuracy": a}
        for i, v in enumerate(variances)
        for j, a in enumerate(accuracies)
    ]
    return pd.DataFrame(rows)


def synthetic_runs(design, coef, sigma, tau, n_seeds, seed):
    rng = np.random.default_rng(seed)
    mean = coef[0] + coef[1] * design.reward_variance + coef[2] * design.onpolicy_accuracy
    offset = rng.normal(0, tau, len(design))
    rows = [
        {**row._asdict(), "seed": s, "gold_increase": m + u + rng.normal(0, sigma)}
        for row, m, u in zip(design.itertuples(index=False), mean, offset, strict=True)
        for s in range(n_seeds)
    ]
    return pd.DataFrame(rows)


def test_noise_components_recovers_seed_noise_and_lack_of_fit():
    design = members(np.linspace(0.05, 0.6, 10))
    runs = synthetic_runs(design, (0.0, 0.3, 0.2), sigma=0.04, tau=0.02, n_seeds=40, seed=1)
    found = noise_components(runs)
    assert found.sigma == pytest.approx(0.04, rel=0.05)
    assert found.tau == pytest.approx(0.02, rel=0.25)
    assert found.coefficients[1] == pytest.approx(0.3, abs=0.05)
    assert (found.n_members, found.n_runs) == (40, 1600)


def test_noise_components_needs_replicated_members():
    design = members([0.1, 0.2])
    with pytest.raises(ValueError, match=">= 4 members with >= 2 seeds"):
        noise_components(synthetic_runs(design, (0, 0, 0), 0.1, 0.0, 1, 0))


def test_simulated_width_matches_least_squares_theory_without_lack_of_fit():
    """With tau = 0, least squares gives b_v a standard error sigma / sqrt(n_runs *
    Var(variance)) in a balanced (orthogonal) design. The verdict's two-level bootstrap counts the
    seed noise twice - once in the resampled members' means, once more by resampling seeds
    within them - so its interval is sqrt(2) times the least-squares one, and the power
    calculation, which simulates that rule, must show it."""
    design = members([0.05, 0.2, 0.4, 0.6])
    noise = NoiseComponents((0.0, 0.3, 0.2), sigma=0.04, tau=0.0, n_members=0, n_runs=0)
    n = 10
    widths = surface_width(design, noise, n, n_sim=40, n_boot=300, seed=0)
    spread = design.reward_variance.var(ddof=0)
    expected = np.sqrt(2) * 2 * 1.96 * 0.04 / np.sqrt(len(design) * n * spread)
    assert np.median(widths) == pytest.approx(expected, rel=0.15)


def test_width_narrows_with_seeds_and_with_a_wider_axis():
    noise = NoiseComponents((0.0, 0.3, 0.2), sigma=0.04, tau=0.01, n_members=0, n_runs=0)
    narrow = members([0.11, 0.15, 0.24])
    wide = members([0.03, 0.11, 0.24, 0.6])
    kw = {"n_sim": 30, "n_boot": 200, "seed": 0}
    assert np.median(surface_width(narrow, noise, 10, **kw)) < np.median(
        surface_width(narrow, noise, 3, **kw)
    )
    assert np.median(surface_width(wide, noise, 3, **kw)) < 0.5 * np.median(
        surface_width(narrow, noise, 3, **kw)
    )
    table = seeds_for_width(wide, noise, 0.3, candidates=(2, 5), **kw)
    assert list(table.seeds) == [2, 5]
    assert table.width_q.is_monotonic_decreasing
    assert table.narrow_enough.iloc[-1]


def test_seeds_for_difference_is_the_textbook_two_sample_count():
    # 2 * (1.96 + 0.8416)^2 = 15.7 -> 16 seeds per cell for a one-sd difference
    assert seeds_for_difference(1.0, 1.0) == 16
    assert seeds_for_difference(0.04, 0.02) == 63
    with pytest.raises(ValueError):
        seeds_for_difference(0.0, 0.1)
