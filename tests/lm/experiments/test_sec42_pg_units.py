"""Which runs Section 4.2 trains and how they are cached: every policy x RM with the RLOO seeds
(one unit per seed) and the GRPO variants with theirs (one unit per GRPO seed); a unit that
params.yaml does not plan, or an RM sec42_eval did not evaluate, is one line before any compute;
the matrix stages DVC expands are exactly the planned units."""

from pathlib import Path

import pandas as pd
import pytest
import yaml

from rmteacher.core import paths
from rmteacher.core.params import ParamsError
from rmteacher.stages.lm import sec42_pg
from rmteacher.stages.lm.params.sec42_pg import Sec42PgParams

ROOT = Path(__file__).resolve().parents[3]
POLICIES = ["sft", "sft_austen"]
# every variant (the default run trains RLOO alone)
ALL_VARIANTS = {"variants": ("rloo", "grpo", "grpo_group"), "grpo_seeds": (0, 1, 2)}


@pytest.fixture
def evaluated(tmp_path, monkeypatch):
    """sec42_eval's table of policies x RMs, as its declared output."""
    params = Sec42PgParams(**ALL_VARIANTS)
    table = tmp_path / "policy_rm_eval.csv"
    rows = [{"policy": p, "rm": rm} for p in POLICIES for rm in [*params.reward_models, "gold"]]
    pd.DataFrame(rows).to_csv(table, index=False)
    monkeypatch.setattr(paths, "POLICY_RM_EVAL", table)
    return params


def test_run_specs_put_each_seed_of_each_algorithm_in_one_unit():
    params = Sec42PgParams(**ALL_VARIANTS)
    specs = sec42_pg.run_specs(params, POLICIES)
    per_unit = pd.DataFrame(specs).groupby(["unit", "seed"]).size()
    rms = len(params.reward_models)
    grpo_variants = [v for v in params.variants if v != "rloo"]
    assert per_unit.loc["rloo"].to_dict() == {s: len(POLICIES) * rms for s in params.seeds}
    assert per_unit.loc["grpo"].to_dict() == {
        s: len(POLICIES) * rms * len(grpo_variants) for s in params.grpo_seeds
    }
    # enough seeds for the registry's two-seed minimum and a seed-bootstrap interval
    assert len(params.seeds) >= 3
    # the join's order: policy, variant, seed, RM
    keys = [(s["policy"], s["variant"]) for s in specs]
    assert keys == sorted(keys, key=lambda k: (POLICIES.index(k[0]), params.variants.index(k[1])))


def test_a_unit_names_a_planned_seed_or_fails_in_one_line(evaluated):
    params = evaluated
    with pytest.raises(ParamsError, match="unknown unit 'grpo_group'"):
        sec42_pg.unit_specs(params, "grpo_group", 0)
    with pytest.raises(ParamsError, match="plans no grpo unit with seed 5"):
        sec42_pg.unit_specs(params, "grpo", 5)
    with pytest.raises(ParamsError, match="no run of the rloo unit is on gold"):
        sec42_pg.unit_specs(params, "rloo", 0, ["gold"])
    unit = sec42_pg.unit_specs(params, "grpo", 0, ["afinn"])
    assert {(s["policy"], s["variant"]) for s in unit} == {
        (p, v) for p in POLICIES for v in ("grpo", "grpo_group")
    }
    other = Sec42PgParams(reward_models=("afinn", "minilm_sentiment"))
    paths.POLICY_RM_EVAL.write_text("policy,rm\nsft,afinn\n")
    with pytest.raises(ParamsError, match="minilm_sentiment not evaluated by sec42_eval"):
        sec42_pg.unit_specs(other, "rloo", 0)


def test_unit_setup_gives_grpo_its_own_beta_and_every_run_the_threads(evaluated):
    params = Sec42PgParams(
        learning_rate=1e-3, grpo_beta=0.02, threads=1, n_train_prompts=64, **ALL_VARIANTS
    )
    specs = sec42_pg.unit_specs(params, "grpo", 0) + sec42_pg.unit_specs(params, "rloo", 0)
    prompts = [f"prompt {i}" for i in range(100)]
    setup = sec42_pg.unit_setup(params, specs, prompts, {"max_new_tokens": 8, "temperature": 1.0})
    assert setup.threads == 1 and len(setup.plan.train_prompts) == 64
    betas = {
        (variant, cfg.algorithm, cfg.scale_rewards, cfg.beta) for _, _, variant, cfg in setup.runs
    }
    assert betas == {
        ("grpo", "grpo", "none", 0.02),
        ("grpo_group", "grpo", "group", 0.02),
        ("rloo", "rloo", "none", params.beta),
    }


def test_variants_and_grpo_seeds_must_agree():
    with pytest.raises(ParamsError, match="sec42_pg.variants: must include rloo"):
        Sec42PgParams.from_mapping({"variants": ["grpo"]})
    with pytest.raises(ParamsError, match="grpo_seeds: must be empty exactly when"):
        Sec42PgParams.from_mapping({"variants": ["rloo"], "grpo_seeds": [0]})
    with pytest.raises(ParamsError, match="grpo_seeds: must be empty exactly when"):
        Sec42PgParams.from_mapping({"variants": ["rloo", "grpo"], "grpo_seeds": []})
    alone = Sec42PgParams.from_mapping({"variants": ["rloo"], "grpo_seeds": []})
    assert {s["unit"] for s in sec42_pg.run_specs(alone, POLICIES)} == {"rloo"}


def test_dvc_matrix_stages_are_exactly_the_planned_units_in_their_folders(dvc_units):
    params = Sec42PgParams.from_mapping(
        yaml.safe_load((ROOT / "params.yaml").read_text())[Sec42PgParams.STAGE]
    )
    planned = {(s["unit"], s["seed"]) for s in sec42_pg.run_specs(params, POLICIES)}
    units = dvc_units("sec42_pg_")
    for (unit, seed), out in units.items():
        assert out == sec42_pg.unit_dir(unit, seed).as_posix(), (unit, seed)
    assert set(units) == planned
