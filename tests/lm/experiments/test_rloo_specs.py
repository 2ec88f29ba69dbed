"""Which RLOO runs Section 4.1 trains: mixes and controls with every seed, the perfect RM also at
beta = 0, every family member with the family's seeds, and the ablation without clipping."""

import pytest

from rmteacher.core.params import ParamsError
from rmteacher.lm.experiments.rloo import MIXES, RlooParams, run_specs
from rmteacher.lm.experiments.rloo_lr import choose


def test_run_specs_cover_every_group_with_its_seeds_and_settings():
    params = RlooParams()
    family = ["fam_n1_c1", "fam_n0_c0.1"]
    specs = run_specs(params, family)
    main = [s for s in specs if s["variant"] == "main" and not s["rm"].startswith("fam_")]
    assert {(s["rm"], s["seed"]) for s in main} == {
        (rm, seed) for rm in params.rms for seed in params.seeds
    }
    beta0 = [s for s in specs if s["variant"] == "beta0"]
    assert {s["rm"] for s in beta0} == {"perfect"} and all(s["beta"] == 0.0 for s in beta0)
    fam = [s for s in specs if s["rm"].startswith("fam_")]
    assert len(fam) == len(family) * len(params.family_seeds)
    assert all(s["epochs"] == params.family_epochs for s in fam)
    noclip = [s for s in specs if s["variant"] == "noclip"]
    assert {(s["rm"], s["seed"]) for s in noclip} == {
        (rm, seed) for rm in params.noclip_rms for seed in params.noclip_seeds
    }
    assert all(s["clip"] is None and s["epochs"] == params.noclip_epochs for s in noclip)
    assert {"gold", "perfect"} <= set(params.noclip_rms) and set(MIXES) & set(params.noclip_rms)
    assert len(params.seeds) >= 5 and len(params.family_seeds) >= 3


def test_unknown_rm_and_repeated_seeds_are_one_line_errors():
    with pytest.raises(ParamsError, match="rloo.rms: unknown RM 'prefect'"):
        RlooParams.from_mapping({"rms": ["prefect"]})
    with pytest.raises(ParamsError, match="rloo.family_seeds: values must be distinct"):
        RlooParams.from_mapping({"family_seeds": [0, 0]})


def test_learning_rate_rule_prefers_the_fastest_rate_below_the_kl_cap():
    import pandas as pd

    summary = pd.DataFrame(
        {
            "learning_rate": [1e-4, 3e-4, 1e-3],
            "gold_increase": [0.1, 0.3, 0.5],
            "kl": [0.5, 2.0, 9.0],
        }
    )
    assert choose(summary, max_kl=4.0) == 3e-4
    assert choose(summary, max_kl=0.1) == 1e-4
