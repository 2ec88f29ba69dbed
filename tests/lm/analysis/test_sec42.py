"""Section 4.2 analyses on hand-made tables: the final increases, the best RM of each policy and
which property picks it, the variance effect per variant, the bootstrap of the best RM and the
tie fractions."""

import numpy as np
import pandas as pd
import pytest

from rmteacher.lm.analysis.sec42 import (
    best_rm_bootstrap,
    best_rm_summary,
    final_increases,
    policy_rm_table,
    rm_tie_fractions,
    variance_effect,
    with_combined_measure,
)


def curves_from(final: dict, variant="rloo", seeds=(0, 1)):
    """Curves with a start point (increase 0) and an end point per (policy, rm, seed)."""
    rows = []
    for (policy, rm), gains in final.items():
        for seed, gain in zip(seeds, gains, strict=True):
            for step, value in ((0, 0.0), (4, gain)):
                rows.append(
                    {
                        "policy": policy,
                        "variant": variant,
                        "rm": rm,
                        "seed": seed,
                        "step": step,
                        "gold_increase": value,
                        "proxy_increase": 2 * value,
                    }
                )
    return pd.DataFrame(rows)


PROPERTIES = pd.DataFrame(
    [
        # policy A: rm "b" has the most variance and the best combined measure and is best
        {
            "policy": "A",
            "rm": "a",
            "reward_variance": 0.2,
            "onpolicy_accuracy": 0.9,
            "onpolicy_accuracy_untied": 0.9,
            "teacher_score": 0.2,
            "offpolicy_accuracy": 0.9,
        },
        {
            "policy": "A",
            "rm": "b",
            "reward_variance": 0.9,
            "onpolicy_accuracy": 0.7,
            "onpolicy_accuracy_untied": 0.7,
            "teacher_score": 0.9,
            "offpolicy_accuracy": 0.7,
        },
        {
            "policy": "A",
            "rm": "c",
            "reward_variance": 0.5,
            "onpolicy_accuracy": 0.5,
            "onpolicy_accuracy_untied": 0.5,
            "teacher_score": 0.5,
            "offpolicy_accuracy": 0.5,
        },
        # policy B: the same RMs, but now "a" spreads its rewards most and is best
        {
            "policy": "B",
            "rm": "a",
            "reward_variance": 0.8,
            "onpolicy_accuracy": 0.9,
            "onpolicy_accuracy_untied": 0.9,
            "teacher_score": 0.8,
            "offpolicy_accuracy": 0.9,
        },
        {
            "policy": "B",
            "rm": "b",
            "reward_variance": 0.3,
            "onpolicy_accuracy": 0.7,
            "onpolicy_accuracy_untied": 0.7,
            "teacher_score": 0.3,
            "offpolicy_accuracy": 0.7,
        },
        {
            "policy": "B",
            "rm": "c",
            "reward_variance": 0.6,
            "onpolicy_accuracy": 0.5,
            "onpolicy_accuracy_untied": 0.5,
            "teacher_score": 0.6,
            "offpolicy_accuracy": 0.5,
        },
    ]
)
FINAL = {
    ("A", "a"): (0.10, 0.12),
    ("A", "b"): (0.30, 0.28),
    ("A", "c"): (0.20, 0.18),
    ("B", "a"): (0.40, 0.44),
    ("B", "b"): (0.05, 0.07),
    ("B", "c"): (0.20, 0.22),
}


def test_combined_measure_is_the_paper_average():
    out = with_combined_measure(PROPERTIES)
    assert out.variance_and_accuracy.iloc[0] == pytest.approx((0.2 + 0.9) / 2)


def test_final_increases_average_the_last_point_over_seeds():
    stats = final_increases(curves_from(FINAL)).set_index(["policy", "rm"])
    assert stats.loc[("A", "b"), "gold_increase_mean"] == pytest.approx(0.29)
    assert stats.loc[("A", "b"), "gold_increase_std"] == pytest.approx(np.std([0.3, 0.28], ddof=1))
    assert stats.loc[("A", "b"), "proxy_increase_mean"] == pytest.approx(0.58)


def test_best_rm_changes_with_the_policy_and_variance_picks_it():
    table = policy_rm_table(PROPERTIES, final_increases(curves_from(FINAL)))
    summary = best_rm_summary(table).set_index("policy")
    assert summary.loc["A", "best_rm"] == "b" and summary.loc["B", "best_rm"] == "a"
    assert summary.reward_variance_picks_best.all()
    assert not summary.onpolicy_accuracy_picks_best.loc["A"]  # "a" is most accurate on A
    assert summary.loc["A", "spearman_reward_variance"] == pytest.approx(1.0)


def test_variance_effect_per_variant():
    table = policy_rm_table(
        PROPERTIES,
        final_increases(
            pd.concat(
                [
                    curves_from(FINAL, "rloo"),
                    curves_from({k: (0.2, 0.2) for k in FINAL}, "grpo_group"),
                ]
            )
        ),
    )
    effect = variance_effect(table).set_index("variant")
    assert effect.loc["rloo", "variance_proxy_spearman"] > 0.8
    assert np.isnan(effect.loc["grpo_group", "variance_proxy_spearman"])  # constant increases


def test_best_rm_bootstrap_is_certain_when_seeds_agree():
    stability = best_rm_bootstrap(curves_from(FINAL), "rloo", n_boot=200, seed=0)
    best = stability.sort_values("best_fraction").groupby("policy").tail(1).set_index("policy")
    assert best.loc["A", "rm"] == "b" and best.loc["A", "best_fraction"] == 1.0
    assert stability.groupby("policy").best_fraction.sum().tolist() == [1.0, 1.0]


def test_rm_tie_fractions_count_equal_rewards_over_all_pairs_of_a_prompt(tmp_path):
    (tmp_path / "p").mkdir()
    # prompt 1: (y1, y2) tied, (y1, y3) and (y2, y3) not; prompt 2: all three pairs tied
    np.save(tmp_path / "p" / "rewards_lexicon.npy", np.array([[0.0, 0.0, 1.0], [2.0, 2.0, 2.0]]))
    np.save(tmp_path / "p" / "rewards_dense.npy", np.array([[0.1, 0.2, 0.3], [1.0, 2.0, 3.0]]))
    cells = pd.DataFrame({"policy": ["p", "p", "p"], "rm": ["lexicon", "dense", "dense"]})
    ties = rm_tie_fractions(cells, tmp_path).set_index("rm").rm_tie_fraction
    assert len(ties) == 2
    assert ties["lexicon"] == pytest.approx(4 / 6)
    assert ties["dense"] == 0.0


def flip_world(gap: float, seed: int = 0):
    """Two policies, three RMs on [P, n] samples with a shared between-prompt part: 'a' is
    sensitive to what policy p's samples differ in (wide within-prompt spread on p, narrow on
    q), 'b' the reverse, 'c' the same on both."""
    rng = np.random.default_rng(seed)
    prompts, n = 300, 8
    offset = rng.normal(0, 1, (prompts, 1))
    spread = {
        "p": {"a": 1 + gap, "b": 1 - gap, "c": 1.0},
        "q": {"a": 1 - gap, "b": 1 + gap, "c": 1},
    }
    return {
        policy: {rm: offset + s * rng.normal(0, 0.7, (prompts, n)) for rm, s in scales.items()}
        for policy, scales in spread.items()
    }


def test_ordering_flips_finds_the_constructed_flip_and_not_a_flip_within_noise():
    from rmteacher.lm.analysis.sec42 import ordering_flips

    strong = ordering_flips(flip_world(0.5), n_boot=100, seed=0)
    top = strong.iloc[0]
    assert {top.rm_a, top.rm_b} == {"a", "b"} and top.flip_strength > 5
    assert (top.difference_on_p > 0) and (top.difference_on_q < 0)
    a_over_b = strong[(strong.rm_a == "a") & (strong.rm_b == "b")].iloc[0]
    assert (a_over_b.policy_a_above, a_over_b.policy_a_below) == ("p", "q")
    weak = ordering_flips(flip_world(0.0), n_boot=100, seed=0)
    assert weak.empty or weak.flip_strength.max() < 2


def test_sec42_checks_are_named_rows_that_pass_and_fail_on_their_thresholds():
    from types import SimpleNamespace

    from rmteacher.lm.analysis.sec42 import ordering_flips, sec42_checks

    params = SimpleNamespace(check_flip_strength=2.0, check_gold_ties=0.05)
    table = pd.DataFrame(
        {
            "policy": ["p", "p", "q", "q"],
            "rm": ["a", "gold", "a", "gold"],
            "reward_variance": [0.6, 0.25, 0.3, 0.2],
            "variance_noise": [0.02, 0.01, 0.02, 0.01],
            "gold_tie_fraction": [0.0, 0.0, 0.1, 0.1],
        }
    )
    flips = ordering_flips(flip_world(0.5), n_boot=100, seed=0)
    checks = sec42_checks(table, flips, params).set_index("check")
    assert list(checks.index) == ["variance_differs", "ordering_flip", "gold_ties"]
    assert checks.loc["variance_differs", "value"] == pytest.approx(15.0)
    assert checks.loc["variance_differs", "passed"] and checks.loc["ordering_flip", "passed"]
    assert not checks.loc["gold_ties", "passed"]
    none = sec42_checks(table, flips.iloc[0:0], params).set_index("check")
    assert (
        not none.loc["ordering_flip", "passed"] and "no flip" in none.loc["ordering_flip", "what"]
    )
