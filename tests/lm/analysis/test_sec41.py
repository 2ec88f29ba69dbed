"""Table 2's definitions: correlations over the RMs of the mean (over seeds) increase with each
property, the combined measures, r_G's exclusion, the bootstrap (RMs and seeds, or seeds alone)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from rmteacher.lm.analysis.sec41 import (
    PROPERTY_LABELS,
    bootstrap_correlations,
    correlation_table,
    increases_at,
    rm_properties,
)
from rmteacher.lm.pg.sweep import increases
from rmteacher.paper import TABLE1

RMS = [
    "rm_onpolicy_100",
    "rm_onpolicy_75",
    "rm_onpolicy_50",
    "rm_onpolicy_25",
    "rm_onpolicy_0",
    "perfect",
]
PAPER_TABLE1 = pd.DataFrame(
    [(rm, *TABLE1[rm]) for rm in RMS],
    columns=["rm", "reward_variance", "onpolicy_accuracy", "offpolicy_accuracy"],
)
# an arbitrary ranking of the RMs' increases (6 = largest)
PROXY_RANK = dict(zip(RMS, [6, 5, 4, 3, 2, 1], strict=True))
GOLD_RANK = dict(zip(RMS, [4, 5, 6, 3, 1, 2], strict=True))


def _increase_frame(seeds=1):
    return pd.DataFrame(
        [
            {
                "rm": rm,
                "seed": s,
                "epoch": 1.0,
                "proxy_increase": PROXY_RANK[rm] + 0.01 * s,
                "gold_increase": GOLD_RANK[rm] + 0.01 * s,
            }
            for rm in RMS
            for s in range(seeds)
        ]
    )


def test_correlations_are_over_the_seed_means_of_each_rm():
    """Each cell is the Pearson / Spearman correlation, over RMs, between the property and the
    RM's increase averaged over its seeds; an implementation that pooled the runs, dropped seeds
    or mixed up the proxy and r_G columns would not match."""
    rng = np.random.default_rng(0)
    props = rm_properties(PAPER_TABLE1)
    runs = pd.DataFrame(
        [
            {
                "rm": rm,
                "seed": seed,
                "epoch": 1.0,
                "proxy_increase": rng.normal(PROXY_RANK[rm], 1.0),
                "gold_increase": rng.normal(-GOLD_RANK[rm], 3.0),
            }
            for rm in RMS
            for seed in range(4)
        ]
    )
    corr = correlation_table(props, runs)
    means = runs.groupby("rm")[["proxy_increase", "gold_increase"]].mean().loc[RMS]
    for prop in [p for p in PROPERTY_LABELS if p in props]:
        x = props.loc[RMS, prop]
        for target in ("proxy", "gold"):
            y = means[f"{target}_increase"]
            assert corr.loc[prop, f"{target}_pearson"] == pytest.approx(stats.pearsonr(x, y)[0])
            assert corr.loc[prop, f"{target}_spearman"] == pytest.approx(stats.spearmanr(x, y)[0])


def test_spearman_sees_only_the_ranking_of_the_increases():
    props = rm_properties(PAPER_TABLE1)
    runs = _increase_frame()
    stretched = runs.assign(gold_increase=np.exp(3 * runs.gold_increase))
    base, warped = correlation_table(props, runs), correlation_table(props, stretched)
    assert np.allclose(base.gold_spearman, warped.gold_spearman)
    assert not np.allclose(base.gold_pearson, warped.gold_pearson)
    reversed_runs = runs.assign(gold_increase=-runs.gold_increase)
    flipped = correlation_table(props, reversed_runs)
    assert np.allclose(flipped.gold_spearman, -base.gold_spearman)


def test_combined_measures_are_simple_means():
    props = rm_properties(PAPER_TABLE1)
    row = props.loc["rm_onpolicy_50"]
    assert row.accuracy_mean == pytest.approx((0.640 + 0.758) / 2)
    assert row.variance_and_accuracy == pytest.approx((0.555 + (0.640 + 0.758) / 2) / 2)


def test_gold_run_is_excluded_from_correlations():
    inc = pd.concat(
        [
            _increase_frame(),
            pd.DataFrame(
                [
                    {
                        "rm": "gold",
                        "seed": 0,
                        "epoch": 1.0,
                        "proxy_increase": -50.0,
                        "gold_increase": 99.0,
                    }
                ]
            ),
        ]
    )
    table = pd.concat(
        [
            PAPER_TABLE1,
            pd.DataFrame(
                [
                    {
                        "rm": "gold",
                        "reward_variance": 0.256,
                        "onpolicy_accuracy": 1.0,
                        "offpolicy_accuracy": 1.0,
                    }
                ]
            ),
        ]
    )
    with_gold = correlation_table(rm_properties(table), inc)
    without = correlation_table(rm_properties(PAPER_TABLE1), _increase_frame())
    pd.testing.assert_frame_equal(with_gold, without)


def test_bootstrap_spread_is_zero_without_seed_noise_and_positive_with_it():
    """Seeds alone (the rule before issue 17): no seed noise, no spread. The default two-level
    bootstrap also redraws the RMs, so a correlation over a handful of RMs has spread even
    without seed noise (the change of issue 17: intervals over what varies)."""
    props = rm_properties(PAPER_TABLE1)
    same = _increase_frame(seeds=3).assign(proxy_increase=lambda f: f.rm.map(PROXY_RANK) * 1.0)
    boot = bootstrap_correlations(props, same, n_boot=20, seed=0, resample_rms=False)
    assert np.allclose(boot["proxy_pearson_std"], 0.0)
    two_level = bootstrap_correlations(props, same, n_boot=50, seed=0)
    assert (two_level["proxy_pearson_std"] > 0).any()
    noisy = _increase_frame(seeds=3)
    noisy["gold_increase"] += np.random.default_rng(0).normal(0, 2.0, len(noisy))
    boot = bootstrap_correlations(props, noisy, n_boot=50, seed=0, resample_rms=False)
    assert (boot["gold_pearson_std"] > 0).all()


def test_increases_are_relative_to_each_runs_start():
    curves = pd.DataFrame(
        [
            {
                "rm": rm,
                "seed": 0,
                "step": step,
                "epoch": step / 2,
                "proxy": p0 + step * slope,
                "gold": g0 + step * gslope,
                "kl": 0.1 * step,
            }
            for rm, p0, g0, slope, gslope in [
                ("perfect", 1.0, 0.5, 0.01, 0.01),
                ("rm_onpolicy_100", -1.0, 0.0, 0.5, 0.3),
                ("gold", 0.0, 0.0, 0.2, 0.2),
            ]
            for step in (0, 2, 4)
        ]
    )
    inc = increases(curves)
    assert inc[inc.step == 0][["proxy_increase", "gold_increase"]].abs().max().max() == 0
    at = increases_at(inc, 1.0)
    assert set(at.epoch) == {1.0}
    assert at.set_index("rm").loc["rm_onpolicy_100", "gold_increase"] == pytest.approx(0.6)
