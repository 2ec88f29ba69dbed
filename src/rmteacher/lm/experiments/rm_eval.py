"""Stage rm_eval (paper Table 1 and the manipulation checks): every RM - the five mixes, the
perfect-accuracy controls, the controlled family and r_G - measured on the same initial-policy
samples before any policy gradient: reward variance, on- and off-policy accuracy (tie rule and
untied), held-out accuracy on each mix's own training distribution, the normalisation constants
RLOO uses, and whether the independent variables really vary (each check computed against a
threshold fixed in the parameters)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rmteacher.core.params import ParamsError, StageParams, param

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class RmEvalParams(StageParams):
    """Table 1 and the manipulation checks: reward variance and on-/off-policy accuracy of every
    RM (mixes, controls, controlled family, r_G) under the initial policy, before any policy
    gradient, plus the normalisation constants (global mean and std) used by policy gradient."""

    STAGE = "rm_eval"
    seed: int = param(0, "seed of the evaluation samples and of the family's rank noise", ge=0)
    n_prompts: int = param(
        2048, "policy-gradient prompts evaluated: all of them, since RLOO trains on them", ge=2
    )
    n_samples: int = param(10, "samples per prompt (paper: 10)", ge=2)
    perfect_fraction: float = param(
        0.5, "fraction of policy-gradient prompts whose r_G the perfect RM scales", ge=0, le=1
    )
    perfect_factor: float = param(0.001, "scale applied to those prompts' r_G", gt=0)
    perfect_seed: int = param(8122, "seed choosing the scaled prompts", ge=0)
    perfect_shift: float = param(
        1.0,
        "constant added to r_G before the perfect RM's scaling (ArmoRM's scores are positive; "
        "'perfect_unshifted' is the same RM without it)",
    )
    family_noise: tuple[float, ...] = param(
        (0.0, 0.5, 1.0, 2.0), "rank-noise levels eta of the controlled family", ge=0
    )
    family_compression: tuple[float, ...] = param(
        (1.0, 0.3, 0.1), "compression floors c of the controlled family (1 = none)", gt=0, le=1
    )
    family_amplification: tuple[float, ...] = param(
        (3.0, 10.0),
        "amplification ceilings A of the controlled family: prompt scales drawn from [1, A] "
        "raise the variance at fixed accuracy (1 = none)",
        ge=1,
        may_be_empty=True,
    )
    family_between: tuple[float, ...] = param(
        (),
        "prompt-mean factors lambda of an eta = 0 arm: lambda < 1 shrinks the between-prompt "
        "part, which RLOO's baseline removes, so it only rescales every advantage (a "
        "consistency check of Adam's scale invariance, not the variance test)",
        ge=0,
        le=1,
        may_be_empty=True,
    )
    family_fraction: float = param(
        0.75, "fraction of prompts each member scales (compresses or amplifies)", gt=0, le=1
    )
    family_seed: int = param(
        17, "seed of the scaled prompts and their quantiles (shared by all members)", ge=0
    )
    check_gold_variance: tuple[float, ...] = param(
        (0.15, 0.5), "manipulation check: allowed range of r_G's reward variance", ge=0, le=1
    )
    check_gold_ties: float = param(
        0.05, "manipulation check: largest share of on-policy pairs r_G may tie", ge=0, le=1
    )
    check_pairs: int = param(20000, "manipulation check: fewest pairs per mix", ge=1)
    check_own_accuracy: float = param(
        0.70, "manipulation check: lowest held-out untied accuracy on a mix's own data", ge=0, le=1
    )
    check_variance_span: float = param(
        1.5, "manipulation check: smallest max/min reward variance over the mixes", ge=1
    )
    check_offpolicy_trend: float = param(
        0.7,
        "manipulation check: smallest Spearman correlation of off-policy share with off-policy "
        "(untied) accuracy over the mixes",
        ge=-1,
        le=1,
    )

    check_family_variance: float = param(
        0.1,
        "manipulation check: largest relative change of reward variance that rank noise may cause",
        ge=0,
    )
    check_family_variance_span: float = param(
        4.0,
        "manipulation check: smallest max/min reward variance over the family members of one "
        "accuracy (each rank-noise level)",
        ge=1,
    )
    check_onpolicy_accuracy: float = param(
        0.6,
        "manipulation check: lowest on-policy untied accuracy of a mix (initial policy's samples)",
        ge=0,
        le=1,
    )

    def check(self) -> None:
        if self.n_samples * self.n_prompts > 200_000:
            raise ParamsError(f"{self.STAGE}: n_prompts * n_samples must be <= 200000")
        low, high = (self.check_gold_variance + (None,))[:2]
        if len(self.check_gold_variance) != 2 or low > high:
            raise ParamsError(f"{self.STAGE}.check_gold_variance: expected [low, high]")


@dataclass(frozen=True)
class RmEvalResult:
    """`table`: Table 1, one row per RM (every column); `paper`: the mixes and controls beside
    the paper's Table 1; `checks`: the manipulation checks (what, requirement, value, passed);
    `family`: the controlled family's variance and accuracy; `tried`: the Section 4.1 world
    designs searched before this one (data/design_search/sec41.csv), judged by this stage's
    thresholds; `metrics`."""

    table: pd.DataFrame
    paper: pd.DataFrame
    checks: pd.DataFrame
    family: pd.DataFrame
    tried: pd.DataFrame
    metrics: dict


DESIGN_RECORD = "data/design_search/sec41.csv"


def designs_tried(params: RmEvalParams, path: str = DESIGN_RECORD) -> pd.DataFrame:
    """The design-search record (scripts/design_search.py: one row per design tried, with its
    reason and check numbers at search scale), each design's mix checks judged by this stage's
    thresholds (`passes`: all four), an empty frame if there is no record."""
    from pathlib import Path

    import pandas as pd

    if not Path(path).is_file():
        return pd.DataFrame()
    tried = pd.read_csv(path)
    low, high = params.check_gold_variance
    judged = {
        "span_ok": tried.variance_span >= params.check_variance_span,
        "trend_ok": tried.offpolicy_trend >= params.check_offpolicy_trend,
        "accuracy_ok": tried.min_onpolicy_accuracy_untied >= params.check_onpolicy_accuracy,
        "gold_ok": tried.gold_variance.between(low, high)
        & (tried.gold_ties <= params.check_gold_ties),
    }
    tried = tried.assign(**judged)
    return tried.assign(passes=tried[list(judged)].all(axis=1))


def heldout_scores(reward, candidates, kind: str):
    """(RM scores [M, 2], r_G [M, 2]) of the held-out test pairs of one kind ('on' or 'off')."""
    from rmteacher.lm.rm.evaluation import score_matrix
    from rmteacher.lm.rm.preferences import heldout_pairs

    prompts, responses, gold = heldout_pairs(candidates, kind)
    return score_matrix(reward, prompts, responses), gold


def run(params: RmEvalParams) -> RmEvalResult:
    """Sample the initial policy on every policy-gradient prompt, build the suite (controls and
    family need r_G's per-prompt statistics on these samples), score everything, and save the
    reward matrices, normalisations, suite and Table 1 under artifacts/rm_eval."""
    import numpy as np
    import pandas as pd

    from rmteacher.core import paths
    from rmteacher.core.hf import load_policy
    from rmteacher.lm.analysis.checks import family_table, manipulation_checks
    from rmteacher.lm.rm.evaluation import (
        build_suite,
        rm_table,
        save_reward_matrices,
        save_suite_spec,
        score_matrix,
        suite_spec,
    )
    from rmteacher.lm.rm.suite import Memo
    from rmteacher.lm.rm.training import read_manifest
    from rmteacher.lm.world.prompts import World
    from rmteacher.lm.world.sampling import sample_responses
    from rmteacher.metrics.rm_metrics import untied_accuracy
    from rmteacher.paper import table1_frame
    from rmteacher.rewards.registry import load_reward

    world = World.load()
    world.require("pg_train", params.n_prompts, "rm_eval.n_prompts")
    manifest = read_manifest()
    gold = Memo(load_reward(manifest["gold"], "gold"))
    policy, tokenizer = load_policy(world.policy_dir, "initial policy")
    prompts = world.prompt_texts("pg_train")[: params.n_prompts]
    responses = sample_responses(
        policy,
        tokenizer,
        prompts,
        params.n_samples,
        seed=params.seed,
        desc="initial-policy samples",
        batch_size=512,
        **world.generation(),
    )
    del policy
    spec = suite_spec(world, params, score_matrix(gold, prompts, responses), prompts)
    suite = build_suite(spec, manifest, gold)
    matrices = {name: score_matrix(reward, prompts, responses) for name, reward in suite.items()}
    test = pd.read_json(paths.candidates("test"), lines=True)
    on_policy_rms = [rm["name"] for rm in manifest["rms"]] + [
        "perfect",
        "perfect_unshifted",
        "gold",
    ]
    heldout = {
        kind: {name: heldout_scores(suite[name], test, kind) for name in on_policy_rms}
        for kind in ("on", "off")
    }
    table, norms = rm_table(matrices, heldout["off"])
    for kind in ("on", "off"):
        accuracies = {name: untied_accuracy(*pair) for name, pair in heldout[kind].items()}
        table[f"heldout_{kind}_accuracy_untied"] = table.rm.map(accuracies)
    fractions = {rm["name"]: rm["onpolicy_fraction"] for rm in manifest["rms"]}
    table["onpolicy_fraction"] = table.rm.map(fractions)
    table["own_distribution_accuracy_untied"] = (
        table.onpolicy_fraction * table.heldout_on_accuracy_untied
        + (1 - table.onpolicy_fraction) * table.heldout_off_accuracy_untied
    )
    save_reward_matrices(matrices, norms, prompts, responses, paths.RM_EVAL)
    save_suite_spec(spec)
    table.to_csv(paths.RM_TABLE, index=False)
    core = [
        "rm",
        "reward_variance",
        "onpolicy_accuracy",
        "onpolicy_accuracy_untied",
        "offpolicy_accuracy",
        "offpolicy_accuracy_untied",
    ]
    shown = table[~table.rm.str.startswith("fam_")]
    paths.METRICS.mkdir(exist_ok=True)
    shown[core].to_csv(paths.RM_TABLE_METRICS, index=False, float_format="%.6f")
    paper = shown[core].merge(table1_frame(), on="rm", how="left")
    family = family_table(table, spec["family"])
    checks = manipulation_checks(table, manifest, params, family)
    checks.to_csv(paths.CHECKS, index=False)
    by_rm = table.set_index("rm")
    metrics = {
        "gold_tie_fraction_onpolicy": table.attrs["gold_tie_fraction"],
        "n_eval_prompts": len(prompts),
        "n_samples": params.n_samples,
        "n_family": len(spec["family"]),
        "checks_passed": int(checks.passed.sum()),
        "checks_total": len(checks),
        **{f"check_{r.check}": bool(r.passed) for r in checks.itertuples()},
        **{f"check_{r.check}_value": float(r.value) for r in checks.itertuples()},
        **{
            f"{rm}_{col}": float(by_rm.loc[rm, col])
            for rm in shown.rm
            for col in core[1:] + ["heldout_on_accuracy_untied"]
            if np.isfinite(by_rm.loc[rm, col])
        },
    }
    tried = designs_tried(params)
    metrics["designs_tried"] = len(tried)
    metrics["designs_passing"] = int(tried.passes.sum()) if len(tried) else 0
    return RmEvalResult(table, paper, checks, family, tried, metrics)
