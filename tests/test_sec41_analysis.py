"""Table 2's definitions: the paper's own Table 1 and (derived) increase rankings must give back
the paper's Spearman column for every property."""

import numpy as np
import pandas as pd
import pytest

from rmteacher.lm.analysis import (
    PAPER_TABLE2,
    bootstrap_correlations,
    correlation_table,
    increases_at,
    rm_properties,
    verdicts,
)
from rmteacher.lm.pg_sweep import increases

RMS = [
    "rm_onpolicy_100",
    "rm_onpolicy_75",
    "rm_onpolicy_50",
    "rm_onpolicy_25",
    "rm_onpolicy_0",
    "perfect",
]
PAPER_TABLE1 = pd.DataFrame(
    {
        "rm": RMS,
        "reward_variance": [0.630, 0.616, 0.555, 0.438, 0.314, 0.111],
        "onpolicy_accuracy": [0.660, 0.656, 0.640, 0.616, 0.587, 1.0],
        "offpolicy_accuracy": [0.630, 0.732, 0.758, 0.754, 0.762, 1.0],
    }
)
# rank of each RM's increase (6 = largest), from paper-digest section 4.1
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


def test_paper_spearman_values_are_reproduced_from_table1():
    corr = correlation_table(rm_properties(PAPER_TABLE1), _increase_frame())
    for prop, (_, proxy_s, _, gold_s) in PAPER_TABLE2.items():
        assert corr.loc[prop, "proxy_spearman"] == pytest.approx(proxy_s, abs=1e-3), prop
        assert corr.loc[prop, "gold_spearman"] == pytest.approx(gold_s, abs=1e-3), prop


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
    props = rm_properties(PAPER_TABLE1)
    same = _increase_frame(seeds=3).assign(proxy_increase=lambda f: f.rm.map(PROXY_RANK) * 1.0)
    boot = bootstrap_correlations(props, same, n_boot=20, seed=0)
    assert np.allclose(boot["proxy_pearson_std"], 0.0)
    noisy = _increase_frame(seeds=3)
    noisy["gold_increase"] += np.random.default_rng(0).normal(0, 2.0, len(noisy))
    boot = bootstrap_correlations(props, noisy, n_boot=50, seed=0)
    assert (boot["gold_pearson_std"] > 0).all()


def test_increases_are_relative_to_each_runs_start_and_verdicts_read_them():
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
    corr = pd.DataFrame(
        0.0,
        index=list(PAPER_TABLE2),
        columns=["proxy_pearson", "proxy_spearman", "gold_pearson", "gold_spearman"],
    )
    verdict = verdicts(corr, at, at)
    assert verdict["claim_perfect_rm_teaches_slowest"] is True
    assert verdict["claim_proxy_beats_gold_early"] is True
