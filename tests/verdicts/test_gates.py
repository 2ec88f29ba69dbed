"""Each gate of a 'reproduced' on a synthetic case that it must catch: one RM carries the
correlation; a failed manipulation check; one seed; too few RMs; a zero-width or NaN interval;
the other normalisation reverses the statistic. Each case is first shown to read 'reproduced'
without the gate, so the test fails if the gate is removed."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from rmteacher.verdicts import evidence as ev
from rmteacher.verdicts import sections
from rmteacher.verdicts.claims import claim
from rmteacher.verdicts.rules import (
    NOT_REPRODUCED,
    NOT_TESTABLE,
    REPRODUCED,
    UNDECIDED,
    Evidence,
    decide,
)

TABLE2 = "variance_predicts_gold_increase"
ALL_PASS = {
    "variance_span": True,
    "pairs": True,
    "own_accuracy": True,
    "gold_ties": True,
    "offpolicy_trend": True,
    "gold_variance": True,
    "perfect_low_variance": True,
    "perfect_accurate": True,
    "onpolicy_accuracy": True,
    "family_accuracy": True,
    "family_variance": True,
    "family_variance_span": True,
    "sec42_variance_differs": True,
    "sec42_ordering_flip": True,
}


def seeds_for(means: dict, n_seeds: int = 5, noise: float = 0.01, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {rm: m + rng.normal(0, noise, n_seeds) for rm, m in means.items()}


def linear(n_rms=6):
    x = {f"rm{i}": 0.1 * i for i in range(n_rms)}
    return x, {rm: 2 * v for rm, v in x.items()}


def correlation_verdict(x, means, checks=ALL_PASS, alt=None, n_seeds=5, key=TABLE2):
    seeds = seeds_for(means, n_seeds)
    alt_seeds = seeds_for(alt if alt is not None else means, n_seeds, seed=1)
    return decide(claim(key), ev.correlation(x, seeds, 500, 0, alt_seeds), checks)


def test_a_clean_correlation_over_enough_rms_is_reproduced():
    x, means = linear()
    verdict = correlation_verdict(x, means)
    assert verdict.verdict == REPRODUCED
    assert verdict.gates == {"leave_one_rm_out": True, "other_normalisation": True}
    assert verdict.p == pytest.approx(1 / 720)


def test_one_rm_carrying_the_correlation_fails_the_leave_one_out_gate():
    """Five RMs whose increase falls with the property and one far away that lifts the
    correlation: without that RM the sign flips. The builder flags it, and a test outcome of
    'reproduced' (as a seed-only interval gave on the default run) is capped at undecided."""
    x = {"a": 0.90, "b": 0.91, "c": 0.92, "d": 0.93, "e": 0.94, "far": 0.2}
    means = {"a": 0.55, "b": 0.54, "c": 0.53, "d": 0.52, "e": 0.51, "far": 0.0}
    seeds = seeds_for(means, noise=0.002)
    evidence = ev.correlation(x, seeds, 500, 0, seeds_for(means, noise=0.002, seed=1))
    assert evidence.value > 0.9
    assert evidence.gates["leave_one_rm_out"] is False
    assert evidence.gate_detail["leave_one_rm_out"].startswith("without far: -")
    passed = replace(evidence, low=0.2, high=0.99, p=0.001, outcome=REPRODUCED)
    verdict = decide(claim(TABLE2), passed, ALL_PASS)
    assert verdict.verdict == UNDECIDED and "leave one RM out fails" in verdict.reason
    assert verdict.gates["leave_one_rm_out"] is False
    # the same evidence with the gate holding reads reproduced: the gate is what caps it
    held = replace(passed, gates={**passed.gates, "leave_one_rm_out": True})
    assert decide(claim(TABLE2), held, ALL_PASS).verdict == REPRODUCED


def test_the_other_normalisation_reversing_the_sign_caps_the_verdict():
    x, means = linear()
    reversed_means = {rm: -v for rm, v in means.items()}
    verdict = correlation_verdict(x, means, alt=reversed_means)
    assert verdict.gates["other_normalisation"] is False
    assert verdict.verdict == UNDECIDED and "other normalisation fails" in verdict.reason
    # and a gate that could not be evaluated caps it too
    seeds = seeds_for(means)
    missing = ev.correlation(x, seeds, 500, 0, {"rm0": seeds["rm0"]})
    assert missing.gates["other_normalisation"] is None
    assert decide(claim(TABLE2), missing, ALL_PASS).verdict == UNDECIDED


def test_a_failed_manipulation_check_makes_the_claim_not_testable():
    x, means = linear()
    verdict = correlation_verdict(x, means, checks={**ALL_PASS, "variance_span": False})
    assert verdict.verdict == NOT_TESTABLE
    assert "variance_span failed" in verdict.reason
    assert verdict.value == pytest.approx(1.0, abs=0.01)  # computed and shown, not read
    not_run = correlation_verdict(
        x, means, checks={k: v for k, v in ALL_PASS.items() if k != "pairs"}
    )
    assert not_run.verdict == NOT_TESTABLE and "did not run" in not_run.reason


def test_one_seed_makes_the_claim_not_testable():
    x, means = linear()
    verdict = correlation_verdict(x, means, n_seeds=1)
    assert verdict.verdict == NOT_TESTABLE and "only one seed per unit" in verdict.reason


def test_too_few_rms_make_the_claim_not_testable():
    x, means = linear(n_rms=3)
    verdict = correlation_verdict(x, means)
    assert verdict.verdict == NOT_TESTABLE and "at least 4" in verdict.reason


def test_zero_width_and_nan_intervals_are_never_evidence():
    table2 = claim(TABLE2)
    zero = Evidence(
        0.5,
        0.5,
        0.5,
        n=6,
        seeds=5,
        p=0.001,
        outcome=REPRODUCED,
        gates={"leave_one_rm_out": True, "other_normalisation": True},
    )
    assert decide(table2, zero, ALL_PASS).verdict == UNDECIDED
    nan = replace(zero, low=float("nan"), high=float("nan"))
    assert decide(table2, nan, ALL_PASS).verdict == NOT_TESTABLE
    # the tiny profile's case: one seed gave Pearson 0.07 [0.07, 0.07] and read 'reproduced'
    tiny = replace(zero, value=0.07, low=0.07, high=0.07, seeds=1)
    assert decide(table2, tiny, ALL_PASS).verdict == NOT_TESTABLE


def test_paired_claims_need_three_seeds_and_their_checks():
    rng = np.random.default_rng(0)
    runs = pd.DataFrame(
        [
            {"rm": rm, "seed": s, "gold_increase": base + 0.1 * s + rng.normal(0, 0.01)}
            for rm, base in (("perfect", 0.0), ("m1", 0.5), ("m2", 0.6))
            for s in range(2)
        ]
    )
    evidence, _ = ev.all_above(runs, "perfect", ["m1", "m2"])
    slowest = claim("perfect_rm_teaches_slowest")
    assert decide(slowest, evidence, ALL_PASS).verdict == NOT_TESTABLE  # two pairs
    later = runs.assign(
        seed=runs.seed + 2, gold_increase=runs.gold_increase + rng.normal(0, 0.01, 6)
    )
    more = pd.concat([runs, later])
    evidence, table = ev.all_above(more, "perfect", ["m1", "m2"])
    assert decide(slowest, evidence, ALL_PASS).verdict == REPRODUCED
    assert set(table.rm) == {"m1", "m2"}
    failed = {**ALL_PASS, "perfect_low_variance": False}
    assert decide(slowest, evidence, failed).verdict == NOT_TESTABLE
    slower = more.assign(
        gold_increase=np.where(more.rm == "perfect", 1.0 + more.gold_increase, more.gold_increase)
    )
    assert decide(slowest, ev.all_above(slower, "perfect", ["m1"])[0], ALL_PASS).verdict == (
        NOT_REPRODUCED
    )


def test_section41_decides_every_claim_from_tidy_tables():
    """The stage's entry point on a small synthetic world: a failed span check removes the
    Table 2 verdicts; the paired claims stand on their own checks."""
    rng = np.random.default_rng(0)
    mixes = [f"rm_onpolicy_{p}" for p in (100, 75, 50, 25, 0)]
    props = pd.DataFrame(
        {
            "reward_variance": [0.9, 0.8, 0.7, 0.6, 0.5, 0.05, 0.25],
            "onpolicy_accuracy": [0.8] * 5 + [1.0, 1.0],
            "offpolicy_accuracy": [0.8] * 5 + [1.0, 1.0],
        },
        index=[*mixes, "perfect", "gold"],
    )
    props["accuracy_mean"] = props.onpolicy_accuracy
    props["variance_and_accuracy"] = (props.reward_variance + props.accuracy_mean) / 2
    runs = pd.DataFrame(
        [
            {
                "rm": rm,
                "seed": s,
                "proxy_increase": props.loc[rm, "reward_variance"] + rng.normal(0, 0.01),
                "gold_increase": props.loc[rm, "reward_variance"] / 2 + rng.normal(0, 0.01),
            }
            for rm in props.index
            for s in range(4)
        ]
    )
    decided = sections.section41(props, runs, {**ALL_PASS, "variance_span": False}, mixes, 200, 0)
    verdicts = {k: v.verdict for k, v in decided.verdicts.items()}
    assert verdicts["variance_predicts_gold_increase"] == NOT_TESTABLE
    assert verdicts["perfect_rm_teaches_slowest"] == REPRODUCED
    assert verdicts["proxy_beats_gold_early"] == REPRODUCED
    # the old rules are still read, for the Deviations page
    assert decided.deviations["deviation_d6_old_gold"] == REPRODUCED
    metrics = decided.all_metrics()
    assert metrics["claim_variance_predicts_gold_increase_checks_failed"] == "variance_span"
    assert metrics["claim_variance_predicts_gold_increase_rule_hash"] == claim(TABLE2).rule_hash()
