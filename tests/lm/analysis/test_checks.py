"""Manipulation checks compare measured values with their thresholds, and say which fail."""

import pandas as pd

from rmteacher.lm.analysis.checks import family_table, manipulation_checks
from rmteacher.stages.lm.rm_eval import RmEvalParams

MIXES = {"rm_onpolicy_100": 1.0, "rm_onpolicy_50": 0.5, "rm_onpolicy_0": 0.0}


def table(variances, off_accuracies):
    rows = [
        {
            "rm": rm,
            "reward_variance": v,
            "onpolicy_fraction": f,
            "own_distribution_accuracy_untied": 0.75,
            "heldout_off_accuracy_untied": a,
            "onpolicy_accuracy": 0.7,
            "onpolicy_accuracy_untied": 0.7,
        }
        for (rm, f), v, a in zip(MIXES.items(), variances, off_accuracies, strict=True)
    ]
    rows += [
        {
            "rm": "gold",
            "reward_variance": 0.3,
            "onpolicy_accuracy": 1.0,
            "onpolicy_accuracy_untied": 1.0,
        },
        {
            "rm": "fam_n1_c1",
            "reward_variance": 0.29,
            "onpolicy_accuracy": 0.7,
            "onpolicy_accuracy_untied": 0.7,
        },
        {
            "rm": "fam_n1_c0.1",
            "reward_variance": 0.05,
            "onpolicy_accuracy": 0.7,
            "onpolicy_accuracy_untied": 0.7,
        },
    ]
    frame = pd.DataFrame(rows)
    frame.attrs["gold_tie_fraction"] = 0.0
    return frame


MANIFEST = {"rms": [{"name": rm, "pairs": 20000} for rm in MIXES]}
MEMBERS = [{"eta": 1.0, "compression": 1.0}, {"eta": 1.0, "compression": 0.1}]


def run_checks(frame):
    family = family_table(frame, MEMBERS)
    return manipulation_checks(frame, MANIFEST, RmEvalParams(), family).set_index("check")


def test_a_world_that_varies_passes_and_one_that_does_not_fails():
    good = run_checks(table([0.6, 0.45, 0.3], [0.6, 0.7, 0.8]))
    assert good.passed.all(), good
    flat = run_checks(table([0.8, 0.82, 0.81], [0.62, 0.61, 0.62]))
    assert not flat.loc["variance_span", "passed"]
    assert not flat.loc["offpolicy_trend", "passed"]
    assert flat.loc["gold_variance", "passed"]


def test_a_narrow_family_or_an_inaccurate_mix_fails_its_own_check():
    frame = table([0.6, 0.45, 0.3], [0.6, 0.7, 0.8])
    frame.loc[frame.rm == "fam_n1_c0.1", "reward_variance"] = 0.1  # span 2.9 < 4
    frame.loc[frame.rm == "rm_onpolicy_0", "onpolicy_accuracy_untied"] = 0.55
    checks = run_checks(frame)
    assert checks.loc["family_variance_span", "value"] == 0.29 / 0.1
    assert not checks.loc["family_variance_span", "passed"]
    assert checks.loc["onpolicy_accuracy", "value"] == 0.55
    assert not checks.loc["onpolicy_accuracy", "passed"]
    assert checks.drop(["family_variance_span", "onpolicy_accuracy"]).passed.all()


def test_the_family_span_is_the_narrowest_accuracy_level_s_and_ignores_the_between_arm():
    from rmteacher.lm.analysis.checks import family_checks

    family = pd.DataFrame(
        {
            "eta": [0.0, 0.0, 0.0, 0.0, 1.0, 1.0],
            "compression": [1.0, 0.1, 1.0, 1.0, 1.0, 0.1],
            "amplification": [1.0, 1.0, 10.0, 1.0, 1.0, 1.0],
            "between": [1.0, 1.0, 1.0, 0.0, 1.0, 1.0],
            "reward_variance": [0.25, 0.05, 0.6, 0.95, 0.24, 0.08],
            "onpolicy_accuracy": [1.0, 1.0, 1.0, 1.0, 0.75, 0.75],
        }
    )
    built = family_checks(family)
    assert built["family_variance_span"] == 0.24 / 0.08  # eta = 1 is narrower than 0.6 / 0.05
    assert built["family_compression_accuracy_gap"] == 0.0
    assert abs(built["family_noise_variance_gap"] - 0.04) < 1e-12


def test_unequal_pairs_fail_the_pairs_check():
    manifest = {
        "rms": [
            {"name": rm, "pairs": p} for rm, p in zip(MIXES, [20000, 20000, 19999], strict=True)
        ]
    }
    frame = table([0.6, 0.45, 0.3], [0.6, 0.7, 0.8])
    checks = manipulation_checks(frame, manifest, RmEvalParams(), family_table(frame, MEMBERS))
    assert not checks.set_index("check").loc["pairs", "passed"]
