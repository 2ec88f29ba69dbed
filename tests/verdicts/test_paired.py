"""Seed-paired claims (moved from tests/lm/analysis/test_sec41_claims.py with the rules, issue
17; the assertions are the old ones, on the new functions): pairing by seed removes the noise
runs share; 'slower than all' and 'some beats' with Holm's correction; interval verdicts; the
reward-scaling rule that asks every seed to agree."""

import numpy as np
import pandas as pd
import pytest

from rmteacher.lm.analysis.variants import scale_effects_by_seed
from rmteacher.verdicts import evidence as ev
from rmteacher.verdicts import resampling, sections
from rmteacher.verdicts.rules import NOT_REPRODUCED, REPRODUCED, UNDECIDED, interval_outcome


def runs(means: dict, noise=0.01, seeds=5, seed=0):
    rng = np.random.default_rng(seed)
    shared = rng.normal(0, 1.0, seeds)  # what a seed does to every RM alike
    return pd.DataFrame(
        [
            {
                "rm": rm,
                "seed": s,
                "gold_increase": m + shared[s] + rng.normal(0, noise),
                "proxy_increase": m,
            }
            for rm, m in means.items()
            for s in range(seeds)
        ]
    )


def test_pairing_by_seed_removes_the_noise_runs_share():
    frame = runs({"a": 1.0, "b": 0.8})
    evidence = ev.paired(frame, "a", "b")
    assert evidence.n == 5 and evidence.value == pytest.approx(0.2, abs=0.03)
    assert evidence.low > 0
    unpaired = frame.groupby("rm").gold_increase.std().mean()
    assert evidence.high - evidence.low < unpaired  # the shared seed noise (std 1) cancels


def test_slower_than_all_and_some_beats():
    frame = runs({"perfect": 0.0, "m1": 0.5, "m2": 0.6, "gold": 0.55})
    evidence, table = ev.all_above(frame, "perfect", ["m1", "m2"])
    assert evidence.outcome == REPRODUCED and (table.low > 0).all()
    assert ev.all_above(frame, "m2", ["m1"])[0].outcome == NOT_REPRODUCED
    assert ev.some_above(frame, ["m2", "m1"], "gold")[0].outcome == REPRODUCED
    assert ev.some_above(frame, ["perfect"], "gold")[0].outcome == NOT_REPRODUCED
    tied = runs({"x": 0.5, "y": 0.5}, noise=0.3)
    assert ev.some_above(tied, ["x"], "y")[0].outcome == UNDECIDED


def test_holm_correction_is_applied_over_the_candidates():
    frame = runs({"gold": 0.0, **{f"m{i}": 0.012 for i in range(5)}}, noise=0.01)
    _, table = ev.some_above(frame, [f"m{i}" for i in range(5)], "gold")
    assert (table.p_holm >= table.p).all()
    assert table.p_holm.max() <= 1.0
    assert np.allclose(table.p_holm, resampling.holm(table.p))


def test_interval_verdicts():
    assert interval_outcome(0.1, 0.4) == REPRODUCED
    assert interval_outcome(-0.4, -0.1) == NOT_REPRODUCED
    assert interval_outcome(-0.1, 0.4) == UNDECIDED
    assert interval_outcome(float("nan"), 1.0) == UNDECIDED


def scaling_curves(adam_gains, sgd_gains):
    rows = []
    for optimizer, gains in (("adam", adam_gains), ("sgd", sgd_gains)):
        for seed, (low, high) in enumerate(gains):
            for scale, gain in ((0.5, low), (2.0, high)):
                rows.append(
                    {
                        "optimizer": optimizer,
                        "seed": seed,
                        "scale": scale,
                        "step": 10,
                        "proxy_increase": gain,
                    }
                )
    return pd.DataFrame(rows)


def test_adam_verdict_needs_every_seed_to_agree():
    key = "adam_undoes_uniform_scaling"
    effects = scale_effects_by_seed(
        scaling_curves([(0.3, 0.31), (0.3, 0.29)], [(0.1, 0.9), (0.2, 0.5)])
    )
    assert effects.loc[0, "sgd"] == pytest.approx(0.8)
    assert effects.loc[1, "adam"] == pytest.approx(-0.01)
    assert sections.scaling(effects, {}).verdicts[key].verdict == REPRODUCED
    mixed = scale_effects_by_seed(
        scaling_curves([(0.3, 0.31), (0.3, 0.9)], [(0.1, 0.9), (0.2, 0.5)])
    )
    assert sections.scaling(mixed, {}).verdicts[key].verdict == UNDECIDED
    worse = scale_effects_by_seed(
        scaling_curves([(0.0, 1.0), (0.0, 1.0)], [(0.1, 0.2), (0.2, 0.3)])
    )
    assert sections.scaling(worse, {}).verdicts[key].verdict == NOT_REPRODUCED
    # one seed agreeing with itself is no evidence (the old rule said reproduced: D11)
    one = scale_effects_by_seed(scaling_curves([(0.3, 0.31)], [(0.1, 0.9)]))
    decided = sections.scaling(one, {})
    assert decided.verdicts[key].verdict == "not testable"
    assert decided.deviations["deviation_d11_old"] == REPRODUCED
