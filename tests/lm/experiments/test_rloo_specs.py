"""Which RLOO runs Section 4.1 trains: mixes and controls with every seed, the perfect RM also at
beta = 0, every family member with the family's seeds, and the ablation without clipping."""

from pathlib import Path

import pytest
import yaml

from rmteacher.core.params import ParamsError
from rmteacher.lm.pg.settings import PgSettings
from rmteacher.lm.rm.names import MIXES
from rmteacher.stages.lm.rloo import (
    RlooParams,
    run_specs,
    unit_dir,
    unit_key,
    unit_specs,
)
from rmteacher.stages.lm.rloo_lr import choose

ROOT = Path(__file__).resolve().parents[3]


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
    assert len(params.seeds) >= 3 and len(params.family_seeds) >= 3


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


def test_a_unit_names_a_planned_run_or_fails_in_one_line():
    """A unit is one seed of a group (the runs at beta = 0 train with the main group); a trial
    run may pick some of its RMs."""
    params = RlooParams()
    with pytest.raises(ParamsError, match="unknown unit 'mian'"):
        unit_specs(params, "mian", 0)
    with pytest.raises(ParamsError, match="unknown unit 'beta0'"):
        unit_specs(params, "beta0", 0)
    with pytest.raises(ParamsError, match="plans no main unit with seed 9"):
        unit_specs(params, "main", 9)
    with pytest.raises(
        ParamsError, match="noclip unit with seed 0 trains no run on rm_onpolicy_50"
    ):
        unit_specs(params, "noclip", 0, ["rm_onpolicy_50"])
    main = unit_specs(params, "main", 2)
    assert [s["rm"] for s in main] == [*params.rms, *params.beta0_rms]
    assert {s["seed"] for s in main} == {2} and {s["epochs"] for s in main} == {params.epochs}
    normal, beta0 = unit_specs(params, "main", 2, ["perfect"])
    assert (normal["variant"], beta0["variant"]) == ("main", "beta0")
    assert "beta" not in normal and beta0["beta"] == 0.0
    noclip = unit_specs(params, "noclip", 2)
    assert [s["rm"] for s in noclip] == list(params.noclip_rms)
    assert all(s["clip"] is None for s in noclip)


def test_data_parallel_needs_a_batch_that_divides():
    # the rule belongs to the policy-gradient settings, now their own group `pg`
    with pytest.raises(ParamsError, match="pg.prompts_per_step=16 does not divide among num_proc"):
        PgSettings.from_mapping({"num_processes": 3})
    assert PgSettings.from_mapping({"num_processes": 4}).num_processes == 4
    groups = {"pg": {"num_processes": 4}}
    assert RlooParams.from_groups(groups).num_processes == 4


def test_dvc_matrix_stages_are_exactly_the_planned_units_in_their_folders(dvc_units):
    """dvc.yaml's rloo_* matrix stages, as DVC expands them from params.yaml, are the units
    `run_specs` plans (one per group and seed), each writing the folder `unit_dir` names."""
    params = RlooParams.from_mapping(
        yaml.safe_load((ROOT / "params.yaml").read_text())[RlooParams.STAGE]
    )
    planned = {unit_key(s) for s in run_specs(params, ["fam_a", "fam_b"])}
    units = dvc_units("rloo_")
    for key, out in units.items():
        assert out == unit_dir(*key).as_posix(), key
    assert set(units) == planned
